package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
)

// TestVRRPv2Password runs VRRPv2 (whole seconds) with a simple password on
// n1 and n2, and on n3 the same VRID with the wrong password and a higher
// priority. n1 and n2 fail over between themselves on a cable cut, on
// preemption and on a graceful stop; n3, ignoring them as they ignore it,
// makes itself Master of its own (so the VIP is on it too) but never
// disturbs them: they drop its adverts as auth_mismatch.
func TestVRRPv2Password(t *testing.T) {
	const v2interval = time.Second
	r := newRig(t, 3, lab.VIP)
	n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
	v2 := func(priority int, pass string) lab.Instance {
		in := r.inst(priority)
		in.Version, in.AuthPass, in.AdvertInterval = 2, pass, v2interval
		return in
	}
	r.start(n3, vipdKind, v2(200, "wrong"))
	r.start(n2, vipdKind, v2(100, "s3cret"))
	r.start(n1, vipdKind, v2(150, "s3cret"))
	group := []*lab.Node{n1, n2}
	withN3 := func(cond func([]*lab.Node) bool) func([]*lab.Node) bool {
		return func(h []*lab.Node) bool { return cond(h) && includes(n3)(h) }
	}
	r.waitHolders("n1 alone of n1 and n2 holds the VIP, and n3 too", withN3(onlyAmong(n1, group...)))
	r.holdSteady("n1 alone of n1 and n2", 2*v2interval, onlyAmong(n1, group...))

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n2 takes the VIP", onlyAmong(n2, group...))
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n1 takes the VIP back", onlyAmong(n1, group...))
	r.holdSteady("n1 alone of n1 and n2", v2interval, onlyAmong(n1, group...))

	stopped := time.Now()
	if _, err := n1.Stop(); err != nil {
		t.Errorf("vipd on n1 after SIGTERM: %v", err)
	}
	r.waitHolders("n2 takes the VIP", onlyAmong(n2, group...))
	took := time.Since(stopped)
	t.Logf("n2 held the VIP %v after n1's SIGTERM (Skew_Time %v)", took.Round(time.Millisecond), lab.SkewTime(100, v2interval))
	if bound := 2*v2interval + 100*time.Millisecond; took >= bound {
		t.Errorf("n2 took over %v after n1's SIGTERM, want < %v: the priority-0 advert should cut the wait to Skew_Time", took.Round(time.Millisecond), bound)
	}
	r.holdSteady("n2 alone of n1 and n2", v2interval, onlyAmong(n2, group...))

	// Each side dropped the other's adverts for the password, and nothing
	// else.
	for _, c := range []struct {
		at   *lab.Node
		from []*lab.Node
	}{{n1, []*lab.Node{n3}}, {n2, []*lab.Node{n3}}, {n3, []*lab.Node{n1, n2}}} {
		for _, from := range c.from {
			got := reasons(dropsFrom(t, c.at, from.Addr.Addr().String()))
			if got["auth_mismatch"] == 0 || len(got) != 1 {
				t.Errorf("%s's drops of %s's adverts: %v, want auth_mismatch only", c.at.Name, from.Name, got)
			}
		}
	}
	for _, n := range group {
		for _, d := range mustDrops(t, n) {
			if d.From != n3.Addr.Addr().String() {
				t.Errorf("%s dropped a packet from %s: %s", n.Name, d.From, d.Reason)
			}
		}
	}
	changes, err := n3.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[1].To != "master" {
		t.Errorf("n3's state changes %+v, want init → backup → master, undisturbed", changes)
	}
}

// TestVRRPv2IntervalMismatchDropped has a stranger with the right password
// advertise the VRID with a higher priority but another interval (3s
// against 1s). RFC 3768 §7.1: a receiver MUST discard an advert whose
// Adver Int differs from its own (VRRPv3 learns it instead; VRRPv2 has no
// such thing), as keepalived does ("advertisement interval mismatch"). The
// Master must keep the VIP.
func TestVRRPv2IntervalMismatchDropped(t *testing.T) {
	r := newRig(t, 2, lab.VIP)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	in := r.inst(100)
	in.Version, in.AuthPass, in.AdvertInterval = 2, "s3cret", time.Second
	r.start(n1, vipdKind, in)
	r.waitHolders("n1 holds the VIP", lab.Only(n1))

	a, err := lab.NewAdvertiser(n2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pkt := &vrrp.Packet{
		Version: 2, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: 200, Interval: 3,
		AuthType: 1, Addresses: []netip.Addr{lab.VIP.Addr()},
	}
	copy(pkt.AuthData[:], "s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := a.Advertise(ctx, netip.Addr{}, vrrp.IPv4Group, pkt, 300*time.Millisecond, 10); err != nil {
			t.Errorf("stranger's adverts: %v", err)
		}
	}()
	defer func() { cancel(); <-done }()
	r.holdSteady("n1 alone", 2*time.Second, lab.Only(n1))
	changes, err := n1.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	if last := changes[len(changes)-1]; last.To != "master" {
		t.Errorf("n1 left Master: %+v", last)
	}
	t.Logf("n1's drops from n2: %v", reasons(dropsFrom(t, n1, n2.Addr.Addr().String())))
}
