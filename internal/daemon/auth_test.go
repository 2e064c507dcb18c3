package daemon

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

var (
	secretA = bytes.Repeat([]byte{0xa5}, 32)
	secretB = bytes.Repeat([]byte{0x5b}, 48)
)

// authConfig is instanceConfig(prio) with auth_hmac over keys (id → secret).
func authConfig(prio uint8, mode config.AuthMode, active uint8, keys map[uint8][]byte) config.Instance {
	ic := instanceConfig(prio)
	a := &config.AuthHMAC{ActiveKey: active, Mode: mode, AntiReplay: config.AntiReplayTime, TimeWindow: 5 * time.Second}
	for id := uint8(1); id < 10; id++ {
		if s, ok := keys[id]; ok {
			a.Keys = append(a.Keys, config.AuthKey{ID: id, Secret: s})
		}
	}
	ic.AuthHMAC = a
	return ic
}

func one(ic config.Instance) *config.Config {
	return &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}
}

// authDrops is the sum of n's auth_* drop counters.
func authDrops(n *node) float64 {
	total := 0.0
	for r := drop.None; r < drop.Count; r++ {
		if r.Auth() {
			total += testutil.ToFloat64(n.m.PacketsDropped.WithLabelValues("eth0", r.String()))
		}
	}
	return total
}

func dropped(n *node, r drop.Reason) float64 {
	return testutil.ToFloat64(n.m.PacketsDropped.WithLabelValues("eth0", r.String()))
}

// signedKeys records the key id of every advert sent (0: unsigned).
type signedKeys struct {
	mu  sync.Mutex
	ids map[netip.Addr]uint8
}

func tapKeys(seg *segment) *signedKeys {
	k := &signedKeys{ids: map[netip.Addr]uint8{}}
	seg.tap = func(p packet) {
		var pkt vrrp.Packet
		if vrrp.ParseInto(&pkt, p.b, p.src, p.dst) != nil {
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		k.ids[p.src] = 0
		if pkt.Signed {
			k.ids[p.src] = pkt.Auth.KeyID
		}
	}
	return k
}

func (k *signedKeys) of(a netip.Addr) uint8 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ids[a]
}

// noLoss samples whether h holds the VIP every 100 µs until stopped, and
// returns how many samples found it missing.
func noLoss(h *host) (stop func() int) {
	done, lost := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				lost <- n
				return
			default:
			}
			if !h.has(vip) {
				n++
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return func() int { close(done); return <-lost }
}

func TestAuthHMACElectsAndRefusesStrangers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		keys := tapKeys(seg)
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		k1 := map[uint8][]byte{1: secretA}
		ns := []*node{
			startConfig(t, hs[0], one(authConfig(150, config.AuthEnforce, 1, k1))),
			startConfig(t, hs[1], one(authConfig(100, config.AuthEnforce, 1, k1))),
		}
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		settle(100 * time.Millisecond)
		if !only(0, hs...)() || keys.of(hs[0].addr) != 1 {
			t.Fatalf("holders %v, host 0 signs with key %d", holders(hs...), keys.of(hs[0].addr))
		}
		if got := ns[1].d.Status()[0]; got.State != router.Backup || got.Master != hs[0].addr {
			t.Fatalf("Backup: %+v", got)
		}

		stranger := netip.MustParseAddr("192.0.2.99")
		advert := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 254, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
		sign := func(id uint8, secret []byte, seq uint64) []byte {
			k, err := vrrp.NewKey(id, secret)
			if err != nil {
				t.Fatal(err)
			}
			b, err := k.Append(nil, advert, stranger, vrrp.IPv4Group, vrrp.ChecksumPseudoHeader, seq)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		unsigned, err := advert.Marshal(stranger, vrrp.IPv4Group)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name   string
			b      []byte
			reason drop.Reason
		}{
			{"unsigned", unsigned, drop.AuthMissing},
			{"another secret", sign(1, secretB, vrrp.SeqAt(time.Now())), drop.AuthBadHMAC},
			{"unknown key", sign(2, secretA, vrrp.SeqAt(time.Now())), drop.AuthUnknownKey},
			{"a minute old", sign(1, secretA, vrrp.SeqAt(time.Now().Add(-time.Minute))), drop.AuthStale},
		} {
			before := dropped(ns[0], tt.reason)
			for i := 0; i < 50; i++ {
				seg.inject(tt.b, stranger, vrrp.IPv4Group, 255)
				time.Sleep(time.Millisecond)
			}
			waitFor(t, time.Second, tt.name+" counted as "+tt.reason.String(), func() bool {
				return dropped(ns[0], tt.reason) >= before+50 && dropped(ns[1], tt.reason) >= 50
			})
			if !only(0, hs...)() {
				t.Fatalf("%s: holders %v", tt.name, holders(hs...))
			}
		}

		// A stranger with the key is a router like any other: it wins.
		for i := 0; i < 5; i++ {
			seg.inject(sign(1, secretA, vrrp.SeqAt(time.Now())), stranger, vrrp.IPv4Group, 255)
			time.Sleep(time.Millisecond)
		}
		waitFor(t, time.Second, "the Master to yield to a keyed priority 254", func() bool { return !hs[0].has(vip) })
		// Replayed, the same advert takes nothing back from the Backup's
		// point of view: its sequence is not new.
		before := dropped(ns[1], drop.AuthReplay)
		old := sign(1, secretA, vrrp.SeqAt(time.Now().Add(-time.Second)))
		seg.inject(old, stranger, vrrp.IPv4Group, 255)
		waitFor(t, time.Second, "a replay counted", func() bool { return dropped(ns[1], drop.AuthReplay) > before })
	})
}

// Rotation by reload, and the rollout from no auth_hmac, happen in place:
// no transition, the VIP never missing, no advert refused.
func TestAuthHMACReloadInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		keys := tapKeys(seg)
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100)}
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		stop := noLoss(hs[0])

		steps := []struct {
			name   string
			mode   config.AuthMode // "" for no auth_hmac
			active uint8
			keys   map[uint8][]byte
			signs  uint8  // the key id host 0 signs with afterwards
			status string // its Status.Auth
		}{
			{"receive_only", config.AuthReceiveOnly, 1, map[uint8][]byte{1: secretA}, 0, "receive_only, not signing"},
			{"permissive", config.AuthPermissive, 1, map[uint8][]byte{1: secretA}, 1, "permissive, signing with key 1"},
			{"enforce", config.AuthEnforce, 1, map[uint8][]byte{1: secretA}, 1, "enforce, signing with key 1"},
			{"add key 2", config.AuthEnforce, 1, map[uint8][]byte{1: secretA, 2: secretB}, 1, "enforce, signing with key 1"},
			{"sign with key 2", config.AuthEnforce, 2, map[uint8][]byte{1: secretA, 2: secretB}, 2, "enforce, signing with key 2"},
			{"remove key 1", config.AuthEnforce, 2, map[uint8][]byte{2: secretB}, 2, "enforce, signing with key 2"},
		}
		for _, st := range steps {
			for i := range ns {
				ns[i].d.Reload(one(authConfig([]uint8{150, 100}[i], st.mode, st.active, st.keys)))
				settle(35 * time.Millisecond) // between the hosts' reloads: more than a Master_Down_Interval
			}
			settle(50 * time.Millisecond)
			if got := keys.of(hs[0].addr); got != st.signs {
				t.Errorf("%s: host 0 signs with key %d, want %d", st.name, got, st.signs)
			}
			if got := ns[0].d.Status()[0].Auth; got != st.status {
				t.Errorf("%s: status says auth %q, want %q", st.name, got, st.status)
			}
			for i, n := range ns {
				if d := authDrops(n); d != 0 {
					t.Errorf("%s: host %d refused %v adverts", st.name, i, d)
				}
			}
		}
		if n := stop(); n != 0 {
			t.Errorf("the VIP was missing at %d samples", n)
		}
		for i, n := range ns {
			from := []string{"master", "backup"}[i]
			if tr := n.value("vipd_transitions_total", "instance=api", "from="+from); tr != 0 {
				t.Errorf("host %d: %v transitions from %s", i, tr, from)
			}
		}
	})
}

// A node without auth_hmac refuses signed adverts, as keepalived 2.2.7
// does: that is why a cluster goes through receive_only first.
func TestAuthHMACUnexpected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{
			startConfig(t, hs[0], one(authConfig(150, config.AuthPermissive, 1, map[uint8][]byte{1: secretA}))),
			startNode(t, hs[1], 100),
		}
		waitFor(t, 2*time.Second, "both hosts holding the VIP", func() bool { return len(holders(hs...)) == 2 })
		if dropped(ns[1], drop.AuthUnexpected) == 0 {
			t.Error("the unsigned node counted no auth_unexpected")
		}
		// receive_only on the signer mends it: it sends unsigned adverts.
		ns[0].d.Reload(one(authConfig(150, config.AuthReceiveOnly, 1, map[uint8][]byte{1: secretA})))
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
	})
}
