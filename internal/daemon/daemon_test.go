package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

var vip = netip.MustParsePrefix("192.0.2.50/24")

func instanceConfig(prio uint8) config.Instance {
	return config.Instance{
		Name: "api", Interface: "eth0", VRID: 51, Priority: prio,
		AdvertInterval: 10 * time.Millisecond, Preempt: true,
		VIPs:     []netip.Prefix{vip},
		Announce: config.Announce{Count: 3, Interval: 10 * time.Millisecond},
	}
}

// node is one daemon on a simulated host.
type node struct {
	h      *host
	d      *Daemon
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, h *host, prio uint8) *node {
	t.Helper()
	cfg := &config.Config{File: "test.yaml", Instances: []config.Instance{instanceConfig(prio)}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", h.addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{h: h, d: New(cfg, h, log), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		if err := n.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// waitFor polls cond every millisecond for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holders returns the indexes of the hosts that have the VIP.
func holders(hs ...*host) []int {
	var out []int
	for i, h := range hs {
		if h.has(vip) {
			out = append(out, i)
		}
	}
	return out
}

func only(i int, hs ...*host) func() bool {
	return func() bool { got := holders(hs...); return len(got) == 1 && got[0] == i }
}

func TestElectionAndGracefulHandover(t *testing.T) {
	seg := &segment{}
	hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12"), newHost(seg, "192.0.2.13")}
	// A VIP left behind by a crashed run on a Backup host must go.
	hs[1].vips[vip] = true
	ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100), startNode(t, hs[2], 50)}

	waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
	if hs[0].announcements() == 0 {
		t.Error("new Master sent no gratuitous ARP")
	}
	// Stable: exactly one holder at every sample.
	for i := 0; i < 100; i++ {
		if got := holders(hs...); len(got) != 1 || got[0] != 0 {
			t.Fatalf("sample %d: holders %v, want [0]", i, got)
		}
		time.Sleep(time.Millisecond)
	}

	// Graceful stop: priority 0, then host 1 takes over after Skew_Time
	// (6 ms) rather than Master_Down_Interval (36 ms).
	ns[0].stop()
	if hs[0].has(vip) {
		t.Fatal("stopped Master kept its VIP")
	}
	waitFor(t, time.Second, "host 1 alone holding the VIP", only(1, hs...))
	st := ns[1].d.Status()
	if len(st) != 1 || st[0].State != router.Master {
		t.Fatalf("host 1 status %+v, want master", st)
	}
}

func TestDropsAreCountedAndHarmless(t *testing.T) {
	seg := &segment{}
	h := newHost(seg, "192.0.2.11")
	n := startNode(t, h, 150)
	waitFor(t, 2*time.Second, "the lone node to become Master", func() bool { return h.has(vip) })

	stranger := netip.MustParseAddr("192.0.2.99")
	good := func(mod func(*vrrp.Packet)) []byte {
		p := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 200, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
		mod(p)
		b, err := p.Marshal(stranger, vrrp.IPv4Group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	higher := good(func(*vrrp.Packet) {})
	badSum := append([]byte(nil), higher...)
	badSum[6] ^= 0xff
	tests := []struct {
		b      []byte
		ttl    int
		reason DropReason
	}{
		{b: higher, ttl: 64, reason: DropTTL},
		{b: higher[:5], ttl: 255, reason: DropTruncated},
		{b: append(append([]byte(nil), higher...), 0, 0, 0, 0), ttl: 255, reason: DropOversized},
		{b: badSum, ttl: 255, reason: DropChecksum},
		{b: good(func(p *vrrp.Packet) { p.VRID = 52 }), ttl: 255, reason: DropUnknownVRID},
		{b: good(func(p *vrrp.Packet) { p.Version = 2; p.Interval = 1 }), ttl: 255, reason: DropVersion},
	}
	for _, tt := range tests {
		before := n.d.Drops().Get(tt.reason)
		for i := 0; i < 50; i++ {
			seg.inject(tt.b, stranger, vrrp.IPv4Group, tt.ttl)
		}
		waitFor(t, time.Second, "drops counted as "+tt.reason.String(), func() bool { return n.d.Drops().Get(tt.reason) >= before+50 })
	}
	if !h.has(vip) || n.d.Status()[0].State != router.Master {
		t.Fatalf("bad packets changed the state: %+v", n.d.Status())
	}
	// The same advertisement, valid, does make it step down.
	seg.inject(higher, stranger, vrrp.IPv4Group, 255)
	waitFor(t, time.Second, "Master to yield to a higher priority", func() bool { return !h.has(vip) })
}
