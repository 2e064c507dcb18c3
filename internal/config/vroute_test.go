package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRoutesRulesRefresh(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(inst(
		"    announce: {refresh: 60s}",
		"    routes:",
		"      - {to: 198.51.100.0/24, via: 192.0.2.1}",
		"      - {to: 0.0.0.0/0, via: 192.0.2.1, dev: eth1, table: 100, metric: 10, src: 192.0.2.50}",
		"      - {to: 203.0.113.0/24, type: blackhole}",
		"      - {to: 203.0.113.7, dev: eth0}",
		"    rules:",
		"      - {from: 192.0.2.50/32, table: 100, priority: 100}",
		"      - {to: 198.51.100.0/24, table: 100}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	wantRoutes := []Route{
		{To: p("198.51.100.0/24"), Via: a("192.0.2.1"), Type: RouteUnicast},
		{To: p("0.0.0.0/0"), Via: a("192.0.2.1"), Dev: "eth1", Table: 100, Metric: 10, Src: a("192.0.2.50"), Type: RouteUnicast},
		{To: p("203.0.113.0/24"), Type: RouteBlackhole},
		{To: p("203.0.113.7/32"), Dev: "eth0", Type: RouteUnicast},
	}
	wantRules := []Rule{{From: p("192.0.2.50/32"), Table: 100, Priority: 100}, {To: p("198.51.100.0/24"), Table: 100}}
	eq := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	eqp := cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })
	if diff := cmp.Diff(wantRoutes, in.Routes, eq, eqp); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRules, in.Rules, eq, eqp); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if in.Announce.Refresh != time.Minute || in.Announce.Count != DefaultAnnounceCount {
		t.Errorf("announce %+v", in.Announce)
	}
}

func TestRoutesRulesErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"no to", []string{"    routes: [{via: 192.0.2.1}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].to: required field is missing`,
		}},
		{"host bits", []string{"    routes: [{to: 198.51.100.1/24, via: 192.0.2.1}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].to: 198.51.100.1/24 has host bits set; the network is 198.51.100.0/24`,
		}},
		{"default", []string{"    routes: [{to: default, via: 192.0.2.1}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].to: write 0.0.0.0/0 or ::/0 for a default route`,
		}},
		{"no via or dev", []string{"    routes: [{to: 198.51.100.0/24}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].via: a route needs via or dev (or a type such as blackhole)`,
		}},
		{"blackhole via", []string{"    routes: [{to: 198.51.100.0/24, via: 192.0.2.1, type: blackhole}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].type: a blackhole route has no via or dev`,
		}},
		{"family", []string{"    routes: [{to: 2001:db8::/64, via: 192.0.2.1}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].via: 192.0.2.1 is not of the family of 2001:db8::/64`,
		}},
		{"type", []string{"    routes: [{to: 198.51.100.0/24, type: nat}]"}, []string{
			`vipd.yaml:7: instances[0].routes[0].type: "nat" is not unicast, blackhole, unreachable or prohibit`,
		}},
		{"twice", []string{"    routes:", "      - {to: 198.51.100.0/24, via: 192.0.2.1}", "      - {to: 198.51.100.0/24, via: 192.0.2.1}"}, []string{
			`vipd.yaml:9: instances[0].routes[1]: the route to 198.51.100.0/24 is listed twice (first at line 8)`,
		}},
		{"rule without selector", []string{"    rules: [{table: 100}]"}, []string{
			`vipd.yaml:7: instances[0].rules[0].from: a rule needs from or to: one that matches everything would send all traffic to table 100`,
		}},
		{"rule without table", []string{"    rules: [{from: 192.0.2.50/32}]"}, []string{
			`vipd.yaml:7: instances[0].rules[0].table: required field is missing`,
		}},
		{"rule priority", []string{"    rules: [{from: 192.0.2.50/32, table: 100, priority: 40000}]"}, []string{
			`vipd.yaml:7: instances[0].rules[0].priority: 40000 is out of range 1..32765`,
		}},
		{"refresh too often", []string{"    announce: {refresh: 100ms}"}, []string{
			`vipd.yaml:7: instances[0].announce.refresh: 100ms is more often than once a second; 0 turns the refresh off`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := inst(tt.lines...)
			_, err := Parse("vipd.yaml", []byte(src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", src, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}
