package vroute

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/testenv"
)

// These tests run the manager against the kernel, in a network namespace
// with a veth pair v0 (192.0.2.2/24, 2001:db8::2/64, the VIPs
// 192.0.2.10/32 and 2001:db8::10/128) and p0, its peer, both up; the
// gateways 192.0.2.1 and 2001:db8::1 are on v0's subnets.

var (
	vip4 = "192.0.2.10/32"
	vip6 = "2001:db8::10/128"

	linuxRoutes = []config.Route{
		{To: pfx("198.51.100.0/24"), Via: addr("192.0.2.1")},
		{To: pfx("203.0.113.0/24"), Type: config.RouteBlackhole},
		{To: pfx("0.0.0.0/0"), Via: addr("192.0.2.1"), Table: 100},
		{To: pfx("198.51.100.128/25"), Dev: "v0", Src: addr("192.0.2.10"), Metric: 10},
		{To: pfx("2001:db8:1::/48"), Via: addr("2001:db8::1")},
		{To: pfx("2001:db8:2::/48"), Type: config.RouteBlackhole},
		{To: pfx("::/0"), Via: addr("2001:db8::1"), Table: 100},
		{To: pfx("2001:db8:3::/48"), Dev: "v0", Src: addr("2001:db8::10")},
		{To: pfx("198.51.100.64/26"), Type: config.RouteProhibit, Metric: 5},
		{To: pfx("2001:db8:4::/48"), Type: config.RouteUnreachable},
	}
	linuxRules = []config.Rule{
		{From: pfx("192.0.2.10/32"), Table: 100, Priority: 100},
		{From: pfx("2001:db8::10/128"), Table: 100}, // the kernel picks the priority
	}
	// As ip(8) shows them (see ipRoute.String).
	wantRoutes4 = []string{
		"0.0.0.0/0 via 192.0.2.1 dev v0 table 100 proto 249",
		"198.51.100.0/24 via 192.0.2.1 dev v0 proto 249",
		"198.51.100.128/25 dev v0 src 192.0.2.10 metric 10 proto 249",
		"blackhole 203.0.113.0/24 proto 249",
		"prohibit 198.51.100.64/26 metric 5 proto 249",
	}
	wantRoutes6 = []string{
		"2001:db8:1::/48 via 2001:db8::1 dev v0 metric 1024 proto 249",
		"2001:db8:3::/48 dev v0 src 2001:db8::10 metric 1024 proto 249",
		"::/0 via 2001:db8::1 dev v0 table 100 metric 1024 proto 249",
		"blackhole 2001:db8:2::/48 dev lo metric 1024 proto 249",
		"unreachable 2001:db8:4::/48 dev lo metric 1024 proto 249",
	}
	wantRules = []string{
		"100: from 192.0.2.10/32 lookup 100 proto 249",
		"32765: from 2001:db8::10/128 lookup 100 proto 249",
	}
)

// kernel is a namespace with the veth pair, and a Linux opened in it.
type kernel struct {
	ns string
	l  *Linux
}

func newKernel(t *testing.T) *kernel {
	t.Helper()
	testenv.Privileged(t)
	k := &kernel{ns: testenv.Netns(t, "vroute")}
	k.ip(t, "link", "add", "v0", "type", "veth", "peer", "name", "p0")
	k.ip(t, "link", "set", "p0", "up")
	k.ip(t, "link", "set", "v0", "up")
	k.addrs(t)
	testenv.WaitLink(t, k.ns, "v0", "UP")
	var err error
	testenv.Do(t, k.ns, func() { k.l, err = NewLinux() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.l.Close() })
	return k
}

// addrs puts v0's addresses on it, as after a boot (IPv6 loses them when
// the link goes down).
func (k *kernel) addrs(t *testing.T) {
	t.Helper()
	for _, a := range []string{"192.0.2.2/24", vip4, "2001:db8::2/64", vip6} {
		args := []string{"addr", "add", a, "dev", "v0"}
		if strings.Contains(a, ":") {
			args = append(args, "nodad") // usable at once
		}
		if out := k.try(args...); out != "" && !strings.Contains(out, "exists") && !strings.Contains(out, "already assigned") {
			t.Fatalf("ip %s: %s", strings.Join(args, " "), out)
		}
	}
}

func (k *kernel) ip(t *testing.T, args ...string) string {
	t.Helper()
	return testenv.IP(t, append([]string{"-n", k.ns}, args...)...)
}

// try runs ip(8) and returns its output if it failed, "" if not.
func (k *kernel) try(args ...string) string {
	out, err := execIP(append([]string{"-n", k.ns}, args...)...)
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return ""
}

// start runs a manager over k until the test ends.
func (k *kernel) start(t *testing.T) (*Manager, func() error) {
	t.Helper()
	m := New(k.l, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	var err error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return m, stop
}

func execIP(args ...string) ([]byte, error) {
	return exec.Command("ip", args...).CombinedOutput()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// ipRoute is the part of `ip -j route` the tests look at.
type ipRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Table    string `json:"table"`
	Protocol string `json:"protocol"`
	Prefsrc  string `json:"prefsrc"`
	Metric   int    `json:"metric"`
}

func (r ipRoute) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != "unicast" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst)
	for _, f := range []struct{ name, v string }{{"via", r.Gateway}, {"dev", r.Dev}, {"table", r.Table}, {"src", r.Prefsrc}} {
		if f.v != "" && !(f.name == "table" && f.v == "main") {
			fmt.Fprintf(&b, " %s %s", f.name, f.v)
		}
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	fmt.Fprintf(&b, " proto %s", r.Protocol)
	return b.String()
}

// routes lists the routes of family fam ("-4", "-6") with protocol proto,
// of every table, as ip(8) sees them, sorted.
func (k *kernel) routes(t *testing.T, fam, proto string) []string {
	t.Helper()
	var rs []ipRoute
	out := k.ip(t, fam, "-j", "route", "show", "table", "all")
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ip -j route: %v: %s", err, out)
	}
	var got []string
	for _, r := range rs {
		if r.Protocol != proto {
			continue
		}
		if r.Dst == "default" {
			r.Dst = map[string]string{"-4": "0.0.0.0/0", "-6": "::/0"}[fam]
		}
		got = append(got, r.String())
	}
	slices.Sort(got)
	return got
}

// rules lists the rules with protocol proto as ip(8) sees them.
func (k *kernel) rules(t *testing.T, proto string) []string {
	t.Helper()
	var got []string
	for _, fam := range []string{"-4", "-6"} {
		var rs []struct {
			Priority int    `json:"priority"`
			Src      string `json:"src"`
			SrcLen   int    `json:"srclen"`
			Dst      string `json:"dst"`
			DstLen   int    `json:"dstlen"`
			Table    string `json:"table"`
			Protocol string `json:"protocol"`
		}
		out := k.ip(t, fam, "-j", "rule", "show")
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("ip -j rule: %v: %s", err, out)
		}
		for _, r := range rs {
			if r.Protocol != proto {
				continue
			}
			host := map[string]int{"-4": 32, "-6": 128}[fam]
			sel := func(a string, n int) string {
				if a == "all" || a == "" {
					return a
				}
				if n == 0 {
					n = host
				}
				return fmt.Sprintf("%s/%d", a, n)
			}
			s := fmt.Sprintf("%d: from %s", r.Priority, sel(r.Src, r.SrcLen))
			if r.Dst != "" {
				s += " to " + sel(r.Dst, r.DstLen)
			}
			got = append(got, s+fmt.Sprintf(" lookup %s proto %s", r.Table, r.Protocol))
		}
	}
	slices.Sort(got)
	return got
}

// eventually polls cond every 10 ms for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after 5s: not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// has is whether got holds every one of want.
func has(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// installed waits for all of linuxRoutes and linuxRules.
func (k *kernel) installed(t *testing.T) {
	t.Helper()
	eventually(t, "all routes and rules installed", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), wantRoutes4) &&
			slices.Equal(k.routes(t, "-6", "249"), wantRoutes6) &&
			slices.Equal(k.rules(t, "249"), wantRules)
	})
}

// The manager installs IPv4 and IPv6 routes (through a gateway, a
// blackhole, in table 100, from a VIP) and rules with Protocol, lists back
// exactly those, and removes them all on shutdown.
func TestLinuxInstall(t *testing.T) {
	k := newKernel(t)
	// Someone else's route and rule, which vipd must not touch.
	k.ip(t, "route", "add", "203.0.113.128/25", "via", "192.0.2.1", "proto", "static")
	k.ip(t, "rule", "add", "from", "198.51.100.1", "table", "5", "pref", "5")
	m, stop := k.start(t)
	m.Want("vi_1", linuxRoutes, linuxRules)
	k.installed(t)

	got, err := k.l.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var want []Route
	for _, c := range linuxRoutes {
		r := RouteOf(c)
		if r.Dev == "" {
			r.Dev = "v0"
			switch {
			case r.Type == config.RouteUnicast:
			case r.To.Addr().Is6():
				r.Dev = "lo"
			default:
				r.Dev = ""
			}
		}
		want = append(want, r)
	}
	sortRoutes := func(rs []Route) {
		slices.SortFunc(rs, func(a, b Route) int { return strings.Compare(a.String(), b.String()) })
	}
	sortRoutes(got)
	sortRoutes(want)
	if diff := cmp.Diff(want, got, netipOpt); diff != "" {
		t.Errorf("Linux.Routes (-want +got):\n%s", diff)
	}
	rules, err := k.l.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Errorf("Linux.Rules = %v; want vipd's 2", rules)
	}
	if s := m.Stats(); s.Routes != 10 || s.Rules != 2 || s.Pending != 0 || s.Failures != 0 {
		t.Errorf("Stats = %+v; want 10 routes, 2 rules, nothing pending or failed", s)
	}

	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := append(k.routes(t, "-4", "249"), k.routes(t, "-6", "249")...); len(got) != 0 {
		t.Errorf("after shutdown: routes %q; want none", got)
	}
	if got := k.rules(t, "249"); len(got) != 0 {
		t.Errorf("after shutdown: rules %q; want none", got)
	}
	if got := k.routes(t, "-4", "static"); !slices.Equal(got, []string{"203.0.113.128/25 via 192.0.2.1 dev v0 proto static"}) {
		t.Errorf("after shutdown: static routes %q; want the one added by hand", got)
	}
	if got := k.rules(t, ""); !has(got, "5: from 198.51.100.1/32 lookup 5 proto ") {
		t.Errorf("after shutdown: rules %q; want the one added by hand", got)
	}
}

// The kernel drops the routes through a link that goes down, silently for
// IPv4, and IPv6 takes the link's addresses too: the manager adds the
// routes again once the link is up and, for IPv6, its addresses are back.
func TestLinuxLinkDownUp(t *testing.T) {
	k := newKernel(t)
	m, _ := k.start(t)
	m.Want("vi_1", linuxRoutes, linuxRules)
	k.installed(t)

	k.ip(t, "link", "set", "v0", "down")
	eventually(t, "the routes through v0 gone", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), wantRoutes4[3:]) &&
			slices.Equal(k.routes(t, "-6", "249"), wantRoutes6[3:])
	})
	// Failed re-adds while down: logged once each, retried with backoff.
	time.Sleep(100 * time.Millisecond)
	if s := m.Stats(); s.Pending != 6 {
		t.Errorf("link down: Stats = %+v; want the 6 routes through v0 pending", s)
	}
	k.ip(t, "link", "set", "v0", "up")
	eventually(t, "the IPv4 routes back with the link", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), wantRoutes4)
	})
	k.addrs(t) // IPv6 lost them with the link
	d := eventually(t, "the IPv6 routes back with their addresses", func() bool {
		return slices.Equal(k.routes(t, "-6", "249"), wantRoutes6)
	})
	t.Logf("IPv6 routes back %v after the addresses", d)
	if s := m.Stats(); s.Repairs != 6 || s.Pending != 0 || s.Routes != 10 {
		t.Errorf("Stats = %+v; want 6 repairs, nothing pending", s)
	}
}

// A VIP source going away takes its IPv4 route with it and strips it from
// the IPv6 one; both are restored when the address comes back.
func TestLinuxSourceAddress(t *testing.T) {
	k := newKernel(t)
	m, _ := k.start(t)
	m.Want("vi_1", linuxRoutes, linuxRules)
	k.installed(t)

	k.ip(t, "addr", "del", vip4, "dev", "v0")
	k.ip(t, "addr", "del", vip6, "dev", "v0")
	eventually(t, "the IPv4 route from the VIP gone", func() bool {
		return !slices.Contains(k.routes(t, "-4", "249"), wantRoutes4[2])
	})
	time.Sleep(100 * time.Millisecond) // the manager tries; the kernel refuses
	if got := k.routes(t, "-4", "249"); slices.Contains(got, wantRoutes4[2]) {
		t.Fatalf("routes %q without the VIP; the kernel took a route from an address it does not have", got)
	}
	if got := k.routes(t, "-6", "249"); !slices.Contains(got, "2001:db8:3::/48 dev v0 metric 1024 proto 249") {
		t.Errorf("IPv6 routes %q without the VIP; want the route, its source stripped", got)
	}
	if s := m.Stats(); s.Pending != 2 {
		t.Errorf("Stats = %+v; want both routes pending", s)
	}
	k.ip(t, "addr", "add", vip4, "dev", "v0")
	k.ip(t, "addr", "add", vip6, "dev", "v0", "nodad")
	d := eventually(t, "both routes restored", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), wantRoutes4) && slices.Equal(k.routes(t, "-6", "249"), wantRoutes6)
	})
	t.Logf("restored %v after the addresses came back", d)
	if s := m.Stats(); s.Repairs != 2 || s.Pending != 0 {
		t.Errorf("Stats = %+v; want 2 repairs", s)
	}
}

// Two owners of one route, against the kernel: it stays while either wants
// it; a third's with the same key and another type waits for both to let go.
func TestLinuxRefcount(t *testing.T) {
	k := newKernel(t)
	m, _ := k.start(t)
	shared := []config.Route{linuxRoutes[0], linuxRoutes[4]}
	// vi_3's blackhole has the key of vi_1's route through the gateway: the
	// kernel holds one of them, whatever their types.
	hole := config.Route{To: pfx("198.51.100.0/24"), Type: config.RouteBlackhole}
	m.Want("vi_1", linuxRoutes, linuxRules)
	m.Want("vi_2", shared, linuxRules[:1])
	m.Want("vi_3", []config.Route{hole}, nil)
	k.installed(t)
	if out := k.try("route", "add", "blackhole", "198.51.100.0/24"); !strings.Contains(out, "File exists") {
		t.Errorf("ip route add blackhole over a unicast route with its key: %q; want EEXIST", out)
	}
	eventually(t, "vi_3's route in conflict", func() bool { return m.Stats().Conflicts == 1 })
	m.Release("vi_1")
	want4 := []string{wantRoutes4[1]}
	want6 := []string{wantRoutes6[0]}
	eventually(t, "vi_2's routes alone", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), want4) && slices.Equal(k.routes(t, "-6", "249"), want6) &&
			slices.Equal(k.rules(t, "249"), wantRules[:1])
	})
	time.Sleep(100 * time.Millisecond)
	if got := k.routes(t, "-4", "249"); !slices.Equal(got, want4) {
		t.Errorf("routes %q after vi_1 left; want vi_2's still", got)
	}
	m.Release("vi_2")
	eventually(t, "vi_3's blackhole in place of the route through the gateway", func() bool {
		return slices.Equal(k.routes(t, "-4", "249"), []string{"blackhole 198.51.100.0/24 proto 249"}) &&
			len(k.routes(t, "-6", "249"))+len(k.rules(t, "249")) == 0
	})
	m.Release("vi_3")
	eventually(t, "nothing left", func() bool {
		return len(k.routes(t, "-4", "249"))+len(k.routes(t, "-6", "249"))+len(k.rules(t, "249")) == 0
	})
}

// A start removes what a crashed run left; Cleanup removes vipd's routes
// and rules and nothing else.
func TestLinuxStaleAndCleanup(t *testing.T) {
	k := newKernel(t)
	crashed := func() {
		k.ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "proto", "249")
		k.ip(t, "route", "add", "blackhole", "203.0.113.0/24", "table", "300", "proto", "249")
		k.ip(t, "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::1", "proto", "249")
		k.ip(t, "rule", "add", "from", "192.0.2.10", "table", "100", "protocol", "249")
		k.ip(t, "-6", "rule", "add", "to", "2001:db8:5::/48", "table", "300", "protocol", "249")
	}
	crashed()
	k.ip(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.1") // proto boot
	k.ip(t, "-6", "route", "add", "2001:db8:6::/48", "via", "2001:db8::1", "proto", "static")

	_, stop := k.start(t)
	eventually(t, "the crashed run's routes and rules gone", func() bool {
		return len(k.routes(t, "-4", "249"))+len(k.routes(t, "-6", "249"))+len(k.rules(t, "249")) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	crashed()
	if err := Cleanup(k.l); err != nil {
		t.Fatal(err)
	}
	if got := append(k.routes(t, "-4", "249"), k.routes(t, "-6", "249")...); len(got) != 0 {
		t.Errorf("after Cleanup: routes %q; want none", got)
	}
	if got := k.rules(t, "249"); len(got) != 0 {
		t.Errorf("after Cleanup: rules %q; want none", got)
	}
	// ip(8) shows no protocol for boot, its own.
	if got := k.routes(t, "-4", ""); !has(got, "203.0.113.0/24 via 192.0.2.1 dev v0 proto ") {
		t.Errorf("after Cleanup: proto boot routes %q; want the one added by hand", got)
	}
	if got := k.routes(t, "-6", "static"); len(got) != 1 {
		t.Errorf("after Cleanup: proto static routes %q; want the one added by hand", got)
	}
}
