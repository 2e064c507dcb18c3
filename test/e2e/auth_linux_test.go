package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
)

// The auth_hmac tests: adverts signed with keepalived 2.4's HMAC-SHA256
// trailer. An authenticated pair fails over and hands over as any other;
// a stranger's adverts, unsigned, wrongly signed, replayed or too old, take
// nothing and are counted under their reason; keys rotate and a cluster
// moves from unsigned to enforced by reloads, without a transition or a
// lost echo reply; and vipd in receive_only mode pairs with keepalived 2.2,
// which knows nothing of the trailer.

// authFamilies are the flavours the failover test runs in.
var authFamilies = []struct {
	name    string
	vip     netip.Prefix
	unicast bool
}{
	{"ipv4", lab.VIP, false},
	{"ipv6", lab.VIP6, false},
	{"ipv4-unicast", lab.VIP, true},
}

// TestAuthFailoverAndHandover runs a pair that enforces one key: n1 (150)
// is elected; SIGKILL on n1 fails over to n2; vipd restarted on n1 takes
// the VIP back, n2 accepting its new adverts (time-based sequence numbers
// keep growing across a restart); a graceful stop of n1 hands over within
// Skew_Time, its priority-0 advert signed and accepted. Neither node ever
// counts an auth_* drop.
func TestAuthFailoverAndHandover(t *testing.T) {
	for _, fam := range authFamilies {
		t.Run(fam.name, func(t *testing.T) {
			r := newRig(t, 2, fam.vip)
			r.metrics = true
			n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
			keys := newAuthKeys(t, r.l.Dir, 1)
			if fam.unicast {
				if err := r.l.BlockMulticastVRRP(); err != nil {
					t.Fatal(err)
				}
			}
			in := func(n *lab.Node, priority int) lab.Instance {
				in := r.inst(priority)
				if fam.unicast {
					in = r.unicastInst(n, priority, r.l.Nodes, true)
				}
				return withAuth(in, keys.block(authEnforce, 0, 1))
			}
			r.start(n2, vipdKind, in(n2, 100))
			r.start(n1, vipdKind, in(n1, 150))
			r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
			p := r.probe()
			r.waitReply(p)
			r.waitNeigh(n1)
			r.holdSteady("n1 alone", 3*interval, lab.Only(n1))
			if !fam.unicast {
				// Unicast adverts do not reach the client.
				r.captureSigned(n1, keys.key(1))
			}

			kill := time.Now()
			if err := n1.Kill(); err != nil {
				t.Fatal(err)
			}
			r.waitHolders("n2 takes the VIP after n1's crash", includes(n2))
			took := time.Since(kill)
			r.waitNeigh(n2)
			r.waitReply(p)
			t.Logf("SIGKILL of n1: n2 held the VIP after %v (Master_Down_Interval %v)", took.Round(time.Millisecond), lab.MasterDownInterval(100, interval))

			r.start(n1, vipdKind, in(n1, 150))
			r.waitHolders("n1 alone holds the VIP again after its restart", lab.Only(n1))
			r.waitNeigh(n1)
			r.waitReply(p)
			r.holdSteady("n1 alone", 3*interval, lab.Only(n1))
			// n1's drops in its second life, before it stops; its first
			// life's are in its log.
			n1Drops := authOnly(droppedSince(nil, droppedByReason(t, n1)))

			p.ResetOutage()
			if _, err := n1.Stop(); err != nil {
				t.Errorf("vipd on n1 after SIGTERM: %v", err)
			}
			r.waitHolders("n2 alone holds the VIP after n1's graceful stop", lab.Only(n2))
			r.waitNeigh(n2)
			r.waitReply(p)
			outage := p.Stats().Outage
			mdi := lab.MasterDownInterval(100, interval)
			t.Logf("graceful stop of n1: the client lost the VIP for %v (Skew_Time %v, Master_Down_Interval %v)",
				outage.Round(time.Millisecond), lab.SkewTime(100, interval), mdi)
			if bound := min(2*interval+100*time.Millisecond, mdi); outage >= bound {
				t.Errorf("the client lost the VIP for %v when n1 stopped, want < %v: as if n2 had not accepted n1's signed priority-0 advert",
					outage.Round(time.Millisecond), bound)
			}

			if len(n1Drops) > 0 {
				t.Errorf("n1 counted auth drops: %s", reasonCounts(n1Drops))
			}
			if d := authOnly(droppedSince(nil, droppedByReason(t, n2))); len(d) > 0 {
				t.Errorf("n2 counted auth drops: %s", reasonCounts(d))
			}
			for _, n := range r.l.Nodes {
				if d := loggedAuthDrops(t, n); len(d) > 0 {
					t.Errorf("%s logged auth drops: %s", n.Name, reasonCounts(d))
				}
			}
		})
	}
}

// authPair starts n2 (100) and n1 (150) with the instance in gives them
// and waits until n1 alone holds the VIP and n2 has heard it.
func authPair(r *rig, in func(priority int) lab.Instance) {
	r.t.Helper()
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	r.start(n2, vipdKind, in(100))
	r.start(n1, vipdKind, in(150))
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	r.holdSteady("n1 alone", 3*interval, lab.Only(n1))
}

// TestAuthStranger has a third host (n3, running no daemon) flood the group
// with adverts for the VRID at priority 254, 100 at 10ms, while n1 (150)
// and n2 (100) enforce key 1: unsigned ones, ones signed as key 1 with
// another secret, ones signed with the right secret under a key id nobody
// has, and rightly signed ones whose trailer then gets an unknown ext_type.
// n1 stays the only holder throughout, no node changes state, and both
// count every advert, under auth_missing, auth_bad_hmac, auth_unknown_key
// and auth_malformed respectively, and log the refusal; over IPv4 and
// IPv6.
func TestAuthStranger(t *testing.T) {
	for _, fam := range unicastFamilies {
		t.Run(fam.name, func(t *testing.T) {
			r := newRig(t, 3, fam.vip)
			r.metrics = true
			n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
			keys := newAuthKeys(t, r.l.Dir, 1)
			authPair(r, func(priority int) lab.Instance { return withAuth(r.inst(priority), keys.block(authEnforce, 0, 1)) })

			a, err := lab.NewAdvertiser(n3)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			group := vrrp.IPv4Group
			if fam.vip.Addr().Is6() {
				group = vrrp.IPv6Group
			}
			src, err := a.Source(group)
			if err != nil {
				t.Fatal(err)
			}
			pkt := strangerAdvert(fam.vip.Addr(), 254)
			clock := &authClock{}
			wrongSecret := newAuthKey(t, 1, authSecret(t))
			unknownID := newAuthKey(t, 9, keys.secrets[1])
			right := keys.key(1)
			kinds := []struct {
				name, reason string
				build        func() ([]byte, error)
			}{
				{"unsigned", "auth_missing", func() ([]byte, error) {
					return pkt.Append(nil, src, group, vrrp.ChecksumPseudoHeader)
				}},
				{"wrong-secret", "auth_bad_hmac", func() ([]byte, error) {
					return wrongSecret.Append(nil, pkt, src, group, vrrp.ChecksumPseudoHeader, clock.next())
				}},
				{"unknown-key-id", "auth_unknown_key", func() ([]byte, error) {
					return unknownID.Append(nil, pkt, src, group, vrrp.ChecksumPseudoHeader, clock.next())
				}},
				{"malformed-trailer", "auth_malformed", func() ([]byte, error) {
					b, err := right.Append(nil, pkt, src, group, vrrp.ChecksumPseudoHeader, clock.next())
					if err != nil {
						return nil, err
					}
					b[len(b)-vrrp.AuthTrailerLen] = vrrp.AuthExtSHA256 + 1 // ext_type
					if src.Is6() {
						// Over IPv6 the checksum covers the trailer.
						reChecksum6(b, src, group)
					}
					return b, nil
				}},
			}
			for _, k := range kinds {
				// What the codec makes of it: only the trailer's
				// structure may be wrong, and only for malformed-trailer.
				b, err := k.build()
				if err != nil {
					t.Fatalf("%s: %v", k.name, err)
				}
				if _, err := vrrp.Parse(b, src, group); (err != nil) != (k.reason == "auth_malformed") ||
					(err != nil && !errors.Is(err, vrrp.ErrAuthMalformed)) {
					t.Fatalf("%s: vrrp.Parse of the stranger's advert: %v", k.name, err)
				}
				before := map[*lab.Node]map[string]float64{n1: droppedByReason(t, n1), n2: droppedByReason(t, n2)}
				since := time.Now()
				sampler := r.sampleVIP(10*time.Millisecond, time.Minute)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				sent, err := authFlood(ctx, 100, 10*time.Millisecond, func(int) error {
					b, err := k.build()
					if err != nil {
						return err
					}
					return a.SendMessage(src, group, b)
				})
				cancel()
				if err != nil {
					t.Fatalf("%s: %v", k.name, err)
				}
				// Were one accepted, n1 would give up the VIP at once (a
				// higher priority); a few intervals more show the
				// aftermath too.
				time.Sleep(3 * interval)
				onlyHolderThroughout(t, k.name, sampler.stop(t), n1)
				var got []string
				for _, n := range []*lab.Node{n1, n2} {
					d := waitDrops(t, n, before[n], k.reason, sent)
					wantDrops(t, k.name, n, d, k.reason, sent)
					noStateChanges(t, k.name, n, since)
					if !loggedFrom(t, n, k.reason, src) {
						t.Errorf("%s: %s logged no refusal for %s from %s", k.name, n.Name, k.reason, src)
					}
					got = append(got, n.Name+": "+reasonCounts(d))
				}
				t.Logf("%-17s %d adverts at priority 254 from %s; counted %s", k.name, sent, src, strings.Join(got, "; "))
			}
		})
	}
}

// TestAuthReplay records an advert n1 (150) signed, stops n1 gracefully so
// that n2 (100) takes over, then has the client replay the recorded bytes
// with n1's address as their source and TTL 255 (IP_HDRINCL): a valid MAC,
// a timestamp well within the window, a priority above n2's, but a
// sequence number below those n2 has accepted from n1 since. n2 must count
// each as auth_replay and keep the VIP.
func TestAuthReplay(t *testing.T) {
	r := newRig(t, 2, lab.VIP)
	r.metrics = true
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	keys := newAuthKeys(t, r.l.Dir, 1)
	authPair(r, func(priority int) lab.Instance {
		a := keys.block(authEnforce, 0, 1)
		// A window far longer than the test: the replay is refused for
		// its sequence number, not for its age.
		a.TimeWindow = time.Minute
		return withAuth(r.inst(priority), a)
	})
	msg, pkt := r.nextAdvertFrom(n1, "at priority 150, signed", func(p *vrrp.Packet) bool { return p.Signed && p.Priority == 150 })
	captured := time.Now()
	if !keys.key(1).Verify(msg, n1.Addr.Addr()) {
		t.Fatalf("n1's advert does not verify with key 1: %+v", pkt)
	}

	// n1's priority-0 advert, and whatever it sent after the capture, have
	// later sequence numbers.
	if _, err := n1.Stop(); err != nil {
		t.Errorf("vipd on n1 after SIGTERM: %v", err)
	}
	r.waitHolders("n2 alone holds the VIP", lab.Only(n2))
	svcWaitFor(t, "n2 logs its transition to master", patience, func() (bool, string) {
		return len(stateChangesTo(t, n2, "master", captured)) > 0, "not yet"
	})

	s := newRawSender(t, r.l.Client)
	s.src = n1.Addr.Addr() // spoofed
	before := droppedByReason(t, n2)
	since := time.Now()
	sampler := r.sampleVIP(10*time.Millisecond, time.Minute)
	const replays = 10
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	sent, err := authFlood(ctx, replays, 20*time.Millisecond, func(int) error {
		return s.send(vrrp.IPv4Group, 255, false, msg)
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// Accepted, the replay would have n2 step down at once.
	time.Sleep(3 * interval)
	onlyHolderThroughout(t, "replay", sampler.stop(t), n2)
	d := waitDrops(t, n2, before, "auth_replay", sent)
	wantDrops(t, "replay", n2, d, "auth_replay", sent)
	noStateChanges(t, "replay", n2, since)
	t.Logf("replayed n1's advert (priority %d, key %d, seq %#x, %v old) %d times from %s: n2 counted %s",
		pkt.Priority, pkt.Auth.KeyID, pkt.Auth.Seq, since.Sub(captured).Round(time.Millisecond), sent, s.src, reasonCounts(d))
}

// TestAuthStale has a third host that knows key 1 advertise priority 254
// with timestamps a minute old (sequence numbers from vrrp.SeqAt(now −
// 60s), growing). With anti_replay: time (the window is 5s here) n1 and n2
// count every advert as auth_stale and n1 keeps the VIP. With anti_replay:
// monotonic there is no clock to compare with: the adverts are accepted,
// and n1 steps down for the higher priority until they stop.
func TestAuthStale(t *testing.T) {
	for _, mode := range []string{"time", "monotonic"} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, 3, lab.VIP)
			r.metrics = true
			n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
			keys := newAuthKeys(t, r.l.Dir, 1)
			authPair(r, func(priority int) lab.Instance {
				a := keys.block(authEnforce, 0, 1)
				a.AntiReplay = mode
				return withAuth(r.inst(priority), a)
			})
			a, err := lab.NewAdvertiser(n3)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			group, src := vrrp.IPv4Group, n3.Addr.Addr()
			pkt := strangerAdvert(lab.VIP.Addr(), 254)
			key := keys.key(1)
			clock := &authClock{skew: -time.Minute}
			send := func(int) error {
				b, err := key.Append(nil, pkt, src, group, vrrp.ChecksumPseudoHeader, clock.next())
				if err != nil {
					return err
				}
				return a.SendMessage(src, group, b)
			}
			before := map[*lab.Node]map[string]float64{n1: droppedByReason(t, n1), n2: droppedByReason(t, n2)}
			since := time.Now()

			if mode == "time" {
				sampler := r.sampleVIP(10*time.Millisecond, time.Minute)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				sent, err := authFlood(ctx, 100, 10*time.Millisecond, send)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * interval)
				onlyHolderThroughout(t, "stale adverts", sampler.stop(t), n1)
				for _, n := range []*lab.Node{n1, n2} {
					d := waitDrops(t, n, before[n], "auth_stale", sent)
					wantDrops(t, "stale adverts", n, d, "auth_stale", sent)
					noStateChanges(t, "stale adverts", n, since)
					t.Logf("%d adverts a minute old: %s counted %s", sent, n.Name, reasonCounts(d))
				}
				return
			}

			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			type result struct {
				sent int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				sent, err := authFlood(ctx, 1000, 10*time.Millisecond, send)
				done <- result{sent, err}
			}()
			r.waitHolders("n1 gives up the VIP to the stranger's priority 254", func(h []*lab.Node) bool { return len(h) == 0 })
			cancel()
			res := <-done
			if res.err != nil && !errors.Is(res.err, context.Canceled) {
				t.Fatal(res.err)
			}
			r.waitHolders("n1 alone holds the VIP again once the stranger is silent", lab.Only(n1))
			if down := stateChangesTo(t, n1, "backup", since); len(down) == 0 || down[0].Reason != "higher priority seen" {
				t.Errorf("n1's transitions to backup during the stranger's adverts: %+v, want one for a higher priority", down)
			}
			for _, n := range []*lab.Node{n1, n2} {
				if d := authOnly(droppedSince(before[n], droppedByReason(t, n))); len(d) > 0 {
					t.Errorf("%s counted auth drops with anti_replay: monotonic: %s, want none", n.Name, reasonCounts(d))
				}
			}
			t.Logf("anti_replay monotonic: %d adverts a minute old from %s, accepted; n1 stepped down and took the VIP back", res.sent, src)
		})
	}
}

// TestAuthRotation rotates the key of an enforcing pair under a 2ms ping of
// the VIP, by reloading both nodes at each of the three steps: add key 2
// (key 1 still signs), sign with key 2, remove key 1. n1's adverts are
// taken off the wire after every reload to see which key signs. No step,
// nor the moment between the two nodes' reloads, may cost a transition,
// a change in "vipd status", an echo reply or a single drop. Then an
// advert signed with the removed key is refused as from an unknown key.
func TestAuthRotation(t *testing.T) {
	r := newRig(t, 3, lab.VIP)
	r.metrics = true
	n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
	keys := newAuthKeys(t, r.l.Dir, 1, 2)
	prio := map[*lab.Node]int{n1: 150, n2: 100}
	in := func(n *lab.Node, a *lab.AuthHMAC) lab.Instance { return withAuth(r.inst(prio[n]), a) }
	r.start(n2, vipdKind, in(n2, keys.block(authEnforce, 0, 1)))
	r.start(n1, vipdKind, in(n1, keys.block(authEnforce, 0, 1)))
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	r.holdSteady("n1 alone", 3*interval, lab.Only(n1))
	r.captureSigned(n1, keys.key(1))

	pair := []*lab.Node{n1, n2}
	for _, step := range []struct {
		what  string
		block *lab.AuthHMAC
		order []*lab.Node
		signs int // the key n1 signs with after each of the step's reloads
	}{
		{"add key 2", keys.block(authEnforce, 1, 1, 2), []*lab.Node{n2, n1}, 1},
		{"sign with key 2", keys.block(authEnforce, 2, 1, 2), []*lab.Node{n1, n2}, 2},
		{"remove key 1", keys.block(authEnforce, 2, 2), []*lab.Node{n2, n1}, 2},
	} {
		r.holdUndisturbed(p, n1, pair, step.what, 6*interval, func() {
			for _, n := range step.order {
				r.reloadVipd(n, in(n, step.block))
				// n2 hears n1's adverts under every mix of the two
				// configurations.
				r.captureSigned(n1, keys.key(step.signs))
			}
		})
		t.Logf("%s: no transition, no lost reply, no drop; n1 signs with key %d", step.what, step.signs)
	}

	a, err := lab.NewAdvertiser(n3)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	src, group := n3.Addr.Addr(), vrrp.IPv4Group
	old, low, clock := keys.key(1), strangerAdvert(lab.VIP.Addr(), 1), &authClock{}
	before := map[*lab.Node]map[string]float64{n1: droppedByReason(t, n1), n2: droppedByReason(t, n2)}
	const count = 5
	for range count {
		b := authSign(t, old, low, src, group, clock.next())
		if err := a.SendMessage(src, group, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range pair {
		d := waitDrops(t, n, before[n], "auth_unknown_key", count)
		wantDrops(t, "advert signed with the removed key 1", n, d, "auth_unknown_key", count)
	}
}

// TestAuthRollout moves clusters from unsigned adverts to enforced ones by
// reloads.
//
// vipd only (n1 150, n2 100, n3 50, all unsigned, under a 2ms ping): n2
// goes to receive_only, then n1 and n3; then every node, one at a time, to
// permissive (signing), then to enforce. No reload costs a transition, a
// change in "vipd status", an echo reply or a drop. Every node must verify
// before any signs: a node without auth_hmac drops signed adverts
// (auth_unexpected) and takes over as if the Master were gone, which the
// test shows last by restarting n3 without auth_hmac, while the others
// count its unsigned adverts as auth_missing.
//
// With keepalived 2.2 (VRRPv3, no auth_hmac): vipd in receive_only mode
// accepts keepalived's unsigned adverts and sends unsigned ones, so the two
// fail over both ways and neither drops or complains. vipd in permissive
// mode signs, and keepalived takes the longer message for a bad one and
// drops it; keepalived, hearing no Master, becomes one too: both hold the
// VIP. vipd accepts keepalived's unsigned adverts (permissive) and drops
// nothing.
func TestAuthRollout(t *testing.T) {
	t.Run("vipd", testAuthRolloutVipd)
	t.Run("keepalived-receive-only", testAuthRolloutKeepalivedReceiveOnly)
	t.Run("keepalived-permissive", testAuthRolloutKeepalivedPermissive)
}

func testAuthRolloutVipd(t *testing.T) {
	r := newRig(t, 3, lab.VIP)
	r.metrics = true
	n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
	keys := newAuthKeys(t, r.l.Dir, 1)
	prio := map[*lab.Node]int{n1: 150, n2: 100, n3: 50}
	signs := map[*lab.Node]bool{}
	in := func(n *lab.Node, mode string) lab.Instance {
		in := r.inst(prio[n])
		if mode != "" {
			in.AuthHMAC = keys.block(mode, 0, 1)
		}
		return in
	}
	for _, n := range []*lab.Node{n3, n2, n1} {
		r.start(n, vipdKind, in(n, ""))
	}
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	r.holdSteady("n1 alone", 3*interval, lab.Only(n1))

	all := r.l.Nodes
	for _, step := range []struct {
		what  string
		mode  string
		nodes []*lab.Node
	}{
		{"n2 verifies, n1 and n3 send unsigned", authReceiveOnly, []*lab.Node{n2}},
		{"every node verifies", authReceiveOnly, []*lab.Node{n1, n3}},
		{"every node signs and accepts unsigned", authPermissive, []*lab.Node{n1, n2, n3}},
		{"every node enforces", authEnforce, []*lab.Node{n1, n2, n3}},
	} {
		r.holdUndisturbed(p, n1, all, step.what, 6*interval, func() {
			for _, n := range step.nodes {
				r.reloadVipd(n, in(n, step.mode))
				signs[n] = step.mode == authPermissive || step.mode == authEnforce
				// Wait for an advert of n1's under the new mix of
				// configurations: the others hear it too.
				r.nextAdvertFrom(n1, fmt.Sprintf("signed %t", signs[n1]), func(p *vrrp.Packet) bool { return p.Signed == signs[n1] })
			}
		})
		t.Logf("%s: no transition, no lost reply, no drop", step.what)
	}
	r.captureSigned(n1, keys.key(1))

	// A node that missed the rollout.
	before := droppedByReason(t, n1)
	since := time.Now()
	if _, err := n3.Stop(); err != nil {
		t.Fatal(err)
	}
	r.start(n3, vipdKind, in(n3, ""))
	r.waitHolders("n3, deaf to the signed adverts, holds the VIP beside n1", func(h []*lab.Node) bool {
		return includes(n1)(h) && includes(n3)(h)
	})
	svcWaitFor(t, "n3 counts n1's signed adverts as auth_unexpected", patience, func() (bool, string) {
		d := droppedSince(nil, droppedByReason(t, n3))
		return d["auth_unexpected"] > 0, reasonCounts(d)
	})
	d := waitDrops(t, n1, before, "auth_missing", 1)
	if d["auth_missing"] == 0 {
		t.Errorf("n1 counted %s while n3 advertised unsigned, want auth_missing", reasonCounts(d))
	}
	if up := stateChangesTo(t, n3, "master", since); len(up) != 1 {
		t.Errorf("n3's transitions to master after its restart without auth_hmac: %+v, want one", up)
	}
	for _, n := range []*lab.Node{n1, n2} {
		noStateChanges(t, "n3 without auth_hmac", n, since)
	}
	t.Logf("n3 restarted without auth_hmac: it counted %s and became master beside n1; n1 counted %s",
		reasonCounts(authOnly(droppedSince(nil, droppedByReason(t, n3)))), reasonCounts(authOnly(d)))
}

// authKeepalivedRig is a pair for the keepalived cases, its vipd serving
// metrics.
func authKeepalivedRig(t *testing.T) *rig {
	needKeepalived(t)
	r := newRig(t, 2, lab.VIP)
	r.metrics = true
	return r
}

// keepalivedSeen is what vipd on vipdNode dropped of keepalived's adverts
// from kaNode, by reason, as vipd's log tells.
func keepalivedSeen(t *testing.T, r *rig, vipdNode, kaNode *lab.Node) map[string]int {
	t.Helper()
	src := r.source(kaNode)
	seen := reasons(dropsFrom(t, vipdNode, src))
	for _, a := range authRefusals(t, vipdNode) {
		if a.From == src {
			seen[a.Reason] += 1 + a.NotLogged
		}
	}
	return seen
}

func testAuthRolloutKeepalivedReceiveOnly(t *testing.T) {
	r := authKeepalivedRig(t)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	keys := newAuthKeys(t, r.l.Dir, 1)
	r.diag = func() string {
		return fmt.Sprintf("vipd on n2 dropped keepalived's adverts: %v", keepalivedSeen(t, r, n2, n1))
	}
	r.start(n2, vipdKind, withAuth(r.inst(100), keys.block(authReceiveOnly, 0, 1)))
	r.start(n1, keepalivedKind, r.inst(150))
	r.waitHolders("keepalived on n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	r.holdSteady("n1 alone", 3*interval, lab.Only(n1))

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("vipd on n2 takes the VIP", includes(n2))
	r.waitNeigh(n2)
	r.waitReply(p)
	// vipd verifies but does not sign.
	r.nextAdvertFrom(n2, "unsigned, from vipd in receive_only", func(p *vrrp.Packet) bool { return !p.Signed })

	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("keepalived on n1 takes the VIP back", lab.Only(n1))
	r.waitNeigh(n1)
	r.waitReply(p)
	r.holdSteady("n1 alone", 3*interval, lab.Only(n1))

	p.ResetOutage()
	if _, err := n1.Stop(); err != nil {
		t.Errorf("stop keepalived on n1: %v", err)
	}
	r.waitHolders("vipd on n2 alone holds the VIP", lab.Only(n2))
	r.waitNeigh(n2)
	r.waitReply(p)
	mdi := lab.MasterDownInterval(100, interval)
	if o, bound := p.Stats().Outage, min(2*interval+100*time.Millisecond, mdi); o >= bound {
		t.Errorf("the client lost the VIP for %v when keepalived on n1 stopped, want < %v: as if vipd had not accepted its priority-0 advert", o.Round(time.Millisecond), bound)
	}
	if d := keepalivedSeen(t, r, n2, n1); len(d) > 0 {
		t.Errorf("vipd in receive_only dropped keepalived's adverts: %v", d)
	}
	if d := droppedSince(nil, droppedByReason(t, n2)); len(authOnly(d)) > 0 {
		t.Errorf("vipd in receive_only counted %s", reasonCounts(d))
	}
	if complaints := kaComplaints(t, r, n1); len(complaints) > 0 {
		t.Errorf("keepalived complained about vipd's adverts:\n%s", strings.Join(complaints, "\n"))
	}
}

func testAuthRolloutKeepalivedPermissive(t *testing.T) {
	r := authKeepalivedRig(t)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	keys := newAuthKeys(t, r.l.Dir, 1)
	r.start(n2, keepalivedKind, r.inst(100))
	r.start(n1, vipdKind, withAuth(r.inst(150), keys.block(authPermissive, 0, 1)))
	r.waitHolders("vipd on n1 holds the VIP", includes(n1))
	r.captureSigned(n1, keys.key(1))
	// keepalived cannot read the signed adverts: it becomes Master too,
	// and stays, while vipd, which accepts keepalived's unsigned adverts of
	// a lower priority, stays Master.
	both := func(h []*lab.Node) bool { return len(h) == 2 }
	r.waitHolders("both hold the VIP: keepalived hears no Master it understands", both)
	r.holdSteady("both n1 and n2", 10*interval, both)
	if d := keepalivedSeen(t, r, n1, n2); len(d) > 0 {
		t.Errorf("vipd in permissive mode dropped keepalived's adverts: %v", d)
	}
	if d := droppedSince(nil, droppedByReason(t, n1)); len(authOnly(d)) > 0 {
		t.Errorf("vipd in permissive mode counted %s", reasonCounts(d))
	}
	complaints := kaComplaints(t, r, n2)
	tooLong := 0
	for _, c := range complaints {
		if strings.Contains(c, "vrrp packet too long") {
			tooLong++
		}
	}
	if tooLong == 0 {
		t.Errorf("keepalived logged no \"vrrp packet too long\" for vipd's signed adverts; its complaints:\n%s", strings.Join(complaints, "\n"))
	}
	t.Logf("split brain with keepalived 2.2: it logged %d complaints about vipd's signed adverts, the first: %q",
		len(complaints), firstOf(complaints))
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// kaComplaints are keepalived's complaints on n about the adverts it
// received, without the lines that only name the lab's files (their paths
// hold the test's name, and "Auth" is among the words of a complaint).
func kaComplaints(t *testing.T, r *rig, n *lab.Node) []string {
	t.Helper()
	all, err := n.KeepalivedComplaints()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range all {
		if !strings.Contains(c, r.l.Dir) {
			out = append(out, c)
		}
	}
	return out
}
