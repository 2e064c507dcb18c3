package watch

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ConflictKind says what is wrong on a segment. Its String is the stable name
// used in JSON.
type ConflictKind uint8

// Conflicts between the senders of one VRID and family.
const (
	// MultipleMasters: two senders with non-zero priority kept advertising
	// at the same time. Only the Master advertises (RFC 9568 §6.4.3), so
	// this is a split brain, or two groups sharing a VRID.
	MultipleMasters ConflictKind = iota + 1
	// VersionMismatch: VRRPv2 and VRRPv3 adverts for one VRID. RFC 9568
	// §8.4 allows a mixed group only during a migration.
	VersionMismatch
	// IntervalMismatch: senders advertise different intervals. VRRPv3
	// Backups adopt the Master's (RFC 9568 §6.4.2) but VRRPv2 ones drop the
	// adverts (RFC 3768 §7.1), and preemption timing differs by sender.
	IntervalMismatch
	// AddressMismatch: senders list different, overlapping virtual
	// addresses: one of them is misconfigured.
	AddressMismatch
	// VRIDReuse: senders list disjoint virtual addresses: two unrelated
	// groups use one VRID and so one virtual MAC (RFC 9568 §7.3).
	VRIDReuse
	// SigningMismatch: some senders sign their adverts with auth_hmac and
	// others do not. A router in enforce mode drops the unsigned ones
	// (auth_missing) and one without auth_hmac the signed ones
	// (auth_unexpected), so the group cannot agree on a Master; only
	// during a rollout in permissive mode is it harmless. Its Senders are
	// the unsigned ones, which a rollout has yet to switch; the message
	// names the signers too. Signers with different key ids are no
	// conflict: that is a key rotation under way, and each router verifies
	// every key it lists.
	SigningMismatch
)

func (k ConflictKind) String() string {
	switch k {
	case MultipleMasters:
		return "multiple_masters"
	case VersionMismatch:
		return "version_mismatch"
	case IntervalMismatch:
		return "interval_mismatch"
	case AddressMismatch:
		return "address_mismatch"
	case VRIDReuse:
		return "vrid_reuse"
	case SigningMismatch:
		return "signing_mismatch"
	}
	return "unknown"
}

// Conflict is one problem between senders of one VRID and family.
type Conflict struct {
	Kind    ConflictKind
	VRID    uint8
	Family  Family
	Senders []netip.Addr // the senders involved, sorted
	Message string       // for humans, naming the VRID and the senders
}

// Conflicts returns the conflicts among the senders not forgotten at now,
// sorted by VRID, family and kind.
func (t *Table) Conflicts(now time.Time) []Conflict {
	var cs []Conflict
	for _, g := range groups(t.live(now)) {
		if len(g) > 1 {
			cs = appendConflicts(cs, g, now)
		}
	}
	return cs
}

// appendConflicts appends the conflicts within group, the senders of one VRID
// and family in sender order, to cs.
func appendConflicts(cs []Conflict, group []*entry, now time.Time) []Conflict {
	vrid, fam := group[0].VRID, group[0].Family
	add := func(kind ConflictKind, es []*entry, format string, args ...any) {
		c := Conflict{Kind: kind, VRID: vrid, Family: fam, Senders: make([]netip.Addr, len(es))}
		for i, e := range es {
			c.Senders[i] = e.Sender
		}
		c.Message = fmt.Sprintf("VRID %d (%v): ", vrid, fam) + fmt.Sprintf(format, args...)
		cs = append(cs, c)
	}

	if ms := masters(group, now); len(ms) > 1 {
		add(MultipleMasters, ms, "%d senders advertise as Master at once: %s",
			len(ms), list(ms, func(e *entry) string { return fmt.Sprintf("priority %d", e.Priority) }))
	}
	if differ(group, func(e *entry) uint8 { return e.Version }) {
		add(VersionMismatch, group, "VRRP versions differ: %s",
			list(group, func(e *entry) string { return fmt.Sprintf("v%d", e.Version) }))
	}
	if differ(group, func(e *entry) time.Duration { return e.Interval }) {
		add(IntervalMismatch, group, "advert intervals differ: %s",
			list(group, func(e *entry) string { return e.Interval.String() }))
	}
	if differ(group, func(e *entry) string { return addrSet(e.Addresses) }) {
		addrs := func(e *entry) string { return "[" + addrSet(e.Addresses) + "]" }
		if anyDisjoint(group) {
			add(VRIDReuse, group, "unrelated groups share the VRID (disjoint addresses) and so one virtual MAC %s: %s",
				virtualMAC(vrid, fam), list(group, addrs))
		} else {
			add(AddressMismatch, group, "virtual address lists differ: %s", list(group, addrs))
		}
	}
	if differ(group, func(e *entry) bool { return e.Signed }) {
		unsigned := slices.DeleteFunc(slices.Clone(group), func(e *entry) bool { return e.Signed })
		add(SigningMismatch, unsigned, "some senders sign with auth_hmac and others do not, so enforcing routers drop the unsigned (auth_missing) and routers without auth_hmac the signed (auth_unexpected): %s",
			list(group, signing))
	}
	return cs
}

// masters returns the senders of group that are dueling with another one.
func masters(group []*entry, now time.Time) []*entry {
	ss := states(group, now)
	var ms []*entry
	for i, a := range group {
		for j, b := range group {
			if i != j && ss[i] == Master && ss[j] == Master && dueling(a, b) {
				ms = append(ms, a)
				break
			}
		}
	}
	return ms
}

// states returns the State of each sender of group at now.
//
// A sender whose last advert had a non-zero priority and came within runGap
// is the Master, unless another one has been heard since and they are not
// dueling: the other took over, and the old Master has become a Backup or
// died; either way it is silent.
func states(group []*entry, now time.Time) []State {
	ss := make([]State, len(group))
	for i, e := range group {
		quiet := now.Sub(e.LastSeen)
		switch {
		case e.Priority == 0 && quiet <= activeWindow(e.Interval):
			ss[i] = Resigned
		case e.Priority == 0 || quiet > runGap(e.Interval):
			ss[i] = Silent
		default:
			ss[i] = Master
		}
	}
	out := slices.Clone(ss)
	for i, a := range group {
		for j, b := range group {
			if i != j && ss[i] == Master && ss[j] == Master && supersedes(b, a) {
				out[i] = Silent
			}
		}
	}
	return out
}

// overlap is how long the current runs of Master adverts of a and b have
// gone on side by side; negative when one began after the other's last
// advert.
func overlap(a, b *entry) time.Duration {
	start := a.since
	if b.since.After(start) {
		start = b.since
	}
	end := a.LastSeen
	if b.LastSeen.Before(end) {
		end = b.LastSeen
	}
	return end.Sub(start)
}

// dueling reports whether a and b have advertised as Master side by side for
// at least an advert interval (the longer of theirs). A takeover does not
// count: the old Master stops as soon as it hears the new one (RFC 9568
// §6.4.3), so at most one of its adverts follows the new Master's first.
func dueling(a, b *entry) bool {
	return overlap(a, b) >= max(a.Interval, b.Interval)
}

// supersedes reports whether b took over from a, or a gave up: b has been
// heard since a was last, and they are not dueling.
func supersedes(b, a *entry) bool {
	return b.LastSeen.After(a.LastSeen) && !dueling(a, b)
}

// differ reports whether f is not the same for every entry of group.
func differ[T comparable](group []*entry, f func(*entry) T) bool {
	for _, e := range group[1:] {
		if f(e) != f(group[0]) {
			return true
		}
	}
	return false
}

// anyDisjoint reports whether two senders of group list non-empty virtual
// address sets with nothing in common.
func anyDisjoint(group []*entry) bool {
	for i, a := range group {
		for _, b := range group[i+1:] {
			if len(a.Addresses) > 0 && len(b.Addresses) > 0 && !slices.ContainsFunc(a.Addresses, func(x netip.Addr) bool {
				return slices.Contains(b.Addresses, x)
			}) {
				return true
			}
		}
	}
	return false
}

// addrSet is as, sorted and deduplicated, as a comparable string.
func addrSet(as []netip.Addr) string {
	s := slices.Clone(as)
	slices.SortFunc(s, netip.Addr.Compare)
	s = slices.Compact(s)
	strs := make([]string, len(s))
	for i, a := range s {
		strs[i] = a.String()
	}
	return strings.Join(strs, " ")
}

// signing says how a sender signs: "key N", or "unsigned".
func signing(e *entry) string {
	if !e.Signed {
		return "unsigned"
	}
	return fmt.Sprintf("key %d", e.KeyID)
}

// list formats each sender of es with what f says about it.
func list(es []*entry, f func(*entry) string) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Sender.String() + " " + f(e)
	}
	return strings.Join(parts, ", ")
}

// virtualMAC is the virtual router MAC address of vrid (RFC 9568 §7.3).
func virtualMAC(vrid uint8, f Family) string {
	b := 1
	if f == IPv6 {
		b = 2
	}
	return fmt.Sprintf("00:00:5e:00:%02x:%02x", b, vrid)
}
