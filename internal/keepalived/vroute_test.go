package keepalived

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vipd/vipd/internal/config"
)

// blockConf is a vrrp_instance with a block (virtual_routes, ...) holding
// lines, after the top-level text before.
func blockConf(before, block string, lines ...string) string {
	return before +
		"vrrp_instance VI {\n" +
		"    interface eth0\n" +
		"    virtual_router_id 9\n" +
		"    virtual_ipaddress {\n" +
		"        192.0.2.9/24\n" +
		"    }\n" +
		"    " + block + " {\n" +
		"        " + strings.Join(lines, "\n        ") + "\n" +
		"    }\n" +
		"}\n"
}

var cmpAddrs = []cmp.Option{
	cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
	cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }),
}

// convertBack converts conf and reads the output back as vipd does.
func convertBack(t *testing.T, conf string) (config.Instance, string) {
	t.Helper()
	res, err := convertString(t, conf)
	if err != nil {
		t.Fatalf("%v\n%s", err, joinWarnings(res.Warnings))
	}
	c, err := config.Parse("out.yaml", res.YAML)
	if err != nil {
		t.Fatalf("vipd rejects the output: %v\n%s", err, res.YAML)
	}
	return c.Instances[0], joinWarnings(res.Warnings)
}

// hasWarning says whether warns has the line want, or is empty when want
// is.
func hasWarning(warns, want string) bool {
	if want == "" {
		return warns == ""
	}
	return strings.Contains(warns, want+"\n")
}

// TestRoutes converts one virtual_routes line at a time (line 8 of
// k.conf): its warning, if any, and the routes vipd reads back (none when
// the line is not converted).
func TestRoutes(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	uni := config.RouteUnicast
	tests := []struct {
		name, line string
		warn       string // a line of the warnings; "" for none
		want       []config.Route
	}{
		// Converted.
		{"hex metric, table 0", "198.51.100.0/24 via 192.0.2.1 metric 0x10 table 0", "",
			[]config.Route{{To: p("198.51.100.0/24"), Via: a("192.0.2.1"), Metric: 16, Type: uni}}},
		{"table 254 is main", "198.51.100.0/24 via inet 192.0.2.1 table 254", "",
			[]config.Route{{To: p("198.51.100.0/24"), Via: a("192.0.2.1"), Type: uni}}},
		{"one nexthop", "198.51.100.0/24 nexthop via 192.0.2.1 dev eth1 onlink",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 nexthop via 192.0.2.1 dev eth1 onlink: onlink: not converted: vipd has no onlink: the kernel then takes the route only if the gateway is in a subnet of the interface",
			[]config.Route{{To: p("198.51.100.0/24"), Via: a("192.0.2.1"), Dev: "eth1", Type: uni}}},
		{"as to", "198.51.100.0/24 dev eth1 as to 198.51.100.9",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 dev eth1 as to 198.51.100.9: as to 198.51.100.9: not converted: keepalived ignores it too (it is for MPLS)",
			[]config.Route{{To: p("198.51.100.0/24"), Dev: "eth1", Type: uni}}},
		{"default6", "default6 via 2001:db8::1", "",
			[]config.Route{{To: p("::/0"), Via: a("2001:db8::1"), Type: uni}}},
		{"last destination wins", "198.51.100.0/24 203.0.113.0/24 dev eth1", "",
			[]config.Route{{To: p("203.0.113.0/24"), Dev: "eth1", Type: uni}}},
		{"metric and lock options", "198.51.100.0/24 dev eth1 rtt lock 10 congctl lock cubic",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 dev eth1 rtt lock 10 congctl lock cubic: congctl lock cubic: not converted: vipd has no such route option",
			[]config.Route{{To: p("198.51.100.0/24"), Dev: "eth1", Type: uni}}},
		{"blackhole via", "blackhole 203.0.113.0/24 via 192.0.2.1",
			"k.conf:8: vrrp_instance VI: virtual_routes blackhole 203.0.113.0/24 via 192.0.2.1: via 192.0.2.1: not converted: a blackhole route has no via or dev in vipd (the kernel refuses them for IPv4 routes, so keepalived could not add this one)",
			[]config.Route{{To: p("203.0.113.0/24"), Type: config.RouteBlackhole}}},

		// keepalived refuses them.
		{"via without value", "198.51.100.0/24 via",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via: not converted: keepalived refuses it too: via needs a value", nil},
		{"bad via", "198.51.100.0/24 via gateway",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via gateway: not converted: keepalived refuses it too: invalid route via address gateway", nil},
		{"bad metric", "198.51.100.0/24 via 192.0.2.1 metric -1",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 metric -1: not converted: keepalived refuses it too: invalid metric -1 specified for route", nil},
		{"no destination", "src 192.0.2.9 via 192.0.2.1",
			"k.conf:8: vrrp_instance VI: virtual_routes src 192.0.2.9 via 192.0.2.1: not converted: keepalived refuses it too: a route must have a destination", nil},
		{"to alone", "via 192.0.2.1 to",
			"k.conf:8: vrrp_instance VI: virtual_routes via 192.0.2.1 to: not converted: keepalived refuses it too: to needs a destination", nil},
		{"type after to", "to blackhole 203.0.113.0/24",
			"k.conf:8: vrrp_instance VI: virtual_routes to blackhole 203.0.113.0/24: not converted: keepalived refuses it too: unknown route keyword blackhole", nil},
		{"prefix length", "198.51.100.0/33 via 192.0.2.1",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/33 via 192.0.2.1: not converted: keepalived refuses it too: unknown route keyword 198.51.100.0/33", nil},
		{"unknown table", "198.51.100.0/24 via 192.0.2.1 table 4294967296",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 table 4294967296: not converted: keepalived refuses it too: routing table 4294967296 not found for route", nil},
		{"IPv4 from", "from 192.0.2.0/24 198.51.100.0/24 via 192.0.2.1",
			"k.conf:8: vrrp_instance VI: virtual_routes from 192.0.2.0/24 198.51.100.0/24 via 192.0.2.1: not converted: keepalived refuses it too: route from address only supported with IPv6", nil},
		{"trailing nonsense", "198.51.100.0/24 nexthop via 192.0.2.1 metric 5",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 nexthop via 192.0.2.1 metric 5: not converted: keepalived refuses it too: route has trailing nonsense after nexthops - metric", nil},
		{"nexthop weight 0", "198.51.100.0/24 nexthop via 192.0.2.1 weight 0",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 nexthop via 192.0.2.1 weight 0: not converted: keepalived refuses it too: invalid weight 0 specified for route", nil},
		{"expires on IPv4", "198.51.100.0/24 via 192.0.2.1 expires 60",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 expires 60: not converted: keepalived refuses it too: expires is only valid for IPv6", nil},
		{"unknown word", "198.51.100.0/24 via 192.0.2.1 weight 3",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 weight 3: not converted: keepalived refuses it too: unknown route keyword weight", nil},

		// vipd cannot express them.
		{"encap", "198.51.100.0/24 encap mpls 100 via 192.0.2.1",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 encap mpls 100 via 192.0.2.1: not converted: encap: vipd routes have no encapsulation", nil},
		{"local type", "local 198.51.100.0/24 dev eth1",
			"k.conf:8: vrrp_instance VI: virtual_routes local 198.51.100.0/24 dev eth1: not converted: a local route: vipd routes are unicast, blackhole, unreachable or prohibit", nil},
		{"bad interface", "198.51.100.0/24 dev eth0:1",
			`k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 dev eth0:1: not converted: interface "eth0:1": no '/', ':' or white space allowed`, nil},
		{"link-local gateway without dev", "2001:db8:1::/48 via fe80::1",
			"k.conf:8: vrrp_instance VI: virtual_routes 2001:db8:1::/48 via fe80::1: not converted: a link-local gateway without dev: the kernel cannot tell which link it is on", nil},
		{"dsfield", "198.51.100.0/24 via 192.0.2.1 dsfield 8",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 dsfield 8: not converted: dsfield 8: a route for one TOS; a vipd route matches the destination only", nil},
		{"nexthop besides via", "198.51.100.0/24 via 192.0.2.1 nexthop via 192.0.2.2",
			"k.conf:8: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1 nexthop via 192.0.2.2: not converted: nexthop: a multipath route: a vipd route has one next hop", nil},
		{"host bits IPv6", "2001:db8::1/32 via 2001:db8::2",
			"k.conf:8: vrrp_instance VI: virtual_routes 2001:db8::1/32 via 2001:db8::2: not converted: 2001:db8::1/32 has host bits set, which vipd refuses; the network is 2001:db8::/32", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, warns := convertBack(t, blockConf("", "virtual_routes", tt.line))
			if !hasWarning(warns, tt.warn) {
				t.Errorf("warnings:\n%s\nwant the line\n%s", warns, tt.warn)
			}
			if diff := cmp.Diff(tt.want, in.Routes, cmpAddrs...); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRules is TestRoutes for virtual_rules.
func TestRules(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name, line string
		warn       string
		want       []config.Rule
	}{
		// Converted.
		{"hex table, bare address", "to 198.51.100.9 table 0x64 priority 5", "",
			[]config.Rule{{To: p("198.51.100.9/32"), Table: 100, Priority: 5}}},
		{"table local", "from 192.0.2.9 lookup local order 7", "",
			[]config.Rule{{From: p("192.0.2.9/32"), Table: 255, Priority: 7}}},
		{"from 0/0 is any", "from 0.0.0.0/0 to 198.51.100.0/24 table 100 priority 9", "",
			[]config.Rule{{To: p("198.51.100.0/24"), Table: 100, Priority: 9}}},
		{"realms", "from 192.0.2.9 table 100 priority 9 realms 5",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 table 100 priority 9 realms 5: realms 5: not converted: vipd has no such rule option",
			[]config.Rule{{From: p("192.0.2.9/32"), Table: 100, Priority: 9}}},

		// keepalived refuses them.
		{"from alone", "table 100 from",
			"k.conf:8: vrrp_instance VI: virtual_rules table 100 from: not converted: keepalived refuses it too: from needs a value", nil},
		{"bad from", "from 192.0.2.300 table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.300 table 100: not converted: keepalived refuses it too: invalid rule from address 192.0.2.300", nil},
		{"bad fwmark", "from 192.0.2.9 fwmark 1/x table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 fwmark 1/x table 100: not converted: keepalived refuses it too: invalid rule fwmark 1/x specified", nil},
		{"bad uidrange", "from 192.0.2.9 uidrange 1000 table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 uidrange 1000 table 100: not converted: keepalived refuses it too: invalid uidrange 1000 specified", nil},
		{"goto without preference", "from 192.0.2.9 goto 300",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 goto 300: not converted: keepalived refuses it too: goto target 300 specified without preference", nil},
		{"goto backwards", "from 192.0.2.9 type goto 300 priority 300",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 type goto 300 priority 300: not converted: keepalived refuses it too: preference 300 >= goto target 300", nil},
		{"two actions", "from 192.0.2.9 table 100 unreachable",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 table 100 unreachable: not converted: keepalived refuses it too: more than one of table, nop, goto, blackhole, prohibit, unreachable and l3mdev", nil},
		{"route type as action", "from 192.0.2.9 type local",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 type local: not converted: keepalived refuses it too: invalid rule action local", nil},
		{"realms without a table", "from 192.0.2.9 realms 1 prohibit",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 realms 1 prohibit: not converted: keepalived refuses it too: suppressor/realm specified for non table action", nil},
		{"l3mdev with table", "l3mdev table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules l3mdev table 100: not converted: keepalived refuses it too: more than one of table, nop, goto, blackhole, prohibit, unreachable and l3mdev", nil},
		{"track_group", "from 192.0.2.9 table 100 track_group G",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 table 100 track_group G: not converted: keepalived refuses it too: unknown rule option track_group", nil},

		// vipd cannot express them.
		{"l3mdev", "from 192.0.2.9 l3mdev",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 l3mdev: not converted: l3mdev: vipd rules look up a table they name", nil},
		{"tos", "from 192.0.2.9 tos 0x10 table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 tos 0x10 table 100: not converted: tos 0x10: vipd rules select on from and to only: without it the rule would catch other traffic", nil},
		{"dport", "to 198.51.100.0/24 dport 443 table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules to 198.51.100.0/24 dport 443 table 100: not converted: dport 443: vipd rules select on from and to only: without it the rule would catch other traffic", nil},
		{"nop", "from 192.0.2.9 nop",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 nop: not converted: nop: vipd rules look up a table", nil},
		{"IPv6 everything", "inet6 from all to ::/0 table 100",
			"k.conf:8: vrrp_instance VI: virtual_rules inet6 from all to ::/0 table 100: not converted: it matches all traffic: vipd refuses a rule without from or to, which would send every packet to table 100", nil},
		{"sup_group", "from 192.0.2.9 table 100 sup_group 1",
			"k.conf:8: vrrp_instance VI: virtual_rules from 192.0.2.9 table 100 sup_group 1: not converted: sup_group 1: vipd rules have no suppressors: without it the rule would send other traffic to the table", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, warns := convertBack(t, blockConf("", "virtual_rules", tt.line))
			if !hasWarning(warns, tt.warn) {
				t.Errorf("warnings:\n%s\nwant the line\n%s", warns, tt.warn)
			}
			if diff := cmp.Diff(tt.want, in.Rules, cmpAddrs...); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAutoPriorities follows keepalived's numbering of rules without a
// preference: per family, in the order of the file, static_rules too,
// rules of instances vipd does not convert too, and not the rules
// keepalived refuses.
func TestAutoPriorities(t *testing.T) {
	conf := "static_rules {\n" +
		"    from 192.0.2.1 table 10\n" + // 16384
		"    from 192.0.2.2 bogus table 10\n" + // refused: no number
		"    from 192.0.2.3 table 10 track_group G\n" + // 16383
		"}\n" +
		"vrrp_instance NOVIP {\n" +
		"    interface eth0\n" +
		"    virtual_router_id 8\n" +
		"    virtual_rules {\n" +
		"        from 192.0.2.4 table 10\n" + // 16382
		"        from 2001:db8::4 table 10\n" + // 16384 (IPv6)
		"    }\n" +
		"}\n"
	in, _ := convertBack(t, blockConf(conf, "virtual_rules",
		"from 192.0.2.5 table 100",          // 16381
		"from 192.0.2.6 fwmark 1 table 100", // 16380, not converted
		"from 192.0.2.7 table 100 priority 5",
		"inet6 to 2001:db8::/32 table 100", // 16383
		"from 192.0.2.8 table 100",         // 16379
	))
	p := netip.MustParsePrefix
	want := []config.Rule{
		{From: p("192.0.2.5/32"), Table: 100, Priority: 16381},
		{From: p("192.0.2.7/32"), Table: 100, Priority: 5},
		{To: p("2001:db8::/32"), Table: 100, Priority: 16383},
		{From: p("192.0.2.8/32"), Table: 100, Priority: 16379},
	}
	if diff := cmp.Diff(want, in.Rules, cmpAddrs...); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

// TestRoutesNoneConverted: when no line converts, the output has their
// comments and no routes field.
func TestRoutesNoneConverted(t *testing.T) {
	res, err := convertString(t, blockConf("", "virtual_routes", "198.51.100.0/24", "throw 198.51.100.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.YAML)
	if strings.Contains(out, "routes:") || !strings.Contains(out, "    # not converted: virtual_routes throw 198.51.100.0/24 (k.conf:9): a throw route") {
		t.Errorf("output:\n%s", out)
	}
}

// TestVirtualBlockless: virtual_routes and virtual_rules without a block.
func TestVirtualBlockless(t *testing.T) {
	conf := "vrrp_instance VI {\n" +
		"    interface eth0\n" +
		"    virtual_router_id 9\n" +
		"    virtual_ipaddress {\n" +
		"        192.0.2.9/24\n" +
		"    }\n" +
		"    virtual_routes 198.51.100.0/24 via 192.0.2.1\n" +
		"    virtual_rules\n" +
		"}\n"
	res, err := convertString(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	warns := joinWarnings(res.Warnings)
	for _, w := range []string{
		"k.conf:7: vrrp_instance VI: virtual_routes 198.51.100.0/24 via 192.0.2.1: not converted: expected virtual_routes { ROUTE ... }\n",
		"k.conf:8: vrrp_instance VI: virtual_rules: not converted: expected virtual_rules { RULE ... }\n",
	} {
		if !strings.Contains(warns, w) {
			t.Errorf("warnings:\n%s\nwant the line\n%s", warns, w)
		}
	}
}
