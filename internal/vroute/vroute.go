package vroute

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vipd/vipd/internal/config"
)

// Protocol is the rtm_protocol of vipd's routes and the FRA_PROTOCOL of its
// rules ("proto 249" in ip-route(8) and ip-rule(8)); whatever carries it in
// the kernel is vipd's, and a start or Cleanup removes it.
//
// Numbers above RTPROT_STATIC (4) are for routing daemons and nobody
// allocates them. 249 is in none of the lists that matter: the kernel's
// rtnetlink.h (keepalived is 18, BIRD 12, Babel 42, OpenR 99, BGP 186 to
// EIGRP 192, OVN 84), iproute2's rt_protos, FRR's private 186..198
// (zebra/rt_netlink.h) or kube-vip's 248. It is not keepalived's 18 on
// purpose: vipd and keepalived may run side by side during a migration, and
// each must remove only its own routes. A few small projects also use 249;
// two daemons sharing a number on one host would remove each other's state.
// It is fixed rather than configurable because a new run must find what a
// crashed one left.
const Protocol = 249

// Route is a route as the kernel holds it: a config.Route with the table and
// metric resolved as the kernel reports them (the main table 254 for 0, 1024
// for an IPv6 metric of 0) and the type spelled out.
type Route struct {
	To     netip.Prefix // the destination, masked
	Table  int          // unix.RT_TABLE_MAIN (254) for the main table
	Tos    int          // 0 for vipd's; a route listed with Protocol may have another
	Metric int          // the priority; IPv6 has no 0, the kernel makes it 1024
	Type   string       // config.RouteUnicast, RouteBlackhole, RouteUnreachable, RouteProhibit
	Via    netip.Addr   // the gateway; invalid for none
	Dev    string       // the output interface; empty: the kernel picks it (added), none (listed)
	Src    netip.Addr   // the preferred source; invalid for none
}

// Kernel defaults the config leaves as 0.
const (
	tableMain   = 254  // RT_TABLE_MAIN
	ipv6Metric0 = 1024 // IP6_RT_PRIO_USER: the metric of an IPv6 route added with none
)

// RouteOf is the route c asks for, resolved as the kernel will hold it.
func RouteOf(c config.Route) Route {
	r := Route{
		To:     c.To.Masked(),
		Table:  c.Table,
		Metric: c.Metric,
		Type:   c.Type,
		Via:    c.Via,
		Dev:    c.Dev,
		Src:    c.Src,
	}
	if r.Table == 0 {
		r.Table = tableMain
	}
	if r.Metric == 0 && r.To.Addr().Is6() {
		r.Metric = ipv6Metric0
	}
	if r.Type == "" {
		r.Type = config.RouteUnicast
	}
	return r
}

// routeKey is what the kernel identifies a route by: two routes with the
// same key cannot both be added (EEXIST), whatever their type, gateway,
// interface or source. The family is the destination's.
type routeKey struct {
	table  int
	to     netip.Prefix
	tos    int
	metric int
}

func (r Route) key() routeKey { return routeKey{r.Table, r.To, r.Tos, r.Metric} }

// satisfiedBy reports whether the kernel's route got is the route r asks
// for: the same key and attributes, any interface if r names none (the
// kernel reports the one it picked, lo for an IPv6 blackhole).
func (r Route) satisfiedBy(got Route) bool {
	return r.key() == got.key() && r.Type == got.Type && r.Via == got.Via && r.Src == got.Src &&
		(r.Dev == "" || r.Dev == got.Dev)
}

// String is r as ip-route(8) would print it.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != config.RouteUnicast {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.To.String())
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Via)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, " dev %s", r.Dev)
	}
	if r.Table != tableMain {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Tos != 0 {
		fmt.Fprintf(&b, " tos %#x", r.Tos)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	fmt.Fprintf(&b, " metric %d", r.Metric)
	return b.String()
}

// Rule is a routing policy rule as the kernel holds it. It is its own key:
// the kernel refuses an identical second one (EEXIST) and keeps rules that
// differ in anything.
type Rule struct {
	From, To netip.Prefix // selectors, masked; 0.0.0.0/0 or ::/0 for any, never invalid
	Table    int
	Priority int // 0 when adding: the kernel picks one; listed rules carry theirs
}

// RuleOf is the rule c asks for, its selectors resolved: an absent one is
// the family's /0 ("from all").
func RuleOf(c config.Rule) Rule {
	r := Rule{From: c.From.Masked(), To: c.To.Masked(), Table: c.Table, Priority: c.Priority}
	switch {
	case !r.From.IsValid() && !r.To.IsValid():
		// The config refuses these; IPv4 is as good a guess as any.
		r.From, r.To = anyOf(false), anyOf(false)
	case !r.From.IsValid():
		r.From = anyOf(r.To.Addr().Is6())
	case !r.To.IsValid():
		r.To = anyOf(r.From.Addr().Is6())
	}
	return r
}

// anyOf is the prefix that matches every address of a family.
func anyOf(v6 bool) netip.Prefix {
	if v6 {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
}

// IPv6 reports whether r is an IPv6 rule.
func (r Rule) IPv6() bool { return r.From.Addr().Is6() }

// selectors is r without its priority: what a rule added with priority 0
// is matched by once the kernel has picked one.
func (r Rule) selectors() Rule { r.Priority = 0; return r }

// String is r as ip-rule(8) would print it.
func (r Rule) String() string {
	sel := func(p netip.Prefix) string {
		if p.Bits() == 0 {
			return "all"
		}
		return p.String()
	}
	s := fmt.Sprintf("from %s", sel(r.From))
	if r.To.Bits() != 0 {
		s += " to " + r.To.String()
	}
	s += fmt.Sprintf(" lookup %d", r.Table)
	if r.Priority != 0 {
		s = fmt.Sprintf("%d: %s", r.Priority, s)
	}
	return s
}

// Netlink is the part of the kernel's routing state the manager uses. The
// real one is NewLinux; Fake is an in-memory one for tests.
type Netlink interface {
	// Routes lists every route with Protocol, of every table and both
	// families.
	Routes() ([]Route, error)
	// AddRoute adds r with Protocol. It fails with EEXIST when a route with
	// r's key exists, vipd's or not.
	AddRoute(r Route) error
	// ReplaceRoute sets the attributes of vipd's route with r's key.
	ReplaceRoute(r Route) error
	// DeleteRoute removes the route with r's key and Protocol; a missing one
	// is ESRCH.
	DeleteRoute(r Route) error
	// Rules lists every rule with Protocol, of both families.
	Rules() ([]Rule, error)
	// AddRule adds r with Protocol, with the priority the kernel picks if
	// r's is 0.
	AddRule(r Rule) error
	// DeleteRule removes the rule equal to r (its priority included) with
	// Protocol; a missing one is ENOENT.
	DeleteRule(r Rule) error
	// Watch delivers route, link and address changes until ctx is done or
	// the subscription fails (the kernel dropped notifications, say); the
	// channel is closed then. Changes may have been missed before a close,
	// so the caller looks at the whole state again after subscribing anew.
	Watch(ctx context.Context) (<-chan Event, error)
}

// EventKind says what changed.
type EventKind int

// Kinds of events.
const (
	RouteChanged EventKind = iota + 1
	LinkChanged
	AddrChanged
)

// Event is a change in the kernel.
type Event struct {
	Kind    EventKind
	Deleted bool // a route or address removed, a link deleted
	// Route is the route added or deleted, for RouteChanged; only its key
	// (To, Table, Tos, Metric) and Type are reliable.
	Route Route
	// Ours is a route carrying Protocol.
	Ours bool
}
