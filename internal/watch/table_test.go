package watch

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/pkg/vrrp"
)

// t0 is the fake clock's origin; tests give times as offsets from it.
var t0 = time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func addrs(ss ...string) []netip.Addr {
	as := make([]netip.Addr, len(ss))
	for i, s := range ss {
		as[i] = netip.MustParseAddr(s)
	}
	return as
}

// adv is a VRRPv3 advert; interval in centiseconds.
func adv(vrid, prio uint8, interval uint16, vips ...string) *vrrp.Packet {
	return &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: prio, Interval: interval, Addresses: addrs(vips...)}
}

// signed is p as ParseInto decodes it when signed with auth_hmac key id.
func signed(p *vrrp.Packet, id uint8) *vrrp.Packet {
	q := *p
	q.Signed, q.Auth = true, vrrp.AuthTrailer{KeyID: id, Seq: 1 << 32}
	return &q
}

// obs is one observation for a table test.
type obs struct {
	at  time.Duration
	src string
	p   *vrrp.Packet
}

// every returns the adverts src sends every interval from start to end
// inclusive.
func every(src string, start, end, interval time.Duration, p *vrrp.Packet) []obs {
	var os []obs
	for d := start; d <= end; d += interval {
		os = append(os, obs{d, src, p})
	}
	return os
}

// feed returns a table fed with the observations of each list, in time
// order.
func feed(cfg Config, lists ...[]obs) *Table {
	var all []obs
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b obs) int { return int(a.at - b.at) })
	t := NewTable(cfg)
	for _, o := range all {
		t.Observe(at(o.at), netip.MustParseAddr(o.src), o.p)
	}
	return t
}

func TestSnapshotSortedAndCopied(t *testing.T) {
	tab := NewTable(Config{})
	p := adv(9, 100, 100, "192.0.2.90")
	tab.Observe(at(0), netip.MustParseAddr("192.0.2.3"), p)
	tab.Observe(at(0), netip.MustParseAddr("2001:db8::1"), adv(2, 100, 100, "2001:db8::2"))
	tab.Observe(at(0), netip.MustParseAddr("192.0.2.1"), adv(9, 50, 100, "192.0.2.90"))
	tab.Observe(at(0), netip.MustParseAddr("192.0.2.9"), adv(2, 100, 100, "192.0.2.20"))
	v2 := &vrrp.Packet{Version: 2, Type: vrrp.TypeAdvertisement, VRID: 2, Priority: 255, Interval: 1, Addresses: addrs("192.0.2.20")}
	tab.Observe(at(time.Second), netip.MustParseAddr("::ffff:192.0.2.4"), v2) // mapped: stored unmapped

	// The caller reuses its packet: the table must have copied.
	p.Addresses[0] = netip.MustParseAddr("192.0.2.99")
	p.Priority = 1

	got := tab.Snapshot(at(2 * time.Second))
	want := []Router{
		{VRID: 2, Family: IPv4, Version: 2, Sender: netip.MustParseAddr("192.0.2.4"), Priority: 255, Interval: time.Second, Addresses: addrs("192.0.2.20"), FirstSeen: at(time.Second), LastSeen: at(time.Second), Adverts: 1, State: Master},
		{VRID: 2, Family: IPv4, Version: 3, Sender: netip.MustParseAddr("192.0.2.9"), Priority: 100, Interval: time.Second, Addresses: addrs("192.0.2.20"), FirstSeen: at(0), LastSeen: at(0), Adverts: 1, State: Silent},
		{VRID: 2, Family: IPv6, Version: 3, Sender: netip.MustParseAddr("2001:db8::1"), Priority: 100, Interval: time.Second, Addresses: addrs("2001:db8::2"), FirstSeen: at(0), LastSeen: at(0), Adverts: 1, State: Master},
		{VRID: 9, Family: IPv4, Version: 3, Sender: netip.MustParseAddr("192.0.2.1"), Priority: 50, Interval: time.Second, Addresses: addrs("192.0.2.90"), FirstSeen: at(0), LastSeen: at(0), Adverts: 1, State: Master},
		{VRID: 9, Family: IPv4, Version: 3, Sender: netip.MustParseAddr("192.0.2.3"), Priority: 100, Interval: time.Second, Addresses: addrs("192.0.2.90"), FirstSeen: at(0), LastSeen: at(0), Adverts: 1, State: Master},
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}

	// Nor may the caller's changes to a snapshot reach the table.
	got[0].Addresses[0] = netip.MustParseAddr("192.0.2.99")
	if again := tab.Snapshot(at(2 * time.Second)); again[0].Addresses[0] != netip.MustParseAddr("192.0.2.20") {
		t.Errorf("changing a snapshot changed the table: %v", again[0].Addresses)
	}
}

func TestObserveUpdates(t *testing.T) {
	tab := NewTable(Config{})
	src := netip.MustParseAddr("192.0.2.1")
	tab.Observe(at(0), src, adv(1, 100, 100, "192.0.2.50"))
	tab.Observe(at(time.Second), src, adv(1, 120, 200, "192.0.2.50", "192.0.2.51"))
	got := tab.Snapshot(at(1500 * time.Millisecond))
	want := []Router{{VRID: 1, Family: IPv4, Version: 3, Sender: src, Priority: 120, Interval: 2 * time.Second,
		Addresses: addrs("192.0.2.50", "192.0.2.51"), FirstSeen: at(0), LastSeen: at(time.Second), Adverts: 2, State: Master}}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
}

func TestObserveSigning(t *testing.T) {
	tab := NewTable(Config{})
	src := netip.MustParseAddr("192.0.2.1")
	p := adv(1, 100, 100, "192.0.2.50")
	for i, step := range []struct {
		p      *vrrp.Packet
		signed bool
		keyID  uint8
	}{
		{signed(p, 1), true, 1},
		{signed(p, 2), true, 2}, // a key rotation
		{p, false, 0},           // and back to unsigned: the last advert counts
		{signed(p, 0), true, 0}, // key id 0 is not vipd's, but the wire allows it
	} {
		now := at(time.Duration(i) * time.Second)
		tab.Observe(now, src, step.p)
		got := tab.Snapshot(now)
		if len(got) != 1 || got[0].Signed != step.signed || got[0].KeyID != step.keyID || got[0].Adverts != uint64(i+1) {
			t.Errorf("after advert %d: %+v, want signed %v with key id %d", i+1, got, step.signed, step.keyID)
		}
	}
}

func TestForget(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3")
	tests := []struct {
		name string
		cfg  Config
		at   time.Duration
		want []netip.Addr // senders left
	}{
		// a advertises every 1s, b every 3s; both last at 0.
		{"default, within 10 intervals", Config{}, 10 * time.Second, []netip.Addr{a, b}},
		{"default, a past 10 intervals", Config{}, 10*time.Second + 1, []netip.Addr{b}},
		{"default, b at 30s", Config{}, 30 * time.Second, []netip.Addr{b}},
		{"default, all gone", Config{}, 30*time.Second + 1, nil},
		{"fixed, within", Config{Forget: 5 * time.Second}, 5 * time.Second, []netip.Addr{a, b}},
		{"fixed, past", Config{Forget: 5 * time.Second}, 5*time.Second + 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(tt.cfg)
			tab.Observe(at(0), a, adv(1, 100, 100, "192.0.2.50"))
			tab.Observe(at(0), b, adv(1, 100, 300, "192.0.2.51"))
			var got []netip.Addr
			for _, r := range tab.Snapshot(at(tt.at)) {
				got = append(got, r.Sender)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("senders (-want +got):\n%s", diff)
			}
			if cs := tab.Conflicts(at(tt.at)); len(tt.want) < 2 && len(cs) > 0 {
				t.Errorf("conflicts with a forgotten sender: %v", cs)
			}
			tab.Expire(at(tt.at))
			if len(tab.routers) != len(tt.want) {
				t.Errorf("after Expire the table holds %d senders, want %d", len(tab.routers), len(tt.want))
			}
		})
	}

	// A forgotten sender heard again starts afresh.
	tab := NewTable(Config{})
	tab.Observe(at(0), a, adv(1, 100, 100, "192.0.2.50"))
	tab.Observe(at(time.Minute), a, adv(1, 100, 100, "192.0.2.50"))
	if got := tab.Snapshot(at(time.Minute)); got[0].Adverts != 1 || !got[0].FirstSeen.Equal(at(time.Minute)) {
		t.Errorf("sender heard again after being forgotten: %d adverts, first seen %v; want 1 at %v", got[0].Adverts, got[0].FirstSeen, at(time.Minute))
	}
}

func TestStates(t *testing.T) {
	const s = time.Second
	p := adv(1, 100, 100, "192.0.2.50")
	high := adv(1, 200, 100, "192.0.2.50")
	resign := adv(1, 0, 100, "192.0.2.50")
	tests := []struct {
		name string
		obs  [][]obs
		at   time.Duration
		want map[string]State
	}{
		{"master", [][]obs{every("192.0.2.1", 0, 5*s, s, p)}, 6 * s, map[string]State{"192.0.2.1": Master}},
		{"master after a lost advert", [][]obs{every("192.0.2.1", 0, 5*s, s, p)}, 7500 * time.Millisecond, map[string]State{"192.0.2.1": Master}},
		{"silent after two lost adverts", [][]obs{every("192.0.2.1", 0, 5*s, s, p)}, 7500*time.Millisecond + 1, map[string]State{"192.0.2.1": Silent}},
		{"resigned", [][]obs{every("192.0.2.1", 0, 5*s, s, p), {{5500 * time.Millisecond, "192.0.2.1", resign}}}, 9500 * time.Millisecond,
			map[string]State{"192.0.2.1": Resigned}},
		{"resigned, then silent", [][]obs{every("192.0.2.1", 0, 5*s, s, p), {{5500 * time.Millisecond, "192.0.2.1", resign}}}, 9500*time.Millisecond + 1,
			map[string]State{"192.0.2.1": Silent}},
		// What keepalived does with a reused VRID: both advertise at
		// 5.5s, then a goes on alone.
		{"one advert side by side", [][]obs{every("192.0.2.1", 0, 7*s+500*time.Millisecond, s, p), {{5500 * time.Millisecond, "192.0.2.3", p}}}, 7500 * time.Millisecond,
			map[string]State{"192.0.2.1": Master, "192.0.2.3": Silent}},
		// b preempts at 5.2s: a sends one more advert before it hears b.
		{"takeover", [][]obs{every("192.0.2.1", 0, 5*s+300*time.Millisecond, s, p), every("192.0.2.3", 5200*time.Millisecond, 8*s, s, high)}, 7 * s,
			map[string]State{"192.0.2.1": Silent, "192.0.2.3": Master}},
		{"takeover after resign", [][]obs{every("192.0.2.1", 0, 5*s, s, p), {{5100 * time.Millisecond, "192.0.2.1", resign}}, every("192.0.2.3", 5200*time.Millisecond, 8*s, s, p)}, 7 * s,
			map[string]State{"192.0.2.1": Resigned, "192.0.2.3": Master}},
		{"failback", [][]obs{every("192.0.2.1", 0, 5*s, s, high), every("192.0.2.3", 8*s, 20*s, s, p), every("192.0.2.1", 21*s, 25*s, s, high)}, 25 * s,
			map[string]State{"192.0.2.1": Master, "192.0.2.3": Silent}},
		{"dueling", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 500*time.Millisecond, 5*s, s, p)}, 5 * s,
			map[string]State{"192.0.2.1": Master, "192.0.2.3": Master}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]State{}
			for _, r := range feed(Config{}, tt.obs...).Snapshot(at(tt.at)) {
				got[r.Sender.String()] = r.State
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	p := adv(7, 100, 100, "192.0.2.50")
	tests := []struct {
		name string
		obs  [][]obs
		at   time.Duration
		want []ConflictKind
	}{
		{"one master", [][]obs{every("192.0.2.1", 0, 5*s, s, p)}, 5 * s, nil},
		{"two VRIDs", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 0, 5*s, s, adv(8, 100, 100, "192.0.2.60"))}, 5 * s, nil},
		{"same VRID, two families", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("2001:db8::1", 0, 5*s, s, adv(7, 100, 100, "2001:db8::50"))}, 5 * s, nil},
		{"split brain", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 500*ms, 5*s, s, adv(7, 90, 100, "192.0.2.50"))}, 5 * s,
			[]ConflictKind{MultipleMasters}},
		// Both send their first adverts: not yet an interval side by side.
		{"split brain, too early to tell", [][]obs{every("192.0.2.1", 0, 1*s, s, p), every("192.0.2.3", 500*ms, 1500*ms, s, p)}, 1500 * ms, nil},
		{"split brain, caught after two intervals", [][]obs{every("192.0.2.1", 0, 2*s, s, p), every("192.0.2.3", 500*ms, 1500*ms, s, p)}, 2 * s,
			[]ConflictKind{MultipleMasters}},
		// One lost advert does not end a run.
		{"split brain with a lost advert", [][]obs{every("192.0.2.1", 0, 2*s, s, p), every("192.0.2.1", 4*s, 6*s, s, p), every("192.0.2.3", 500*ms, 6*s, s, p)}, 6 * s,
			[]ConflictKind{MultipleMasters}},
		{"takeover", [][]obs{every("192.0.2.1", 0, 5300*ms, s, p), every("192.0.2.3", 5200*ms, 9*s, s, adv(7, 200, 100, "192.0.2.50"))}, 9 * s, nil},
		{"failback", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 8*s, 20*s, s, p), every("192.0.2.1", 21*s, 25*s, s, p)}, 25 * s, nil},
		{"resigned sender is no master", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 0, 5*s, s, adv(7, 0, 100, "192.0.2.50"))}, 5 * s, nil},
		// Intervals, versions and addresses are compared among all the
		// senders remembered, the silent ones too.
		{"interval mismatch", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 9*s, 15*s, 2*s, adv(7, 200, 200, "192.0.2.50"))}, 15 * s,
			[]ConflictKind{IntervalMismatch}},
		{"version mismatch", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 9*s, 15*s, s, &vrrp.Packet{Version: 2, Type: 1, VRID: 7, Priority: 200, Interval: 1, Addresses: addrs("192.0.2.50")})}, 15 * s,
			[]ConflictKind{VersionMismatch}},
		{"address mismatch", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 9*s, 15*s, s, adv(7, 200, 100, "192.0.2.51", "192.0.2.50"))}, 15 * s,
			[]ConflictKind{AddressMismatch}},
		{"same addresses in another order", [][]obs{every("192.0.2.1", 0, 5*s, s, adv(7, 100, 100, "192.0.2.50", "192.0.2.51")), every("192.0.2.3", 9*s, 15*s, s, adv(7, 200, 100, "192.0.2.51", "192.0.2.50"))}, 15 * s, nil},
		{"VRID reuse", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 500*ms, 5*s, s, adv(7, 100, 100, "192.0.2.60"))}, 5 * s,
			[]ConflictKind{MultipleMasters, VRIDReuse}},
		{"everything", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 500*ms, 5*s, 2*s, &vrrp.Packet{Version: 2, Type: 1, VRID: 7, Priority: 200, Interval: 2, Addresses: addrs("192.0.2.60")})}, 5 * s,
			[]ConflictKind{MultipleMasters, VersionMismatch, IntervalMismatch, VRIDReuse}},
		// auth_hmac: signed and unsigned senders of one group, silent
		// ones too, but not across VRIDs.
		{"signing mismatch", [][]obs{every("192.0.2.1", 0, 5*s, s, signed(p, 1)), every("192.0.2.3", 9*s, 15*s, s, adv(7, 200, 100, "192.0.2.50"))}, 15 * s,
			[]ConflictKind{SigningMismatch}},
		{"signed with different keys", [][]obs{every("192.0.2.1", 0, 5*s, s, signed(p, 1)), every("192.0.2.3", 9*s, 15*s, s, signed(p, 2)), every("192.0.2.5", 16*s, 18*s, s, signed(p, 1))}, 18 * s, nil},
		{"all unsigned", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 9*s, 15*s, s, p)}, 15 * s, nil},
		{"signed and unsigned VRIDs", [][]obs{every("192.0.2.1", 0, 5*s, s, signed(p, 1)), every("192.0.2.3", 0, 5*s, s, adv(8, 100, 100, "192.0.2.60"))}, 5 * s, nil},
		{"forgotten sender", [][]obs{every("192.0.2.1", 0, 5*s, s, p), every("192.0.2.3", 20*s, 25*s, s, adv(7, 100, 100, "192.0.2.60"))}, 25 * s, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ConflictKind
			for _, c := range feed(Config{}, tt.obs...).Conflicts(at(tt.at)) {
				got = append(got, c.Kind)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conflict kinds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConflictDetail(t *testing.T) {
	const s = time.Second
	tab := feed(Config{},
		every("192.0.2.1", 0, 5*s, s, adv(7, 100, 100, "192.0.2.50")),
		every("192.0.2.3", 500*time.Millisecond, 5*s, s, adv(7, 90, 100, "192.0.2.61", "192.0.2.60")),
		every("192.0.2.9", 0, 5*s, s, adv(8, 100, 100, "192.0.2.80")), // alone: no conflict
	)
	got := tab.Conflicts(at(5 * s))
	senders := addrs("192.0.2.1", "192.0.2.3")
	want := []Conflict{
		{Kind: MultipleMasters, VRID: 7, Family: IPv4, Senders: senders,
			Message: "VRID 7 (ipv4): 2 senders advertise as Master at once: 192.0.2.1 priority 100, 192.0.2.3 priority 90"},
		{Kind: VRIDReuse, VRID: 7, Family: IPv4, Senders: senders,
			Message: "VRID 7 (ipv4): unrelated groups share the VRID (disjoint addresses) and so one virtual MAC 00:00:5e:00:01:07: 192.0.2.1 [192.0.2.50], 192.0.2.3 [192.0.2.60 192.0.2.61]"},
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Conflicts (-want +got):\n%s", diff)
	}
}

func TestSigningMismatchDetail(t *testing.T) {
	const s = time.Second
	p := adv(7, 100, 100, "192.0.2.50")
	tab := feed(Config{},
		every("192.0.2.1", 0, 2*s, s, signed(p, 1)),
		every("192.0.2.2", 3*s, 5*s, s, p),
		every("192.0.2.3", 6*s, 8*s, s, signed(p, 2)),
		every("192.0.2.4", 9*s, 11*s, s, p),
	)
	got := tab.Conflicts(at(11 * s))
	want := []Conflict{{Kind: SigningMismatch, VRID: 7, Family: IPv4, Senders: addrs("192.0.2.2", "192.0.2.4"),
		Message: "VRID 7 (ipv4): some senders sign with auth_hmac and others do not, so enforcing routers drop the unsigned (auth_missing) and routers without auth_hmac the signed (auth_unexpected): " +
			"192.0.2.1 key 1, 192.0.2.2 unsigned, 192.0.2.3 key 2, 192.0.2.4 unsigned"}}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Conflicts (-want +got):\n%s", diff)
	}
}

func TestKindNames(t *testing.T) {
	// The names are part of the JSON output: they must not change.
	want := "multiple_masters version_mismatch interval_mismatch address_mismatch vrid_reuse signing_mismatch"
	var got []string
	for k := MultipleMasters; k <= SigningMismatch; k++ {
		got = append(got, k.String())
	}
	if g := strings.Join(got, " "); g != want {
		t.Errorf("kind names %q, want %q", g, want)
	}
	var reasons []string
	// The reasons vipd watch produces (the rest are the daemon's).
	for _, r := range []drop.Reason{drop.None, drop.Read, drop.TTL, drop.Truncated, drop.Oversized, drop.Version,
		drop.Type, drop.Checksum, drop.Interval, drop.Family, drop.Malformed, drop.AuthMalformed} {
		reasons = append(reasons, r.String())
	}
	if g, w := strings.Join(reasons, " "), "none read ttl truncated oversized version type checksum interval family malformed auth_malformed"; g != w {
		t.Errorf("drop reasons %q, want %q", g, w)
	}
}
