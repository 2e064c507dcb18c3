package vroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vipd/vipd/internal/config"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr

	gw       = config.Route{To: pfx("198.51.100.0/24"), Via: addr("192.0.2.1")}
	hole     = config.Route{To: pfx("203.0.113.0/24"), Type: config.RouteBlackhole}
	table100 = config.Route{To: pfx("0.0.0.0/0"), Via: addr("192.0.2.1"), Table: 100}
	fromVIP  = config.Route{To: pfx("198.51.100.128/25"), Dev: "eth0", Src: addr("192.0.2.10"), Metric: 10}
	gw6      = config.Route{To: pfx("2001:db8:1::/48"), Via: addr("2001:db8::1")}
	rule100  = config.Rule{From: pfx("192.0.2.10/32"), Table: 100, Priority: 100}
	vip      = pfx("192.0.2.10/32")
)

var netipOpt = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

// logs keeps a test's log records.
type logs struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}

// count is the number of records containing s.
func (l *logs) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

func (l *logs) dump() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		l.t.Log(m)
	}
}

// host is a fake kernel with eth0 up, 192.0.2.2/24 and 2001:db8::2/64.
func host() *Fake {
	f := NewFake()
	f.SetLink("eth0", true)
	f.AddAddr("eth0", pfx("192.0.2.2/24"))
	f.AddAddr("eth0", pfx("2001:db8::2/64"))
	return f
}

// running is a manager running over a fake kernel in a synctest bubble.
type running struct {
	*Manager
	f    *Fake
	logs *logs
	stop func() error
}

func start(t *testing.T, f *Fake) *running {
	t.Helper()
	l := &logs{t: t}
	m := New(f, slog.New(l))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	synctest.Wait()
	r := &running{Manager: m, f: f, logs: l}
	var once sync.Once
	var err error
	r.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			l.dump()
		}
	})
	return r
}

// want calls Want and lets the manager apply it.
func (r *running) want(owner string, routes []config.Route, rules []config.Rule) {
	r.Want(owner, routes, rules)
	synctest.Wait()
}

// ours is the fake's vipd routes, as strings.
func (r *running) ours(t *testing.T) []string {
	t.Helper()
	rs, err := r.f.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range rs {
		out = append(out, x.String())
	}
	return out
}

func (r *running) ourRules(t *testing.T) []string {
	t.Helper()
	rs, err := r.f.Rules()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range rs {
		out = append(out, x.String())
	}
	slices.Sort(out)
	return out
}

// mutations is the fake's adds, replaces and deletes since the last call.
func mutations(f *Fake) []string {
	return slices.DeleteFunc(f.Ops(), func(op string) bool {
		return strings.HasPrefix(op, "list ") || op == "watch"
	})
}

func TestRouteOf(t *testing.T) {
	tests := []struct {
		in   config.Route
		want Route
	}{
		{gw, Route{To: pfx("198.51.100.0/24"), Table: 254, Type: "unicast", Via: addr("192.0.2.1")}},
		{hole, Route{To: pfx("203.0.113.0/24"), Table: 254, Type: "blackhole"}},
		{table100, Route{To: pfx("0.0.0.0/0"), Table: 100, Type: "unicast", Via: addr("192.0.2.1")}},
		// IPv6 has no metric 0: the kernel makes it 1024, and so must the key.
		{gw6, Route{To: pfx("2001:db8:1::/48"), Table: 254, Metric: 1024, Type: "unicast", Via: addr("2001:db8::1")}},
		{config.Route{To: pfx("2001:db8:1::/48"), Dev: "eth0", Metric: 5, Type: "unicast"},
			Route{To: pfx("2001:db8:1::/48"), Table: 254, Metric: 5, Type: "unicast", Dev: "eth0"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, RouteOf(tt.in), netipOpt); diff != "" {
			t.Errorf("RouteOf(%+v) (-want +got):\n%s", tt.in, diff)
		}
	}
	// The main table named or not is one key.
	if RouteOf(gw).key() != RouteOf(config.Route{To: gw.To, Via: addr("192.0.2.3"), Table: 254}).key() {
		t.Error("table 0 and table 254 have different keys")
	}
}

func TestRuleOf(t *testing.T) {
	tests := []struct {
		in   config.Rule
		want Rule
	}{
		{rule100, Rule{From: pfx("192.0.2.10/32"), To: pfx("0.0.0.0/0"), Table: 100, Priority: 100}},
		{config.Rule{To: pfx("2001:db8::/32"), Table: 7}, Rule{From: pfx("::/0"), To: pfx("2001:db8::/32"), Table: 7}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, RuleOf(tt.in), netipOpt); diff != "" {
			t.Errorf("RuleOf(%+v) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// Two owners of one route keep it while either wants it (keepalived #1078
// removed it when one of them left Master).
func TestRefcount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.f.Ops()
		r.want("vi_1", []config.Route{gw, hole}, []config.Rule{rule100})
		r.want("vi_2", []config.Route{gw}, []config.Rule{rule100})
		want := []string{
			"add route 198.51.100.0/24 via 192.0.2.1 metric 0",
			"add route blackhole 203.0.113.0/24 metric 0",
			"add rule 100: from 192.0.2.10/32 lookup 100",
		}
		if diff := cmp.Diff(want, mutations(r.f)); diff != "" {
			t.Fatalf("ops (-want +got):\n%s", diff)
		}
		r.want("vi_1", nil, nil)
		if diff := cmp.Diff([]string{"delete route blackhole 203.0.113.0/24 metric 0"}, mutations(r.f)); diff != "" {
			t.Errorf("after vi_1 released: ops (-want +got):\n%s", diff)
		}
		if got := r.ours(t); !slices.Equal(got, []string{"198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0"}) {
			t.Errorf("after vi_1 released: routes %q; want vi_2's", got)
		}
		if got := r.ourRules(t); len(got) != 1 {
			t.Errorf("after vi_1 released: rules %q; want vi_2's", got)
		}
		if s := r.Stats(); s.Routes != 1 || s.Rules != 1 {
			t.Errorf("Stats = %+v; want 1 route and 1 rule", s)
		}
		r.Release("vi_2")
		synctest.Wait()
		want = []string{
			"delete rule 100: from 192.0.2.10/32 lookup 100",
			"delete route 198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0",
		}
		if diff := cmp.Diff(want, mutations(r.f)); diff != "" {
			t.Errorf("after both released: ops (-want +got):\n%s", diff)
		}
		if s := r.Stats(); s.Routes != 0 || s.Rules != 0 {
			t.Errorf("Stats = %+v; want nothing installed", s)
		}
	})
}

// Two owners want one key with different gateways: the first one's wins,
// the conflict is logged once, and the second's takes over when the first
// lets go.
func TestConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		other := gw
		other.Via = addr("192.0.2.3")
		r.want("vi_1", []config.Route{gw}, nil)
		r.want("vi_2", []config.Route{other}, nil)
		r.want("vi_2", []config.Route{other}, nil) // again: still one log line
		time.Sleep(time.Minute)                    // and reconciles
		if got := r.ours(t); !slices.Equal(got, []string{"198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0"}) {
			t.Errorf("routes %q; want vi_1's", got)
		}
		if n := r.logs.count("the one wanted first is kept"); n != 1 {
			t.Errorf("conflict logged %d times; want once", n)
		}
		if s := r.Stats(); s.Conflicts != 1 {
			t.Errorf("Stats.Conflicts = %d; want 1", s.Conflicts)
		}
		// vi_1 wanting more keeps its place.
		r.want("vi_1", []config.Route{gw, hole}, nil)
		if got := r.ours(t); !slices.Contains(got, "198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0") {
			t.Errorf("routes %q; want vi_1's still", got)
		}
		r.f.Ops()
		r.Release("vi_1")
		synctest.Wait()
		want := []string{
			"delete route blackhole 203.0.113.0/24 metric 0",
			"replace route 198.51.100.0/24 via 192.0.2.3 metric 0",
		}
		if diff := cmp.Diff(want, mutations(r.f)); diff != "" {
			t.Errorf("after vi_1 released: ops (-want +got):\n%s", diff)
		}
		if s := r.Stats(); s.Conflicts != 0 || s.Routes != 1 {
			t.Errorf("Stats = %+v; want no conflict, 1 route", s)
		}
	})
}

// One owner listing one key twice keeps the first.
func TestConflictWithinOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		other := gw
		other.Via = addr("192.0.2.3")
		r.want("vi_1", []config.Route{gw, other}, nil)
		if got := r.ours(t); !slices.Equal(got, []string{"198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0"}) {
			t.Errorf("routes %q; want the first", got)
		}
		if n := r.logs.count("the one wanted first is kept"); n != 1 {
			t.Errorf("conflict logged %d times; want once", n)
		}
	})
}

// A start removes what a crashed run left, and nothing of anyone else's.
func TestStaleRemovedAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		for _, c := range []config.Route{gw, hole, gw6} {
			if err := f.AddRoute(RouteOf(c)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.AddRule(RuleOf(rule100)); err != nil {
			t.Fatal(err)
		}
		static := RouteOf(table100)
		f.AddOther(static, protoStatic)
		f.AddOtherRule(RuleOf(config.Rule{To: pfx("203.0.113.0/24"), Table: 5, Priority: 5}), protoStatic)
		f.Ops()
		r := start(t, f)
		want := []string{
			"delete rule 100: from 192.0.2.10/32 lookup 100",
			"delete route 198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0",
			"delete route blackhole 203.0.113.0/24 metric 0",
			"delete route 2001:db8:1::/48 via 2001:db8::1 dev eth0 metric 1024",
		}
		if diff := cmp.Diff(want, mutations(f)); diff != "" {
			t.Errorf("ops at start (-want +got):\n%s", diff)
		}
		if n := r.logs.count("an earlier run left"); n != 4 {
			t.Errorf("%d stale removals logged; want 4", n)
		}
		if all := f.All(); len(all) != 1 || all[static] != protoStatic {
			t.Errorf("routes left: %v; want the static one alone", all)
		}
		if all := f.AllRules(); len(all) != 1 {
			t.Errorf("rules left: %v; want the static one alone", all)
		}
	})
}

// A route a crashed run left that is wanted again when Run starts stays:
// no flap.
func TestStaleWantedIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		if err := f.AddRoute(RouteOf(gw)); err != nil {
			t.Fatal(err)
		}
		f.Ops()
		l := &logs{t: t}
		m := New(f, slog.New(l))
		m.Want("vi_1", []config.Route{gw}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		synctest.Wait()
		if ops := mutations(f); len(ops) != 0 {
			t.Errorf("ops at start: %q; want none", ops)
		}
		if s := m.Stats(); s.Routes != 1 {
			t.Errorf("Stats = %+v; want the route installed", s)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// A route deleted with a notification (IPv6, or `ip route del`) is added
// again at once, and counted.
func TestReaddAfterDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw, gw6}, nil)
		r.f.Ops()
		start := time.Now()
		r.f.Vanish(gw6.To, true)
		synctest.Wait()
		time.Sleep(settle)
		synctest.Wait()
		if ops := mutations(r.f); !slices.Equal(ops, []string{"add route 2001:db8:1::/48 via 2001:db8::1 metric 1024"}) {
			t.Errorf("ops: %q; want the route added again", ops)
		}
		if d := time.Since(start); d > 2*settle {
			t.Errorf("re-added after %v; want within %v", d, 2*settle)
		}
		if s := r.Stats(); s.Repairs != 1 || s.Routes != 2 {
			t.Errorf("Stats = %+v; want 1 repair, 2 routes", s)
		}
		if n := r.logs.count("route vanished from the kernel"); n != 1 {
			t.Errorf("vanishing logged %d times; want once", n)
		}
		if n := r.logs.count("route restored"); n != 1 {
			t.Errorf("restoring logged %d times; want once", n)
		}
	})
}

// IPv4 drops a route silently when its link goes down; it comes back when
// the link does (keepalived #1719).
func TestReaddAfterLinkDownUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw, hole, fromVIPWith(r.f)}, nil)
		if got := r.ours(t); len(got) != 3 {
			t.Fatalf("routes %q; want 3", got)
		}
		r.f.SetLink("eth0", false)
		time.Sleep(10 * time.Second) // retries fail: the link is down
		if got := r.ours(t); len(got) != 1 {
			t.Fatalf("link down: routes %q; want the blackhole alone", got)
		}
		if n := r.logs.count("cannot add route"); n != 2 {
			t.Errorf("failed re-adds logged %d times; want once per route", n)
		}
		if s := r.Stats(); s.Pending != 2 || s.Failures < 4 {
			t.Errorf("link down: Stats = %+v; want 2 pending, several failures", s)
		}
		r.f.SetLink("eth0", true)
		synctest.Wait()
		time.Sleep(settle)
		synctest.Wait()
		if got := r.ours(t); len(got) != 3 {
			t.Errorf("link up: routes %q; want all 3 back", got)
		}
		if s := r.Stats(); s.Repairs != 2 || s.Pending != 0 || s.Routes != 3 {
			t.Errorf("link up: Stats = %+v; want 2 repairs, none pending", s)
		}
	})
}

// fromVIPWith is fromVIP, with its source address put on f.
func fromVIPWith(f *Fake) config.Route {
	f.AddAddr("eth0", vip)
	return fromVIP
}

// A route that vanished without any notification is found by the periodic
// pass.
func TestReaddByReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw}, nil)
		r.f.Vanish(gw.To, false)
		time.Sleep(reconcileEvery - time.Second)
		if got := r.ours(t); len(got) != 0 {
			t.Fatalf("routes %q before the periodic pass; want none (nothing said it went)", got)
		}
		time.Sleep(2 * time.Second)
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q after the periodic pass; want it back", got)
		}
		if s := r.Stats(); s.Repairs != 1 {
			t.Errorf("Stats = %+v; want 1 repair", s)
		}
	})
}

// A route whose source is a VIP not yet on the host fails (EINVAL) and is
// retried with backoff, logged once, until the address appears.
func TestRetryUntilAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.f.Ops()
		r.want("vi_1", []config.Route{fromVIP}, []config.Rule{rule100})
		time.Sleep(20 * time.Second)
		var adds []string
		for _, op := range mutations(r.f) {
			if strings.HasPrefix(op, "add route") {
				adds = append(adds, op)
			}
		}
		// At 0, 1, 3, 7 and 15 s.
		if len(adds) != 5 || !strings.HasSuffix(adds[0], syscall.EINVAL.Error()) {
			t.Errorf("adds: %q; want 5 failing with EINVAL", adds)
		}
		if n := r.logs.count("cannot add route"); n != 1 {
			t.Errorf("failure logged %d times; want once", n)
		}
		if n := r.logs.count("source address is not on this host"); n != 1 {
			t.Errorf("the reason logged %d times; want once", n)
		}
		if s := r.Stats(); s.Pending != 1 || s.Failures != 5 || s.Routes != 0 || s.Rules != 1 {
			t.Errorf("Stats = %+v; want 1 pending, 5 failures, the rule in", s)
		}
		// The next retry would be at 31 s; the address event retries at once.
		r.f.AddAddr("eth0", vip)
		synctest.Wait()
		time.Sleep(settle)
		synctest.Wait()
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q after the address came; want the route", got)
		}
		if n := r.logs.count("route added after failing"); n != 1 {
			t.Errorf("success after failures logged %d times; want once", n)
		}
		if s := r.Stats(); s.Pending != 0 || s.Repairs != 0 {
			t.Errorf("Stats = %+v; want none pending, no repair (it was never in)", s)
		}
	})
}

// A VIP source going away takes its route with it (IPv4, silently); the
// route comes back with the address.
func TestSourceAddressGoesAndComes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw, fromVIPWith(r.f)}, nil)
		r.f.DelAddr(vip)
		synctest.Wait()
		time.Sleep(5 * time.Second)
		if got := r.ours(t); len(got) != 1 {
			t.Fatalf("routes %q without the VIP; want the gateway route alone", got)
		}
		if s := r.Stats(); s.Pending != 1 {
			t.Errorf("Stats = %+v; want 1 pending", s)
		}
		r.f.AddAddr("eth0", vip)
		synctest.Wait()
		time.Sleep(settle)
		synctest.Wait()
		if got := r.ours(t); len(got) != 2 {
			t.Errorf("routes %q with the VIP back; want both", got)
		}
		if s := r.Stats(); s.Repairs != 1 || s.Pending != 0 {
			t.Errorf("Stats = %+v; want 1 repair", s)
		}
	})
}

// A route someone else's holds the key of is left alone and retried.
func TestKeyTakenByOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		static := RouteOf(gw)
		static.Via = addr("192.0.2.3")
		f.AddOther(static, protoStatic)
		r := start(t, f)
		r.want("vi_1", []config.Route{gw}, nil)
		time.Sleep(time.Minute)
		if all := f.All(); len(all) != 1 || all[static] != protoStatic {
			t.Errorf("routes %v; want the static one untouched", all)
		}
		if n := r.logs.count("not vipd's"); n != 1 {
			t.Errorf("EEXIST reason logged %d times; want once", n)
		}
		if err := r.stop(); err != nil {
			t.Error(err)
		}
		if all := f.All(); len(all) != 1 {
			t.Errorf("after shutdown: routes %v; want the static one untouched", all)
		}
	})
}

// Rules are added after routes and removed before them.
func TestOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.f.Ops()
		rule2 := config.Rule{To: pfx("203.0.113.0/24"), Table: 100}
		r.want("vi_1", []config.Route{table100, gw}, []config.Rule{rule100, rule2})
		r.want("vi_1", nil, nil)
		want := []string{
			"add route 0.0.0.0/0 via 192.0.2.1 table 100 metric 0",
			"add route 198.51.100.0/24 via 192.0.2.1 metric 0",
			"add rule from all to 203.0.113.0/24 lookup 100",
			"add rule 100: from 192.0.2.10/32 lookup 100",
			"delete rule 32765: from all to 203.0.113.0/24 lookup 100",
			"delete rule 100: from 192.0.2.10/32 lookup 100",
			"delete route 0.0.0.0/0 via 192.0.2.1 dev eth0 table 100 metric 0",
			"delete route 198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0",
		}
		if diff := cmp.Diff(want, mutations(r.f)); diff != "" {
			t.Errorf("ops (-want +got):\n%s", diff)
		}
	})
}

// A rule added with priority 0 gets the kernel's and is matched by it
// afterwards: no churn, and a rule removed by hand comes back at the next
// rule poll.
func TestRulePriorityZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		rule := config.Rule{From: pfx("2001:db8::10/128"), Table: 200}
		r.want("vi_1", nil, []config.Rule{rule})
		time.Sleep(time.Minute)
		got := r.ourRules(t)
		if !slices.Equal(got, []string{"32765: from 2001:db8::10/128 lookup 200"}) {
			t.Fatalf("rules %q; want one at the kernel's priority", got)
		}
		if ops := mutations(r.f); len(ops) != 1 {
			t.Errorf("ops: %q; want one add, no churn", ops)
		}
		r.f.VanishRule(Rule{From: pfx("2001:db8::10/128"), To: pfx("::/0"), Table: 200, Priority: 32765})
		time.Sleep(rulePollEvery + time.Second)
		if got := r.ourRules(t); len(got) != 1 {
			t.Errorf("rules %q a poll after it was removed; want it back", got)
		}
		if s := r.Stats(); s.Repairs != 1 || s.Rules != 1 {
			t.Errorf("Stats = %+v; want 1 repair", s)
		}
	})
}

// Shutdown removes everything vipd added, rules first, and nothing else.
func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		static := RouteOf(config.Route{To: pfx("192.0.2.128/25"), Dev: "eth0"})
		f.AddOther(static, protoStatic)
		r := start(t, f)
		r.want("vi_1", []config.Route{gw, hole, table100, gw6}, []config.Rule{rule100})
		r.want("vi_2", []config.Route{gw}, nil)
		f.Ops()
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		ops := mutations(f)
		if len(ops) != 5 || !strings.HasPrefix(ops[0], "delete rule") {
			t.Errorf("shutdown ops: %q; want the rule, then the 4 routes", ops)
		}
		if all := f.All(); len(all) != 1 || all[static] == 0 {
			t.Errorf("after shutdown: %v; want the static route alone", all)
		}
		if s := r.Stats(); s.Routes != 0 || s.Rules != 0 {
			t.Errorf("Stats = %+v; want nothing installed", s)
		}
	})
}

// Shutdown gives up after shutdownTimeout if the kernel does not answer.
func TestShutdownBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw}, nil)
		hang := make(chan struct{})
		r.f.SetFault(func(op string, _ Route, _ Rule) error {
			if op == "delete route" {
				<-hang
			}
			return nil
		})
		begin := time.Now()
		err := r.stop()
		if err == nil || time.Since(begin) != shutdownTimeout {
			t.Errorf("Run returned %v after %v; want an error after %v", err, time.Since(begin), shutdownTimeout)
		}
		close(hang)
	})
}

// Deleting a route that failed is retried with backoff.
func TestDeleteRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw}, nil)
		var busy atomic.Bool
		busy.Store(true)
		r.f.SetFault(func(op string, _ Route, _ Rule) error {
			if op == "delete route" && busy.Load() {
				return syscall.EBUSY
			}
			return nil
		})
		r.want("vi_1", nil, nil)
		time.Sleep(10 * time.Second)
		if n := r.logs.count("cannot remove route"); n != 1 {
			t.Errorf("failed delete logged %d times; want once", n)
		}
		busy.Store(false)
		time.Sleep(10 * time.Second)
		if got := r.ours(t); len(got) != 0 {
			t.Errorf("routes %q; want it removed at a retry", got)
		}
	})
}

// A subscription that breaks is made again, and what changed meanwhile is
// found.
func TestWatchBroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.want("vi_1", []config.Route{gw}, nil)
		var refuse atomic.Bool
		refuse.Store(true)
		r.f.SetFault(func(op string, _ Route, _ Rule) error {
			if op == "watch" && refuse.Load() {
				return syscall.ENOBUFS
			}
			return nil
		})
		r.f.BreakWatch()
		synctest.Wait()
		r.f.Vanish(gw.To, false)
		time.Sleep(3 * time.Second)
		refuse.Store(false)
		time.Sleep(5 * time.Second)
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q; want the route back once subscribed again", got)
		}
		if n := r.logs.count("following route, link and address changes again"); n != 1 {
			t.Errorf("resubscription logged %d times; want once", n)
		}
	})
}

// Listing failures are retried, and logged once.
func TestListFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		var failing atomic.Bool
		failing.Store(true)
		f.SetFault(func(op string, _ Route, _ Rule) error {
			if op == "list routes" && failing.Load() {
				return syscall.ENOBUFS
			}
			return nil
		})
		r := start(t, f)
		r.want("vi_1", []config.Route{gw}, nil)
		time.Sleep(10 * time.Second)
		if got := f.All(); len(got) != 0 {
			t.Errorf("routes %v; want none while listing fails", got)
		}
		failing.Store(false)
		time.Sleep(10 * time.Second)
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q; want the route once listing works", got)
		}
		if n := r.logs.count("cannot list"); n != 1 {
			t.Errorf("listing failure logged %d times; want once", n)
		}
	})
}

// Want is safe for concurrent use, and the last want of each owner wins.
func TestWantConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				owner := fmt.Sprintf("vi_%d", i)
				for range 50 {
					r.Want(owner, []config.Route{gw, hole}, []config.Rule{rule100})
					r.Release(owner)
				}
				if i%2 == 0 {
					r.Want(owner, []config.Route{gw}, nil)
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q; want the one the even owners kept", got)
		}
		if got := r.ourRules(t); len(got) != 0 {
			t.Errorf("rules %q; want none", got)
		}
	})
}

func TestCleanup(t *testing.T) {
	f := host()
	for _, c := range []config.Route{gw, hole, gw6} {
		if err := f.AddRoute(RouteOf(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.AddRule(RuleOf(rule100)); err != nil {
		t.Fatal(err)
	}
	static := RouteOf(table100)
	f.AddOther(static, protoStatic)
	if err := Cleanup(f); err != nil {
		t.Fatal(err)
	}
	if all := f.All(); len(all) != 1 || all[static] == 0 {
		t.Errorf("after Cleanup: %v; want the static route alone", all)
	}
	if all := f.AllRules(); len(all) != 0 {
		t.Errorf("after Cleanup: rules %v; want none", all)
	}
	f.SetFault(func(op string, _ Route, _ Rule) error {
		if op == "list rules" {
			return syscall.ENOBUFS
		}
		return nil
	})
	if err := Cleanup(f); !errors.Is(err, syscall.ENOBUFS) {
		t.Errorf("Cleanup with failing listing = %v; want ENOBUFS", err)
	}
}

// The conflict is one while the winning route stays the same, whichever
// owner holds it.
func TestConflictLoggedOnceAcrossWinners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		other := gw
		other.Via = addr("192.0.2.3")
		r.want("vi_1", []config.Route{gw}, nil)
		r.want("vi_2", []config.Route{gw}, nil)
		r.want("vi_3", []config.Route{other}, nil)
		r.want("vi_1", nil, nil)
		if got := r.ours(t); !slices.Equal(got, []string{"198.51.100.0/24 via 192.0.2.1 dev eth0 metric 0"}) {
			t.Errorf("routes %q; want vi_2's, which is vi_1's", got)
		}
		if n := r.logs.count("the one wanted first is kept"); n != 1 {
			t.Errorf("conflict logged %d times; want once", n)
		}
	})
}

// protoStatic is RTPROT_STATIC, someone else's routes.
const protoStatic = 4

// With nothing wanted or installed, the manager lists nothing: no rule
// poll every few seconds, no pass per address change (most hosts have no
// instance with routes); a Want wakes it.
func TestIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		r.f.Ops()
		for range 5 {
			r.f.AddAddr("eth0", netip.MustParsePrefix("192.0.2.77/24"))
			time.Sleep(10 * time.Second)
			r.f.DelAddr(netip.MustParsePrefix("192.0.2.77/24"))
			time.Sleep(10 * time.Second)
		}
		synctest.Wait()
		if ops := r.f.Ops(); len(ops) != 0 {
			t.Errorf("an idle manager did %q", ops)
		}
		r.want("vi_1", []config.Route{gw}, nil)
		if diff := cmp.Diff([]string{"add route 198.51.100.0/24 via 192.0.2.1 metric 0"}, mutations(r.f)); diff != "" {
			t.Errorf("after a Want: ops (-want +got):\n%s", diff)
		}
	})
}

// An idle manager follows no notifications: it subscribes when something
// is wanted and ends the subscription once nothing is.
func TestIdleFollowsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, host())
		if n := r.f.Watching(); n != 0 {
			t.Fatalf("%d subscriptions with nothing wanted; want none", n)
		}
		r.want("vi_1", []config.Route{gw}, nil)
		if n := r.f.Watching(); n != 1 {
			t.Fatalf("%d subscriptions with a route wanted; want 1", n)
		}
		// Followed: a route whose removal is notified comes back within
		// the settle time, not at the periodic pass.
		r.f.Vanish(gw.To, true)
		time.Sleep(2 * settle)
		if got := r.ours(t); len(got) != 1 {
			t.Errorf("routes %q; want the vanished route back", got)
		}
		r.want("vi_1", nil, nil)
		time.Sleep(time.Second)
		if n := r.f.Watching(); n != 0 {
			t.Errorf("%d subscriptions once nothing is wanted; want none", n)
		}
		if got := r.ours(t); len(got) != 0 {
			t.Errorf("routes %q once nothing is wanted; want none", got)
		}
	})
}
