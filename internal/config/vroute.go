package config

import (
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

// Route is a virtual route: present in the kernel while its instance is
// Master (keepalived's virtual_routes).
type Route struct {
	To     netip.Prefix // the destination, masked; 0.0.0.0/0 for default
	Via    netip.Addr   // the gateway; invalid for a direct route
	Dev    string       // the output interface; empty: the kernel finds it from Via
	Table  int          // the routing table; 0 is main
	Metric int          // the route's priority
	Src    netip.Addr   // the preferred source, usually a VIP; invalid for none
	Type   string       // RouteUnicast (the default), RouteBlackhole, RouteUnreachable or RouteProhibit
}

// Route types.
const (
	RouteUnicast     = "unicast"
	RouteBlackhole   = "blackhole"
	RouteUnreachable = "unreachable"
	RouteProhibit    = "prohibit"
)

// Rule is a virtual routing policy rule, present while its instance is
// Master (keepalived's virtual_rules).
type Rule struct {
	From, To netip.Prefix // selectors; invalid for any
	Table    int          // the table it looks up
	Priority int          // its order; 0: the kernel picks one
}

// MaxTable is the largest routing table number (a 32-bit id; the kernel
// reserves 0 and uses 253..255 for default, main and local).
const MaxTable = 1<<32 - 1

// routes decodes an instance's routes.
func (d *decoder) routes(n *yaml.Node, path string) []Route {
	var out []Route
	seen := map[Route]int{}
	d.list(n, path, "routes", func(_ int, n *yaml.Node, path string) {
		r := Route{Type: RouteUnicast}
		errs := len(d.errs)
		vals, ok := d.mapping(n, path, []field{
			{name: "to", required: true, decode: d.network(&r.To)},
			{name: "via", decode: d.addr(&r.Via)},
			{name: "dev", decode: setString(d, &r.Dev, checkInterface)},
			{name: "table", decode: setInt(d, &r.Table, 1, MaxTable)},
			{name: "metric", decode: setInt(d, &r.Metric, 0, MaxTable)},
			{name: "src", decode: d.addr(&r.Src)},
			{name: "type", decode: setString(d, &r.Type, func(s string) error {
				switch s {
				case RouteUnicast, RouteBlackhole, RouteUnreachable, RouteProhibit:
					return nil
				}
				return fmt.Errorf("%q is not unicast, blackhole, unreachable or prohibit", short(s))
			})},
		})
		if !ok || len(d.errs) > errs {
			return
		}
		fam := r.To.Addr().Is4()
		for _, a := range []struct {
			name string
			addr netip.Addr
		}{{"via", r.Via}, {"src", r.Src}} {
			if a.addr.IsValid() && a.addr.Is4() != fam {
				d.errorf(vals[a.name], join(path, a.name), "%s is not of the family of %s", a.addr, r.To)
				ok = false
			}
		}
		switch {
		case r.Type != RouteUnicast && (r.Via.IsValid() || r.Dev != ""):
			d.errorf(vals["type"], join(path, "type"), "a %s route has no via or dev", r.Type)
			ok = false
		case r.Type == RouteUnicast && !r.Via.IsValid() && r.Dev == "":
			d.errorf(n, join(path, "via"), "a route needs via or dev (or a type such as blackhole)")
			ok = false
		}
		if !ok {
			return
		}
		key := r
		if first, dup := seen[key]; dup {
			d.errorf(n, path, "the route to %s is listed twice (first at line %d)", r.To, first)
			return
		}
		seen[key] = n.Line
		out = append(out, r)
	})
	return out
}

// rules decodes an instance's rules.
func (d *decoder) rules(n *yaml.Node, path string) []Rule {
	var out []Rule
	seen := map[Rule]int{}
	d.list(n, path, "rules", func(_ int, n *yaml.Node, path string) {
		var r Rule
		errs := len(d.errs)
		vals, ok := d.mapping(n, path, []field{
			{name: "from", decode: d.network(&r.From)},
			{name: "to", decode: d.network(&r.To)},
			{name: "table", required: true, decode: setInt(d, &r.Table, 1, MaxTable)},
			{name: "priority", decode: setInt(d, &r.Priority, 1, 32765)},
		})
		if !ok || len(d.errs) > errs {
			return
		}
		switch {
		case !r.From.IsValid() && !r.To.IsValid():
			d.errorf(n, join(path, "from"), "a rule needs from or to: one that matches everything would send all traffic to table %d", r.Table)
			return
		case r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4():
			d.errorf(vals["to"], join(path, "to"), "%s and %s are of different families", r.From, r.To)
			return
		}
		if first, dup := seen[r]; dup {
			d.errorf(n, path, "the rule is listed twice (first at line %d)", first)
			return
		}
		seen[r] = n.Line
		out = append(out, r)
	})
	return out
}

// network decodes a prefix, or "default" for the family's default route;
// host bits must be zero.
func (d *decoder) network(dst *netip.Prefix) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if !d.scalar(n, path, "a prefix such as 198.51.100.0/24") {
			return
		}
		s := n.Value
		var p netip.Prefix
		var err error
		switch {
		case s == "default":
			d.errorf(n, path, `write 0.0.0.0/0 or ::/0 for a default route`)
			return
		case strings.Contains(s, "/"):
			p, err = netip.ParsePrefix(s)
		default:
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			d.errorf(n, path, "expected a prefix such as 198.51.100.0/24 or 2001:db8::/64, got %s", describe(n))
			return
		}
		if p.Masked() != p {
			d.errorf(n, path, "%s has host bits set; the network is %s", s, p.Masked())
			return
		}
		*dst = p
	}
}
