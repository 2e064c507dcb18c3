package keepalived

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/config"
)

// keepalived's virtual routes and rules, in a vrrp_instance:
//
//	virtual_routes {
//	    src 192.0.2.50 to 198.51.100.0/24 via 192.0.2.1 dev eth1 table 100 metric 10
//	    blackhole 203.0.113.0/24
//	}
//	virtual_rules {
//	    from 192.0.2.50 table 100 priority 100
//	}
//
// become the instance's routes and rules, which vipd installs while
// Master as keepalived does. Each line is read the way keepalived reads
// it (alloc_route in vrrp_iproute.c, alloc_rule in vrrp_iprule.c), word
// by word through the keyword tables below, so that a line keepalived
// refuses (and so never installed) is not converted either. An option
// vipd has no field for is dropped with a warning when the route or rule
// still selects the same traffic and sends it the same way (scope, mtu,
// protocol, no_track, ...); when it would not (a source or TOS selector,
// several next hops, another action than a table lookup), the line is not
// converted at all.

// lineWords is a line of a virtual_routes or virtual_rules block as the
// words keepalived reads, with a cursor.
type lineWords struct {
	w []string
	i int
}

func wordsOf(e *Stmt) *lineWords {
	return &lineWords{w: append([]string{e.Keyword}, e.Args...)}
}

func (l *lineWords) more() bool   { return l.i < len(l.w) }
func (l *lineWords) peek() string { return l.w[l.i] }
func (l *lineWords) next() string { l.i++; return l.w[l.i-1] }

// arg is the value after opt.
func (l *lineWords) arg(opt string) (string, string) {
	if !l.more() {
		return "", opt + " needs a value"
	}
	return l.next(), ""
}

// lineIn is what routes and rules have in common while read.
type lineIn struct {
	family  string    // "ipv4" or "ipv6"; "" until a word decides
	dropped []dropped // options vipd has no field for; the line still means the same
	cannot  string    // why vipd cannot express the line: the first reason found
}

// dropped is an option converted without, and why.
type dropped struct{ opt, why string }

func (b *lineIn) base() *lineIn { return b }

type hasBase interface{ base() *lineIn }

// setFamily checks that the addresses of a line are of one family.
func (b *lineIn) setFamily(f string) string {
	switch {
	case f == "":
	case b.family == "":
		b.family = f
	case b.family != f:
		return "it mixes IPv4 and IPv6 addresses"
	}
	return ""
}

func (b *lineIn) cannotf(format string, args ...any) {
	if b.cannot == "" {
		b.cannot = fmt.Sprintf(format, args...)
	}
}

func (b *lineIn) drop(opt, why string) {
	b.dropped = append(b.dropped, dropped{opt, why})
}

// ignored reads an option that takes n values (after an optional "lock"
// when lock is set) and that vipd has no field for: it is dropped.
func ignored[T hasBase](n int, lock bool, why string) func(T, string, *lineWords) string {
	return func(x T, opt string, l *lineWords) string {
		words := []string{opt}
		if lock && l.more() && l.peek() == "lock" {
			words = append(words, l.next())
		}
		for range n {
			v, bad := l.arg(opt)
			if bad != "" {
				return bad
			}
			words = append(words, v)
		}
		x.base().drop(strings.Join(words, " "), why)
		return ""
	}
}

// refused reads an option that takes n values and that makes the line
// mean something vipd cannot express.
func refused[T hasBase](n int, why string) func(T, string, *lineWords) string {
	return func(x T, opt string, l *lineWords) string {
		words := []string{opt}
		for range n {
			v, bad := l.arg(opt)
			if bad != "" {
				return bad
			}
			words = append(words, v)
		}
		x.base().cannotf("%s: %s", strings.Join(words, " "), why)
		return ""
	}
}

// kAddr reads an address as keepalived's parse_ipaddress does without a
// prefix length.
func kAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Zone() == ""
}

// kNetwork is a destination or selector as keepalived's parse_route reads
// it: default, any or all (the family's everything: all is true, and the
// family "" unless default6 says IPv6), or ADDRESS[/LEN], a bare address
// being a host.
type kNetwork struct {
	prefix netip.Prefix
	all    bool
	family string
}

func parseNetwork(s string) (kNetwork, bool) {
	switch s {
	case "default", "any", "all":
		return kNetwork{all: true}, true
	case "default6":
		return kNetwork{all: true, family: "ipv6"}, true
	}
	addr, length, hasLen := strings.Cut(s, "/")
	a, ok := kAddr(addr)
	if !ok {
		return kNetwork{}, false
	}
	bits := a.BitLen()
	if hasLen {
		n, err := strconv.Atoi(length)
		if err != nil || n < 0 || n > a.BitLen() || length == "" || length[0] == '+' || length[0] == '-' {
			return kNetwork{}, false
		}
		bits = n
	}
	return kNetwork{prefix: netip.PrefixFrom(a, bits), family: config.FamilyOf(a)}, true
}

// vipdPrefix is the network for vipd, or why vipd refuses it.
func (n kNetwork) vipdPrefix(family string) (netip.Prefix, string) {
	if n.all {
		if family == "ipv6" {
			return netip.MustParsePrefix("::/0"), ""
		}
		return netip.MustParsePrefix("0.0.0.0/0"), ""
	}
	p := n.prefix
	switch {
	case p.Addr().Is4In6():
		return p, fmt.Sprintf("%s is an IPv4-mapped IPv6 address, which vipd refuses", p)
	case p.Masked() != p:
		return p, fmt.Sprintf("%s has host bits set, which vipd refuses; the network is %s", p, p.Masked())
	}
	return p, ""
}

// kUint reads a number as keepalived's get_u32 and strtoul(..., 0) do:
// decimal, 0x hex or 0 octal.
func kUint(s string, limit uint64) (uint64, bool) {
	if s == "" || strings.ContainsAny(s, "_+-") {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 0, 64)
	return v, err == nil && v <= limit
}

// kTable reads a routing table: a number, or one of the names every
// rt_tables file has. Another name is one keepalived looks up in
// /etc/iproute2/rt_tables, which the converter does not read.
func kTable(s string) (n uint64, named, ok bool) {
	switch s {
	case "main":
		return 254, false, true
	case "local":
		return 255, false, true
	case "default":
		return 253, false, true
	case "unspec":
		return 0, false, true
	}
	if v, ok := kUint(s, config.MaxTable); ok {
		return v, false, true
	}
	if s != "" && (s[0] == '_' || 'a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return 0, true, true
	}
	return 0, false, false
}

const unnamedTable = "a table name from /etc/iproute2/rt_tables, which the converter does not read: write its number in keepalived.conf and convert again"

// Routes.

// routeIn is a virtual_routes line as keepalived reads it.
type routeIn struct {
	lineIn
	dst       kNetwork
	hasDst    bool
	typ       string // a route type word; "" for unicast
	via, src  netip.Addr
	dev       string
	table     uint64 // 0: main
	metric    uint64
	multipath bool
}

// routeTypes are keepalived's (the kernel's) route types.
var routeTypes = map[string]bool{
	"unicast": true, "local": true, "broadcast": true, "anycast": true, "multicast": true,
	"blackhole": true, "unreachable": true, "prohibit": true, "throw": true, "nat": true,
}

const (
	noRouteOption = "vipd has no such route option"
	multipath     = "a multipath route: a vipd route has one next hop"
)

// routeKeywords read the options of a virtual_routes line; each returns
// why keepalived refuses the line, or "".
var routeKeywords = map[string]func(r *routeIn, opt string, l *lineWords) string{
	"inet":  func(r *routeIn, _ string, _ *lineWords) string { return r.setFamily("ipv4") },
	"inet6": func(r *routeIn, _ string, _ *lineWords) string { return r.setFamily("ipv6") },
	"src": func(r *routeIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		a, ok := kAddr(v)
		if !ok {
			return fmt.Sprintf("invalid route src address %s", v)
		}
		r.src = a
		return r.setFamily(config.FamilyOf(a))
	},
	"via": (*routeIn).gateway,
	"gw":  (*routeIn).gateway,
	"from": func(r *routeIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		n, ok := parseNetwork(v)
		switch {
		case !ok:
			return fmt.Sprintf("invalid route from address %s", v)
		case n.family != "ipv6":
			return "route from address only supported with IPv6"
		}
		r.cannotf("from %s: a source-specific route; a vipd route matches the destination only", v)
		return r.setFamily("ipv6")
	},
	"tos":     refused[*routeIn](1, "a route for one TOS; a vipd route matches the destination only"),
	"dsfield": refused[*routeIn](1, "a route for one TOS; a vipd route matches the destination only"),
	"table": func(r *routeIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		n, named, ok := kTable(v)
		switch {
		case !ok:
			return fmt.Sprintf("routing table %s not found for route", v)
		case named:
			r.cannotf("table %s: %s", v, unnamedTable)
		}
		r.table = n
		return ""
	},
	"protocol":   ignored[*routeIn](1, false, "vipd has no route protocol setting"),
	"scope":      ignored[*routeIn](1, false, "vipd has no route scope setting"),
	"metric":     (*routeIn).setMetric,
	"priority":   (*routeIn).setMetric,
	"preference": (*routeIn).setMetric,
	"dev":        (*routeIn).setDev,
	"oif":        (*routeIn).setDev,
	"onlink":     ignored[*routeIn](0, false, "vipd has no onlink: the kernel then takes the route only if the gateway is in a subnet of the interface"),
	"encap": func(r *routeIn, opt string, l *lineWords) string {
		// Its values depend on the encapsulation; the line is not
		// converted anyway.
		r.cannotf("encap: vipd routes have no encapsulation")
		l.i = len(l.w)
		return ""
	},
	"expires":            familyOnly("ipv6", ignored[*routeIn](1, false, noRouteOption)),
	"mtu":                ignored[*routeIn](1, true, noRouteOption),
	"hoplimit":           ignored[*routeIn](1, false, noRouteOption),
	"advmss":             ignored[*routeIn](1, true, noRouteOption),
	"rtt":                ignored[*routeIn](1, true, noRouteOption),
	"rttvar":             ignored[*routeIn](1, true, noRouteOption),
	"reordering":         ignored[*routeIn](1, true, noRouteOption),
	"window":             ignored[*routeIn](1, false, noRouteOption),
	"cwnd":               ignored[*routeIn](1, true, noRouteOption),
	"ssthresh":           ignored[*routeIn](1, true, noRouteOption),
	"realms":             familyOnly("ipv4", ignored[*routeIn](1, false, noRouteOption)),
	"rto_min":            ignored[*routeIn](1, true, noRouteOption),
	"initcwnd":           ignored[*routeIn](1, false, noRouteOption),
	"initrwnd":           ignored[*routeIn](1, false, noRouteOption),
	"features":           ignored[*routeIn](1, false, noRouteOption),
	"quickack":           ignored[*routeIn](1, false, noRouteOption),
	"congctl":            ignored[*routeIn](1, true, noRouteOption),
	"pref":               familyOnly("ipv6", ignored[*routeIn](1, false, noRouteOption)),
	"ttl-propagate":      ignored[*routeIn](1, false, noRouteOption),
	"fastopen_no_cookie": ignored[*routeIn](1, false, noRouteOption),
	"add":                ignored[*routeIn](0, false, noRouteOption),
	"append":             ignored[*routeIn](0, false, noRouteOption),
	"prepend":            ignored[*routeIn](0, false, noRouteOption),
	"as": func(r *routeIn, opt string, l *lineWords) string {
		words := []string{opt}
		if l.more() && l.peek() == "to" {
			words = append(words, l.next())
		}
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		r.drop(strings.Join(append(words, v), " "), "keepalived ignores it too (it is for MPLS)")
		return ""
	},
	"or": func(r *routeIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		if _, ok := kAddr(v); !ok {
			return fmt.Sprintf("invalid \"or\" address %s", v)
		}
		r.multipath = true
		r.cannotf("or %s: %s", v, multipath)
		return ""
	},
	"no_track": ignored[*routeIn](0, false, "vipd has no per-route tracking option"),
}

// familyOnly is an option of routes of one family.
func familyOnly(family string, f func(*routeIn, string, *lineWords) string) func(*routeIn, string, *lineWords) string {
	return func(r *routeIn, opt string, l *lineWords) string {
		if bad := f(r, opt, l); bad != "" {
			return bad
		}
		if r.setFamily(family) != "" {
			return fmt.Sprintf("%s is only valid for %s", opt, config.FamilyWord(family))
		}
		return ""
	}
}

func (r *routeIn) gateway(opt string, l *lineWords) string {
	a, bad := r.gatewayArg(opt, l)
	if bad == "" {
		r.via = a
	}
	return bad
}

// gatewayArg reads [inet|inet6] ADDRESS after via (or gw).
func (r *routeIn) gatewayArg(opt string, l *lineWords) (netip.Addr, string) {
	v, bad := l.arg(opt)
	if bad != "" {
		return netip.Addr{}, bad
	}
	if v == "inet" || v == "inet6" {
		if bad := r.setFamily(map[string]string{"inet": "ipv4", "inet6": "ipv6"}[v]); bad != "" {
			return netip.Addr{}, bad
		}
		if v, bad = l.arg(opt); bad != "" {
			return netip.Addr{}, bad
		}
	}
	a, ok := kAddr(v)
	if !ok {
		return netip.Addr{}, fmt.Sprintf("invalid route via address %s", v)
	}
	return a, r.setFamily(config.FamilyOf(a))
}

func (r *routeIn) setMetric(opt string, l *lineWords) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	n, ok := kUint(v, 1<<32-1)
	if !ok {
		return fmt.Sprintf("invalid metric %s specified for route", v)
	}
	r.metric = n
	return ""
}

func (r *routeIn) setDev(opt string, l *lineWords) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	if err := checkInterface(v); err != nil {
		r.cannotf("%v", err)
	}
	r.dev = v
	return ""
}

// nexthops reads keepalived's parse_nexthops: after "nexthop", groups of
// via, dev, weight, onlink, realms, ... separated by "nexthop", up to the
// end of the line. One next hop is a plain route.
func (r *routeIn) nexthops(l *lineWords) string {
	type hop struct {
		via netip.Addr
		dev string
	}
	var hops []hop
	for {
		var h hop
	group:
		for l.more() {
			switch opt := l.peek(); opt {
			case "via":
				l.next()
				a, bad := r.gatewayArg(opt, l)
				if bad != "" {
					return bad
				}
				h.via = a
			case "dev":
				l.next()
				v, bad := l.arg(opt)
				if bad != "" {
					return bad
				}
				if err := checkInterface(v); err != nil {
					r.cannotf("%v", err)
				}
				h.dev = v
			case "weight":
				l.next()
				v, bad := l.arg(opt)
				if bad != "" {
					return bad
				}
				if w, ok := kUint(v, 256); !ok || w == 0 {
					return fmt.Sprintf("invalid weight %s specified for route", v)
				}
			case "onlink", "realms", "as":
				l.next()
				if bad := routeKeywords[opt](r, opt, l); bad != "" {
					return bad
				}
			case "encap":
				l.next()
				routeKeywords[opt](r, opt, l)
			default:
				break group
			}
		}
		hops = append(hops, h)
		if !l.more() {
			break
		}
		if l.peek() != "nexthop" {
			return fmt.Sprintf("route has trailing nonsense after nexthops - %s", l.peek())
		}
		l.next()
	}
	switch {
	case len(hops) > 1 || r.multipath || r.via.IsValid() || r.dev != "":
		r.multipath = true
		r.cannotf("nexthop: %s", multipath)
	default:
		r.via, r.dev = hops[0].via, hops[0].dev
	}
	return ""
}

// parseRoute reads a virtual_routes line as keepalived's alloc_route
// does; bad is why keepalived refuses it.
func parseRoute(l *lineWords) (r *routeIn, bad string) {
	r = &routeIn{}
	for l.more() {
		w := l.next()
		if w == "nexthop" {
			if bad := r.nexthops(l); bad != "" {
				return r, bad
			}
			break
		}
		if f := routeKeywords[w]; f != nil {
			if bad := f(r, w, l); bad != "" {
				return r, bad
			}
			continue
		}
		// [to] [TYPE] PREFIX; as in keepalived, a type cannot follow "to".
		dest := w
		switch {
		case w == "to" || routeTypes[w]:
			if !l.more() {
				return r, w + " needs a destination"
			}
			if w != "to" {
				r.typ = w
			}
			dest = l.next()
		}
		n, ok := parseNetwork(dest)
		if !ok {
			if dest == "proto" {
				return r, `unknown route keyword proto (keepalived's is protocol)`
			}
			return r, fmt.Sprintf("unknown route keyword %s", dest)
		}
		if bad := r.setFamily(n.family); bad != "" {
			return r, bad
		}
		r.dst, r.hasDst = n, true
	}
	if !r.hasDst {
		return r, "a route must have a destination"
	}
	if r.family == "" {
		r.family = "ipv4"
	}
	return r, ""
}

// route is the vipd route, or why there is none.
func (r *routeIn) route() (config.Route, string) {
	out := config.Route{Type: config.RouteUnicast, Via: r.via, Dev: r.dev, Src: r.src, Metric: int(r.metric)}
	if r.cannot != "" {
		return out, r.cannot
	}
	switch r.typ {
	case "", config.RouteUnicast:
	case config.RouteBlackhole, config.RouteUnreachable, config.RouteProhibit:
		out.Type = r.typ
	default:
		return out, fmt.Sprintf("a %s route: vipd routes are unicast, blackhole, unreachable or prohibit", r.typ)
	}
	to, why := r.dst.vipdPrefix(r.family)
	if why != "" {
		return out, why
	}
	out.To = to
	for _, a := range []netip.Addr{r.via, r.src} {
		if a.Is4In6() {
			return out, fmt.Sprintf("%s is an IPv4-mapped IPv6 address, which vipd refuses", a)
		}
	}
	if r.table != 0 && r.table != 254 {
		out.Table = int(r.table)
	}
	switch {
	case out.Type != config.RouteUnicast && (out.Via.IsValid() || out.Dev != ""):
		var opts []string
		if out.Via.IsValid() {
			opts = append(opts, "via "+out.Via.String())
		}
		if out.Dev != "" {
			opts = append(opts, "dev "+out.Dev)
		}
		why := "a " + out.Type + " route has no via or dev in vipd"
		if r.family == "ipv4" {
			why += " (the kernel refuses them for IPv4 routes, so keepalived could not add this one)"
		}
		r.drop(strings.Join(opts, " "), why)
		out.Via, out.Dev = netip.Addr{}, ""
	case out.Type == config.RouteUnicast && !out.Via.IsValid() && out.Dev == "":
		return out, "neither via nor dev: the kernel refuses such a route, so keepalived could not add it either"
	case out.Via.Is6() && out.Via.IsLinkLocalUnicast() && out.Dev == "":
		return out, "a link-local gateway without dev: the kernel cannot tell which link it is on"
	}
	return out, ""
}

// flow renders a route as a flow mapping, in the field order of
// internal/config.
func flowRoute(r config.Route) string {
	parts := []string{"to: " + flowScalar(r.To.String())}
	if r.Via.IsValid() {
		parts = append(parts, "via: "+flowScalar(r.Via.String()))
	}
	if r.Dev != "" {
		parts = append(parts, "dev: "+flowScalar(r.Dev))
	}
	if r.Table != 0 {
		parts = append(parts, "table: "+strconv.Itoa(r.Table))
	}
	if r.Metric != 0 {
		parts = append(parts, "metric: "+strconv.Itoa(r.Metric))
	}
	if r.Src.IsValid() {
		parts = append(parts, "src: "+flowScalar(r.Src.String()))
	}
	if r.Type != config.RouteUnicast {
		parts = append(parts, "type: "+r.Type)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Rules.

// ruleIn is a virtual_rules (or static_rules) line as keepalived reads it.
type ruleIn struct {
	lineIn
	from, to    *kNetwork
	table       uint64
	action      string // "table", "goto", "nop", "blackhole", ...; "" for none
	priority    uint64
	hasPriority bool
	gotoTarget  uint64
	tableOption bool // realms, suppress_*: for table lookups only
	l3mdev      bool
}

const ruleSelector = "vipd rules select on from and to only: without it the rule would catch other traffic"

// ruleKeywords read the options of a virtual_rules line; each returns why
// keepalived refuses the line, or "".
var ruleKeywords = map[string]func(r *ruleIn, opt string, l *lineWords) string{
	"inet":   func(r *ruleIn, _ string, _ *lineWords) string { return r.setFamily("ipv4") },
	"inet6":  func(r *ruleIn, _ string, _ *lineWords) string { return r.setFamily("ipv6") },
	"from":   func(r *ruleIn, opt string, l *lineWords) string { return r.selector(opt, l, &r.from) },
	"to":     func(r *ruleIn, opt string, l *lineWords) string { return r.selector(opt, l, &r.to) },
	"table":  (*ruleIn).setTable,
	"lookup": (*ruleIn).setTable,
	"not": func(r *ruleIn, opt string, _ *lineWords) string {
		r.cannotf("not: vipd has no inverted rules")
		return ""
	},
	"preference": (*ruleIn).setPriority,
	"order":      (*ruleIn).setPriority,
	"priority":   (*ruleIn).setPriority,
	"tos":        refused[*ruleIn](1, ruleSelector),
	"dsfield":    refused[*ruleIn](1, ruleSelector),
	"fwmark": func(r *ruleIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		mark, mask, hasMask := strings.Cut(v, "/")
		if _, ok := kUint(mark, 1<<32-1); !ok {
			return fmt.Sprintf("invalid rule fwmark %s specified", v)
		}
		if _, ok := kUint(mask, 1<<32-1); hasMask && !ok {
			return fmt.Sprintf("invalid rule fwmark %s specified", v)
		}
		r.cannotf("fwmark %s: %s", v, ruleSelector)
		return ""
	},
	"realms": func(r *ruleIn, opt string, l *lineWords) string {
		if bad := ignored[*ruleIn](1, false, "vipd has no such rule option")(r, opt, l); bad != "" {
			return bad
		}
		r.tableOption = true
		return r.setFamily("ipv4")
	},
	"suppress_prefixlength": (*ruleIn).suppressor,
	"sup_pl":                (*ruleIn).suppressor,
	"suppress_ifgroup":      (*ruleIn).suppressor,
	"sup_group":             (*ruleIn).suppressor,
	"dev":                   refused[*ruleIn](1, ruleSelector),
	"iif":                   refused[*ruleIn](1, ruleSelector),
	"oif":                   refused[*ruleIn](1, ruleSelector),
	"tunnel-id":             refused[*ruleIn](1, ruleSelector),
	"uidrange": func(r *ruleIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		lo, hi, ok := strings.Cut(v, "-")
		if _, ok1 := kUint(lo, 1<<32-1); !ok || !ok1 {
			return fmt.Sprintf("invalid uidrange %s specified", v)
		}
		if _, ok2 := kUint(hi, 1<<32-1); !ok2 {
			return fmt.Sprintf("invalid uidrange %s specified", v)
		}
		r.cannotf("uidrange %s: %s", v, ruleSelector)
		return ""
	},
	"ipproto": refused[*ruleIn](1, ruleSelector),
	"sport":   refused[*ruleIn](1, ruleSelector),
	"dport":   refused[*ruleIn](1, ruleSelector),
	"l3mdev": func(r *ruleIn, opt string, _ *lineWords) string {
		r.l3mdev = true
		r.cannotf("l3mdev: vipd rules look up a table they name")
		return r.setAction("table")
	},
	"protocol": ignored[*ruleIn](1, false, "vipd has no rule protocol setting"),
	"no_track": ignored[*ruleIn](0, false, "vipd has no per-rule tracking option"),
	"goto": func(r *ruleIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		n, ok := kUint(v, 1<<32-1)
		if !ok {
			return fmt.Sprintf("invalid target %s specified", v)
		}
		r.gotoTarget = n
		r.cannotf("goto %s: vipd rules look up a table", v)
		return r.setAction("goto")
	},
	"nop": func(r *ruleIn, opt string, _ *lineWords) string {
		r.cannotf("nop: vipd rules look up a table")
		return r.setAction("nop")
	},
	"type": func(r *ruleIn, opt string, l *lineWords) string {
		v, bad := l.arg(opt)
		if bad != "" {
			return bad
		}
		if f := ruleActions[v]; f != nil {
			return f(r, v, l)
		}
		return ruleAction(r, v)
	},
}

// ruleActions are the actions that are keywords of their own (goto, nop);
// the others are route types (blackhole, ...).
var ruleActions = map[string]func(r *ruleIn, opt string, l *lineWords) string{}

func init() {
	ruleActions["goto"] = ruleKeywords["goto"]
	ruleActions["nop"] = ruleKeywords["nop"]
}

// ruleAction reads a route type as a rule's action, or says why not.
func ruleAction(r *ruleIn, v string) string {
	switch v {
	case "blackhole", "unreachable", "prohibit":
		r.cannotf("%s: vipd rules look up a table", v)
		return r.setAction(v)
	}
	if routeTypes[v] {
		return fmt.Sprintf("invalid rule action %s", v)
	}
	return fmt.Sprintf("unknown rule option %s", v)
}

func (r *ruleIn) setAction(a string) string {
	if r.action != "" {
		return "more than one of table, nop, goto, blackhole, prohibit, unreachable and l3mdev"
	}
	r.action = a
	return ""
}

func (r *ruleIn) selector(opt string, l *lineWords, dst **kNetwork) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	n, ok := parseNetwork(v)
	if !ok {
		return fmt.Sprintf("invalid rule %s address %s", opt, v)
	}
	*dst = &n
	return r.setFamily(n.family)
}

func (r *ruleIn) setTable(opt string, l *lineWords) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	n, named, ok := kTable(v)
	switch {
	case !ok:
		return fmt.Sprintf("routing table %s not found for rule", v)
	case named:
		r.cannotf("%s %s: %s", opt, v, unnamedTable)
	case n == 0:
		return "table 0 is not valid"
	}
	r.table = n
	return r.setAction("table")
}

func (r *ruleIn) setPriority(opt string, l *lineWords) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	n, ok := kUint(v, 1<<32-1)
	if !ok {
		return fmt.Sprintf("invalid rule preference %s specified", v)
	}
	r.priority, r.hasPriority = n, true
	return ""
}

func (r *ruleIn) suppressor(opt string, l *lineWords) string {
	v, bad := l.arg(opt)
	if bad != "" {
		return bad
	}
	r.tableOption = true
	r.cannotf("%s %s: vipd rules have no suppressors: without it the rule would send other traffic to the table", opt, v)
	return ""
}

// parseRule reads a virtual_rules (static: static_rules) line as
// keepalived's alloc_rule does; bad is why keepalived refuses it.
func parseRule(l *lineWords, static bool) (r *ruleIn, bad string) {
	r = &ruleIn{}
	for l.more() {
		w := l.next()
		if f := ruleKeywords[w]; f != nil {
			if bad := f(r, w, l); bad != "" {
				return r, bad
			}
			continue
		}
		if w == "track_group" && static {
			if _, bad := l.arg(w); bad != "" {
				return r, bad
			}
			continue
		}
		if bad := ruleAction(r, w); bad != "" {
			if w == "pref" {
				bad += " (keepalived's are preference, order and priority)"
			}
			return r, bad
		}
	}
	switch {
	case r.action == "goto" && !r.hasPriority:
		return r, fmt.Sprintf("goto target %d specified without preference", r.gotoTarget)
	case r.action == "goto" && r.priority >= r.gotoTarget:
		return r, fmt.Sprintf("preference %d >= goto target %d", r.priority, r.gotoTarget)
	case r.action == "":
		return r, "no action specified for rule (table N)"
	case r.action != "table" && r.tableOption:
		return r, "suppressor/realm specified for non table action"
	case r.l3mdev && r.table != 0:
		return r, "table cannot be specified for l3mdev rules"
	}
	if r.family == "" {
		r.family = "ipv4"
	}
	return r, ""
}

// keepalived gives a rule without a preference one of its own, counting
// down from this for each family, in the order rules are read.
const firstAutoPriority = 16384

// autoPriorities are the preferences keepalived gives the rules without
// one, by line: those of static_rules and of every vrrp_instance's
// virtual_rules that keepalived accepts, in the order of the file.
func autoPriorities(stmts []*Stmt) map[*Stmt]uint64 {
	next := map[string]uint64{"ipv4": firstAutoPriority, "ipv6": firstAutoPriority}
	out := map[*Stmt]uint64{}
	visit := func(block *Stmt, static bool) {
		for _, e := range block.Block {
			if e.HasBlock {
				continue
			}
			r, bad := parseRule(wordsOf(e), static)
			if bad != "" || r.hasPriority {
				continue
			}
			out[e] = next[r.family]
			next[r.family] = (next[r.family] - 1) & (1<<32 - 1) // keepalived's counter is unsigned
		}
	}
	for _, s := range stmts {
		switch s.Keyword {
		case "static_rules":
			visit(s, true)
		case "vrrp_instance":
			for _, a := range s.Block {
				if a.Keyword == "virtual_rules" {
					visit(a, false)
				}
			}
		}
	}
	return out
}

// rule is the vipd rule, or why there is none; prio is the priority it
// gets, its own or keepalived's.
func (r *ruleIn) rule(prio uint64) (config.Rule, string) {
	out := config.Rule{Table: int(r.table)}
	if r.cannot != "" {
		return out, r.cannot
	}
	for _, sel := range []struct {
		n   *kNetwork
		dst *netip.Prefix
	}{{r.from, &out.From}, {r.to, &out.To}} {
		if sel.n == nil || sel.n.all || sel.n.prefix.Bits() == 0 {
			continue // any
		}
		p, why := sel.n.vipdPrefix(r.family)
		if why != "" {
			return out, why
		}
		*sel.dst = p
	}
	switch {
	case !out.From.IsValid() && !out.To.IsValid():
		return out, fmt.Sprintf("it matches all traffic: vipd refuses a rule without from or to, which would send every packet to table %d", r.table)
	case prio < 1 || prio > 32765:
		return out, fmt.Sprintf("priority %d: vipd takes priorities 1..32765 (0 is the local table's, 32766 and 32767 main's and default's)", prio)
	}
	out.Priority = int(prio)
	return out, ""
}

func flowRule(r config.Rule) string {
	var parts []string
	if r.From.IsValid() {
		parts = append(parts, "from: "+flowScalar(r.From.String()))
	}
	if r.To.IsValid() {
		parts = append(parts, "to: "+flowScalar(r.To.String()))
	}
	parts = append(parts, "table: "+strconv.Itoa(r.Table))
	if r.Priority != 0 {
		parts = append(parts, "priority: "+strconv.Itoa(r.Priority))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Conversion.

// outEntry is a converted route or rule (value, a flow mapping), or only
// comments when value is "": a line not converted, in its place.
type outEntry struct {
	head  []string
	value string
}

// vroutes converts an instance's virtual_routes blocks.
func (c *converter) vroutes(in *outInstance, blocks []*Stmt, subject string) {
	seen := map[config.Route]bool{}
	for _, b := range blocks {
		if !b.HasBlock {
			in.routes = append(in.routes, outEntry{head: []string{c.notConverted(b, subject, "expected virtual_routes { ROUTE ... }")}})
			continue
		}
		for _, e := range b.Block {
			line := entry("virtual_routes", e)
			if e.HasBlock {
				in.routes = append(in.routes, outEntry{head: []string{c.notConverted(line, subject, "a block inside virtual_routes")}})
				continue
			}
			r, bad := parseRoute(wordsOf(e))
			if bad != "" {
				in.routes = append(in.routes, outEntry{head: []string{c.notConverted(line, subject, "keepalived refuses it too: "+bad)}})
				continue
			}
			route, why := r.route()
			if why != "" {
				in.routes = append(in.routes, outEntry{head: []string{c.notConverted(line, subject, why)}})
				continue
			}
			if seen[route] {
				c.ignored(e, subject, short(line.Line()), "listed twice; converted once")
				continue
			}
			seen[route] = true
			in.routeList = append(in.routeList, route)
			in.routes = append(in.routes, outEntry{head: c.droppedNotes(line, subject, r.dropped), value: flowRoute(route)})
		}
	}
}

// vrules converts an instance's virtual_rules blocks.
func (c *converter) vrules(in *outInstance, blocks []*Stmt, subject string) {
	seen := map[config.Rule]bool{}
	for _, b := range blocks {
		if !b.HasBlock {
			in.rules = append(in.rules, outEntry{head: []string{c.notConverted(b, subject, "expected virtual_rules { RULE ... }")}})
			continue
		}
		for _, e := range b.Block {
			line := entry("virtual_rules", e)
			if e.HasBlock {
				in.rules = append(in.rules, outEntry{head: []string{c.notConverted(line, subject, "a block inside virtual_rules")}})
				continue
			}
			r, bad := parseRule(wordsOf(e), false)
			if bad != "" {
				in.rules = append(in.rules, outEntry{head: []string{c.notConverted(line, subject, "keepalived refuses it too: "+bad)}})
				continue
			}
			prio, auto := r.priority, false
			if !r.hasPriority {
				prio, auto = c.autoPrio[e], true
			}
			rule, why := r.rule(prio)
			if why != "" {
				in.rules = append(in.rules, outEntry{head: []string{c.notConverted(line, subject, why)}})
				continue
			}
			if seen[rule] {
				c.ignored(e, subject, short(line.Line()), "listed twice; converted once")
				continue
			}
			seen[rule] = true
			head := c.droppedNotes(line, subject, r.dropped)
			if auto {
				head = append(head, c.report(e, Finding{Subject: subject, What: "no preference", Said: short(line.Line()) + ": no preference", Msg: fmt.Sprintf("keepalived gives it %d (counting down from %d for each such rule, and warns \"This is probably not what you want\"): converted as priority: %d; better give every rule its own", prio, firstAutoPriority, prio), Note: fmt.Sprintf("keepalived gives it %d", prio)}))
			}
			in.ruleList = append(in.ruleList, rule)
			in.rules = append(in.rules, outEntry{head: head, value: flowRule(rule)})
		}
	}
}

// droppedNotes reports the options a route or rule is converted without,
// and returns the comments that go with it.
func (c *converter) droppedNotes(line *Stmt, subject string, ds []dropped) []string {
	var notes []string
	for _, d := range ds {
		notes = append(notes, c.report(line, Finding{Subject: subject, What: d.opt, Said: short(line.Line()) + ": " + d.opt, Kind: NotConverted, Msg: d.why, Note: d.why}))
	}
	return notes
}
