package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/internal/config"
)

func TestPlan(t *testing.T) {
	api := instanceConfig(150)
	ingress := instanceConfig(120)
	ingress.Name, ingress.VRID = "ingress", 52
	ingress.VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.60/24")}
	with := func(ic config.Instance, f func(*config.Instance)) config.Instance { f(&ic); return ic }

	// step is a change as the table writes it: kind, name and why.
	type step struct{ kind, name, why string }
	tests := []struct {
		name      string
		old, next []config.Instance
		want      []step
	}{
		{name: "start: every instance is added", next: []config.Instance{api, ingress},
			want: []step{{"add", "api", ""}, {"add", "ingress", ""}}},
		{name: "nothing changed: nothing is touched", old: []config.Instance{api, ingress}, next: []config.Instance{api, ingress}},
		{name: "a new instance is added, the others untouched", old: []config.Instance{api}, next: []config.Instance{api, ingress},
			want: []step{{"add", "ingress", ""}}},
		{name: "a removed instance is removed", old: []config.Instance{api, ingress}, next: []config.Instance{ingress},
			want: []step{{"remove", "api", ""}}},
		{name: "priority, interval, preemption, announcements, tracking and hooks change in place",
			old: []config.Instance{api},
			next: []config.Instance{with(api, func(c *config.Instance) {
				c.Priority, c.AdvertInterval, c.Preempt, c.PreemptDelay = 40, time.Second, false, time.Second
				c.Announce.Count = 1
				c.TrackInterfaces = []config.TrackInterface{{Interface: "eth1"}}
				c.Notify.Master = []string{"/bin/true"}
			})},
			want: []step{{"update", "api", ""}}},
		{name: "the interface changed: restart", old: []config.Instance{api}, next: []config.Instance{with(api, func(c *config.Instance) { c.Interface = "eth1" })},
			want: []step{{"restart", "api", "interface changed"}}},
		{name: "the VRID changed: restart", old: []config.Instance{api}, next: []config.Instance{with(api, func(c *config.Instance) { c.VRID = 9 })},
			want: []step{{"restart", "api", "vrid changed"}}},
		{name: "the VIPs changed: restart", old: []config.Instance{api}, next: []config.Instance{with(api, func(c *config.Instance) { c.VIPs = ingress.VIPs })},
			want: []step{{"restart", "api", "vips changed"}}},
		{name: "the family changed: restart", old: []config.Instance{api}, next: []config.Instance{with(api, func(c *config.Instance) { c.Family = "ipv6" })},
			want: []step{{"restart", "api", "family changed"}}},
		{name: "unicast peers changed: restart", old: []config.Instance{api},
			next: []config.Instance{with(api, func(c *config.Instance) { c.UnicastPeers = []netip.Addr{netip.MustParseAddr("192.0.2.12")} })},
			want: []step{{"restart", "api", "unicast peers or source changed"}}},
		{name: "a VRRPv2 interval change: restart (adverts must match it)",
			old:  []config.Instance{with(api, func(c *config.Instance) { c.Version, c.AdvertInterval = 2, time.Second })},
			next: []config.Instance{with(api, func(c *config.Instance) { c.Version, c.AdvertInterval = 2, 2*time.Second })},
			want: []step{{"restart", "api", "VRRPv2 interval changed (adverts must match it)"}}},
		{name: "a VRID moving between instances: the removal comes first",
			old:  []config.Instance{api},
			next: []config.Instance{with(api, func(c *config.Instance) { c.Name = "api2" })},
			want: []step{{"remove", "api", ""}, {"add", "api2", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []step
			for _, c := range plan(tt.old, tt.next) {
				name := c.new.Name
				if c.kind == changeRemove {
					name = c.old.Name
				}
				got = append(got, step{c.kind.String(), name, c.why})
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
