package watch

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/vipd/vipd/pkg/vrrp"
)

// DefaultForgetIntervals is how many of its advert intervals a sender may stay
// silent before the table forgets it, unless Config.Forget says otherwise.
const DefaultForgetIntervals = 10

// Config tunes a Table.
type Config struct {
	// Forget is how long a silent sender is remembered. Zero means
	// DefaultForgetIntervals times the sender's own advert interval.
	Forget time.Duration
}

// Family is the IP version a router advertises over.
type Family uint8

// The two families VRRPv3 runs over (RFC 9568 §5.1).
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}

// Families parses a family selection as vipd watch's --family takes it:
// "ipv4", "ipv6", or "both" (IPv4 then IPv6).
func Families(s string) ([]Family, error) {
	switch s {
	case "ipv4":
		return []Family{IPv4}, nil
	case "ipv6":
		return []Family{IPv6}, nil
	case "both":
		return []Family{IPv4, IPv6}, nil
	}
	return nil, fmt.Errorf("family %q: want ipv4, ipv6 or both", s)
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// State is what a sender's adverts say about it now.
type State uint8

const (
	// Master: its adverts, with a non-zero priority, keep coming (the last
	// within runGap), and no other sender has been heard since but one
	// advertising side by side with it. In VRRP only the Master advertises
	// (RFC 9568 §6.4.3).
	Master State = iota
	// Resigned: its last advert, within the time a Backup would wait for
	// the next one, had priority 0: a Master that stops says so (RFC 9568
	// §6.4.3), and a Backup takes over after Skew_Time.
	Resigned
	// Silent: no longer advertising, remembered until forgotten.
	Silent
)

func (s State) String() string {
	switch s {
	case Master:
		return "master"
	case Resigned:
		return "resigned"
	case Silent:
		return "silent"
	}
	return "unknown"
}

// Router is one sender of adverts for one VRID, as last heard.
type Router struct {
	VRID     uint8
	Family   Family
	Version  uint8
	Sender   netip.Addr
	Priority uint8
	// Interval is the advert interval the last advert carried.
	Interval time.Duration
	// Addresses are the virtual addresses of the last advert, in the order
	// sent.
	Addresses []netip.Addr
	// Signed says whether the last advert carried an auth_hmac trailer
	// (draft-cassen-vrrp-auth-hmac, keepalived 2.4's auth_hmac), and KeyID
	// is the trailer's key id, 0 when unsigned. watch holds no keys: the
	// MAC is not verified, so this is what the sender claims.
	Signed bool
	KeyID  uint8
	// FirstSeen is the first advert heard, LastSeen the latest.
	FirstSeen, LastSeen time.Time
	// Adverts counts the adverts heard from this sender for this VRID.
	Adverts uint64
	State   State
}

// key identifies a sender of one VRID; the family is the sender's.
type key struct {
	vrid   uint8
	sender netip.Addr
}

// entry is a Router plus what conflict detection needs.
type entry struct {
	Router
	// since is when the sender's current run of adverts as Master began:
	// its first non-zero-priority advert, or the first after a priority 0
	// one or after a silence longer than runGap. Zero while its last advert
	// had priority 0.
	since time.Time
}

// activeWindow is how long a Backup waits for the next advert before it
// declares the Master down: Master_Down_Interval, 3×interval plus a
// Skew_Time below one interval (RFC 9568 §6.1), whatever the Backup's
// priority; 4×interval bounds it.
func activeWindow(interval time.Duration) time.Duration { return 4 * interval }

// runGap is the longest silence within one run of adverts as Master. A
// Master that lost one advert is silent for two intervals; a router that
// went Backup advertises again only after its Master_Down_Interval, at least
// three (RFC 9568 §6.4.2), so its next advert starts a new run.
func runGap(interval time.Duration) time.Duration { return 2*interval + interval/2 }

// Table aggregates observed adverts. It is a plain value with no clock, lock
// or goroutine: the caller passes the time in and serialises calls.
type Table struct {
	cfg     Config
	routers map[key]*entry
	adverts uint64
	drops   [drop.Count]uint64
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	return &Table{cfg: cfg, routers: make(map[key]*entry)}
}

// Observe records an advert p received at now from src. p is not retained:
// the caller may reuse it. A zone on src is dropped: a table is one link's,
// so an IPv6 link-local sender is known by its address alone, whether or not
// the socket named the zone.
func (t *Table) Observe(now time.Time, src netip.Addr, p *vrrp.Packet) {
	src = src.Unmap().WithZone("")
	t.adverts++
	k := key{vrid: p.VRID, sender: src}
	e, ok := t.routers[k]
	if !ok || t.expired(e, now) {
		e = &entry{Router: Router{VRID: p.VRID, Family: familyOf(src), Sender: src, FirstSeen: now}}
		t.routers[k] = e
	}
	// Before e takes p's values: the run goes on only while e keeps
	// advertising as Master.
	if p.Priority == 0 {
		e.since = time.Time{}
	} else if e.since.IsZero() || now.Sub(e.LastSeen) > runGap(e.Interval) {
		e.since = now
	}
	e.Version = p.Version
	e.Priority = p.Priority
	e.Interval = p.AdvertInterval()
	if !slices.Equal(e.Addresses, p.Addresses) {
		e.Addresses = slices.Clone(p.Addresses)
	}
	e.Signed, e.KeyID = p.Signed, 0
	if p.Signed {
		e.KeyID = p.Auth.KeyID
	}
	e.LastSeen = now
	e.Adverts++
}

// Drop counts a packet that was not a valid advert.
func (t *Table) Drop(r drop.Reason) {
	if r < drop.Count {
		t.drops[r]++
	}
}

// forgetAfter is how long e may stay silent before it is forgotten.
func (t *Table) forgetAfter(e *entry) time.Duration {
	if t.cfg.Forget > 0 {
		return t.cfg.Forget
	}
	return DefaultForgetIntervals * e.Interval
}

func (t *Table) expired(e *entry, now time.Time) bool {
	return now.Sub(e.LastSeen) > t.forgetAfter(e)
}

// Expire deletes the senders silent for longer than the forget period.
// Snapshot and Conflicts ignore them anyway; Expire frees their memory.
func (t *Table) Expire(now time.Time) {
	for k, e := range t.routers {
		if t.expired(e, now) {
			delete(t.routers, k)
		}
	}
}

// live returns the entries not forgotten at now, sorted by VRID, family and
// sender.
func (t *Table) live(now time.Time) []*entry {
	es := make([]*entry, 0, len(t.routers))
	for _, e := range t.routers {
		if !t.expired(e, now) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(
			cmp.Compare(a.VRID, b.VRID),
			cmp.Compare(a.Family, b.Family),
			a.Sender.Compare(b.Sender),
		)
	})
	return es
}

// groups splits es, sorted as live returns them, into the senders of each
// VRID and family.
func groups(es []*entry) [][]*entry {
	var gs [][]*entry
	for len(es) > 0 {
		n := 1
		for n < len(es) && es[n].VRID == es[0].VRID && es[n].Family == es[0].Family {
			n++
		}
		gs = append(gs, es[:n:n])
		es = es[n:]
	}
	return gs
}

// Snapshot returns the senders heard and not yet forgotten at now, sorted by
// VRID, family and sender. The result shares nothing with the table.
func (t *Table) Snapshot(now time.Time) []Router {
	rs := make([]Router, 0, len(t.routers))
	for _, g := range groups(t.live(now)) {
		for i, st := range states(g, now) {
			r := g[i].Router
			r.Addresses = slices.Clone(r.Addresses)
			r.State = st
			rs = append(rs, r)
		}
	}
	return rs
}

// DropCount is how many packets were dropped for one reason.
type DropCount struct {
	Reason drop.Reason
	Count  uint64
}

// Report is everything a refresh shows.
type Report struct {
	Time      time.Time
	Interface string // set by Monitor
	Routers   []Router
	Conflicts []Conflict
	// Adverts counts the valid adverts heard since the start.
	Adverts uint64
	// Drops lists the reasons with a non-zero count, in reason order.
	Drops []DropCount
}

// Report returns the table at now.
func (t *Table) Report(now time.Time) Report {
	r := Report{
		Time:      now,
		Routers:   t.Snapshot(now),
		Conflicts: t.Conflicts(now),
		Adverts:   t.adverts,
	}
	for reason, n := range t.drops {
		if n > 0 {
			r.Drops = append(r.Drops, DropCount{Reason: drop.Reason(reason), Count: n})
		}
	}
	return r
}
