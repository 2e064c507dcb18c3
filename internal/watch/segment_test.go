package watch

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/pkg/vrrp"
)

// segment is a link a monitor listens on, simulated or real.
type segment struct {
	mon *Monitor
	clk *fakeClock
	// send puts b on the link from src to its family's group (224.0.0.18
	// or ff02::12) with IPv4 TTL or IPv6 hop limit ttl.
	send func(b []byte, src netip.Addr, ttl int) error
}

// sides are the two routers of testSegment in one family, with their
// virtual addresses. IPv6 routers send from link-local addresses (RFC 9568
// §5.1.2.1).
type sides struct {
	fam        Family
	a, b       netip.Addr
	vipA, vipB []string
}

var (
	sides4 = sides{IPv4, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3"),
		[]string{"192.0.2.50"}, []string{"192.0.2.60", "192.0.2.61"}}
	sides6 = sides{IPv6, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::3"),
		[]string{"2001:db8::50"}, []string{"2001:db8::60", "2001:db8::61"}}
)

// waitHeard waits up to 5s for the monitor to have taken n packets, adverts
// and drops together.
func waitHeard(t *testing.T, m *Monitor, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := m.Report()
		got := r.Adverts
		for _, d := range r.Drops {
			got += d.Count
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor took %d packets after 5s, want %d: %+v", got, n, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testSegment is the body shared by the simulated and the real link, for
// either family: two routers, sd.a and sd.b, both advertise as Master of
// VRID 7 with disjoint addresses for three intervals, the second signing
// with auth_hmac key 1; then one advert is corrupted and one arrives with
// TTL (hop limit) 64.
func testSegment(t *testing.T, seg segment, sd sides) {
	a, b := sd.a, sd.b
	routers := []struct {
		src   netip.Addr
		p     *vrrp.Packet
		keyID uint8 // 0: unsigned
	}{
		{a, adv(7, 100, 100, sd.vipA...), 0},
		{b, adv(7, 90, 100, sd.vipB...), 1},
	}
	var sent uint64
	for range 3 {
		for _, r := range routers {
			msg := marshal(t, r.p, r.src)
			if r.keyID != 0 {
				msg = sign(t, r.p, r.keyID, r.src, seg.clk.Now())
			}
			if err := seg.send(msg, r.src, 255); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		// The fake clock moves only once the round was heard, so the
		// timing the table sees does not depend on the scheduler.
		waitHeard(t, seg.mon, sent)
		seg.clk.Advance(time.Second)
	}
	bad := marshal(t, routers[0].p, a)
	bad[7] ^= 0xff
	if err := seg.send(bad, a, 255); err != nil {
		t.Fatal(err)
	}
	waitHeard(t, seg.mon, sent+1)
	// A valid advert that a router forwarded: RFC 9568 §7.1 drops it,
	// over IPv6 as over IPv4.
	if err := seg.send(marshal(t, routers[0].p, a), a, 64); err != nil {
		t.Fatal(err)
	}
	waitHeard(t, seg.mon, sent+2)

	r := seg.mon.Report()
	start, last := seg.clk.Now().Add(-3*time.Second), seg.clk.Now().Add(-time.Second)
	want := []Router{
		{VRID: 7, Family: sd.fam, Version: 3, Sender: a, Priority: 100, Interval: time.Second, Addresses: addrs(sd.vipA...), FirstSeen: start, LastSeen: last, Adverts: 3, State: Master},
		{VRID: 7, Family: sd.fam, Version: 3, Sender: b, Priority: 90, Interval: time.Second, Addresses: addrs(sd.vipB...), Signed: true, KeyID: 1, FirstSeen: start, LastSeen: last, Adverts: 3, State: Master},
	}
	if diff := cmp.Diff(want, r.Routers, cmpAddr); diff != "" {
		t.Errorf("routers (-want +got):\n%s", diff)
	}
	var kinds []ConflictKind
	for _, c := range r.Conflicts {
		kinds = append(kinds, c.Kind)
	}
	if diff := cmp.Diff([]ConflictKind{MultipleMasters, VRIDReuse, SigningMismatch}, kinds); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}
	for _, c := range r.Conflicts {
		if c.Family != sd.fam {
			t.Errorf("conflict %v in family %v, want %v", c.Kind, c.Family, sd.fam)
		}
	}
	if diff := cmp.Diff([]DropCount{{drop.TTL, 1}, {drop.Checksum, 1}}, r.Drops); diff != "" || r.Adverts != 6 {
		t.Errorf("%d adverts, drops (-want +got):\n%s", r.Adverts, diff)
	}
}
