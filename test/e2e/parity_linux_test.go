package e2e

// Features that keepalived users rely on and vipd does its own way:
// announce.refresh (garp_master_refresh), VIPs that never become the host's
// source address, and virtual routes and rules (virtual_routes,
// virtual_rules) that follow the Master.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// TestAnnounceRefresh runs a pair with two instances, one with
// announce.refresh 1s and one without, at 100ms adverts and 2 announce
// rounds, and listens at the client. After its takeover rounds the Master
// announces the refreshed VIP once a second, each round a second after the
// last (never at the advert interval), counting each round in
// vipd_announcements_sent_total; the other VIP is announced only at the
// takeover; the Backup announces nothing. A reload to refresh 0s ends the
// refresh.
func TestAnnounceRefresh(t *testing.T) {
	testenv.Privileged(t)
	for _, c := range []struct {
		name       string
		vip, quiet netip.Prefix
		kind       string
	}{
		{"ipv4", lab.VIP, netip.MustParsePrefix("192.0.2.60/24"), lab.KindGARP},
		{"ipv6", lab.VIP6, netip.MustParsePrefix("2001:db8::60/64"), lab.KindNA},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Mostly waiting for rounds a second apart: the families
			// share the time.
			t.Parallel()
			testAnnounceRefresh(t, c.vip, c.quiet, c.kind)
		})
	}
}

func testAnnounceRefresh(t *testing.T, vip, quietVIP netip.Prefix, kind string) {
	const (
		refresh = time.Second
		count   = 2
		// window is how long the refresh is watched.
		window = 5 * time.Second
	)
	r := newRig(t, 2, vip)
	r.metrics = true
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	ksLogOnFailure(t, r.l)
	instances := func(priority int, refresh time.Duration) []lab.Instance {
		api := r.inst(priority)
		api.AnnounceCount, api.AnnounceRefresh = count, refresh
		quiet := r.inst(priority)
		quiet.Name, quiet.VRID, quiet.VIPs, quiet.AnnounceCount = "quiet", vrid+1, []netip.Prefix{quietVIP}, count
		return []lab.Instance{api, quiet}
	}
	// From before the first takeover: every announcement is heard.
	capture := announcements(t, r.l)
	r.startAndAnswer(n1, instances(150, refresh)...)
	r.waitHolders("n1 holds the VIP", lab.Only(n1))
	r.waitHoldersOf(quietVIP, "n1 holds the quiet VIP", lab.Only(n1))
	r.startAndAnswer(n2, instances(100, refresh)...)
	r.waitStates(n2, "backup", "api", "quiet")

	apiRounds := func() []time.Time { return announceRounds(capture.Seen(), n1.MAC(), vip.Addr()) }
	// The takeover's rounds, then the first refresh.
	svcWaitFor(t, "n1 refreshes the VIP's announcement", patience, func() (bool, string) {
		rs := apiRounds()
		return len(rs) > count, fmt.Sprintf("%d rounds from n1, gaps %s", len(rs), gaps(rs))
	})
	first := apiRounds()[count]
	waitUntil(first.Add(300 * time.Millisecond))
	c0 := r.announceCounter(n1, "api", kind)
	waitUntil(c0.end.Add(window))
	c1 := r.announceCounter(n1, "api", kind)

	rs := apiRounds()
	t.Logf("n1's rounds for %s: %d, gaps %s", vip.Addr(), len(rs), gaps(rs))
	// The refresh counts from the last announcement: the first one a
	// second after the takeover's last round, each next a second after it.
	// 100ms less for the capture's own timing.
	for i := count; i < len(rs); i++ {
		if d := rs[i].Sub(rs[i-1]); d < refresh-100*time.Millisecond {
			t.Errorf("round %d came %v after round %d; want a refresh every %v after the last announcement (gaps %s)", i+1, d.Round(time.Millisecond), i, refresh, gaps(rs))
		}
	}
	if got := countIn(rs, c0.end, c1.start); got < 4 || got > 6 {
		t.Errorf("%d rounds for %s from n1 in %v, want 4 to 6 (refresh %v; gaps %s)", got, vip.Addr(), c1.start.Sub(c0.end).Round(time.Millisecond), refresh, gaps(rs))
	}
	// One per VIP per round. A round while a scrape was under way may be
	// counted in either.
	lo, hi := countIn(rs, c0.end, c1.start), countIn(rs, c0.start, c1.end)
	if d := int(c1.v - c0.v); d < lo || d > hi {
		t.Errorf("vipd_announcements_sent_total{instance=api,kind=%s} rose by %d in the window, but the client heard %d rounds (%d counting those during the scrapes)", kind, d, lo, hi)
	}

	// A reload to refresh 0s ends it.
	r.reloadVipd(n1, instances(150, 0)...)
	reloaded := time.Now()
	c2 := r.announceCounter(n1, "api", kind)
	waitUntil(reloaded.Add(2*refresh + 500*time.Millisecond))
	c3 := r.announceCounter(n1, "api", kind)
	// A frame that arrived just before the reload's answer may be stamped
	// a moment after it; a refresh still running would send two rounds
	// in the time watched, at least one after this margin.
	if late := countIn(apiRounds(), reloaded.Add(200*time.Millisecond), time.Now()); late != 0 {
		t.Errorf("%d rounds for %s from n1 after a reload to refresh 0s (gaps %s)", late, vip.Addr(), gaps(apiRounds()))
	}
	if c3.v != c2.v {
		t.Errorf("vipd_announcements_sent_total{instance=api,kind=%s} rose from %v to %v after a reload to refresh 0s", kind, c2.v, c3.v)
	}
	if st := svcStatus(t, svcSocket(r.l, n1), "api"); st.State != "master" {
		t.Errorf("n1 after the reload: %+v, want still master", st)
	}

	seen := capture.Seen()
	quiet := announceRounds(seen, n1.MAC(), quietVIP.Addr())
	if len(quiet) != count {
		t.Errorf("n1 announced %s (no refresh) in %d rounds, want the takeover's %d only (gaps %s)", quietVIP.Addr(), len(quiet), count, gaps(quiet))
	}
	if v := r.announceCounter(n1, "quiet", kind).v; v != count {
		t.Errorf("vipd_announcements_sent_total{instance=quiet,kind=%s} = %v, want %d", kind, v, count)
	}
	for _, a := range seen {
		if a.From.String() == n2.MAC().String() {
			t.Errorf("the Backup n2 announced: %+v", a)
		}
		if a.Kind != kind {
			t.Errorf("a %s announcement in an %s test: %+v", a.Kind, kind, a)
		}
	}
}

// waitUntil sleeps until t: for tests that watch for a while what happens
// (or does not) at its own pace.
func waitUntil(t time.Time) { time.Sleep(time.Until(t)) }

// The VIPs of TestVIPNeverSource: an IPv4 one written as /32 inside the
// lab's 192.0.2.0/24, an IPv4 one outside every subnet of the nodes, and
// an IPv6 one.
var (
	vipInSubnet = netip.MustParsePrefix("192.0.2.50/32")
	vipOutside  = netip.MustParsePrefix("203.0.113.50/32")
	vipSource6  = lab.VIP6
)

// TestVIPNeverSource checks that VIPs never become the host's source
// address (vips_as_source false, the default): the /32 inside eth0's
// subnet is added as a secondary of that subnet (192.0.2.50/24), the one
// outside every subnet stays /32, the IPv6 one is deprecated (preferred
// lifetime 0, valid forever), and the Master's own traffic to an outside
// destination leaves from its own address. The VIPs answer the client, fail
// over (a lowered priority reload), and are removed by address, whatever
// their prefix length, from the old Master and from a node stopped
// gracefully. With vips_as_source true they are added as written.
func TestVIPNeverSource(t *testing.T) {
	r := newRig(t, 2, vipSource6)
	r.metrics = true
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	ksLogOnFailure(t, r.l)
	vips := []netip.Prefix{vipInSubnet, vipOutside, vipSource6}
	instances := func(priority int, asSource bool) []lab.Instance {
		api := r.inst(priority)
		api.VIPs, api.VIPsAsSource = []netip.Prefix{vipInSubnet, vipOutside}, asSource
		api6 := r.inst(priority)
		api6.Name, api6.VRID, api6.VIPs, api6.VIPsAsSource = "api6", vrid+1, []netip.Prefix{vipSource6}, asSource
		return []lab.Instance{api, api6}
	}
	// A default route each way, so that a destination outside the lab
	// has a source to pick.
	for _, n := range r.l.Nodes {
		for _, args := range [][]string{{"route", "add", "default", "via", "192.0.2.1"}, {"-6", "route", "add", "default", "via", "2001:db8::1"}} {
			if _, err := n.IP(args...); err != nil {
				t.Fatalf("harness: %v", err)
			}
		}
	}
	hidden := []string{"192.0.2.50/24 secondary", "203.0.113.50/32", "2001:db8::50/64 preferred 0s"}
	// holds waits until n has the VIPs in the shapes want, in vips' order.
	holds := func(n *lab.Node, what string, want []string) {
		t.Helper()
		for _, v := range vips {
			r.waitHoldersOf(v, fmt.Sprintf("%s holds %s (%s)", n.Name, v.Addr(), what), lab.Only(n))
		}
		svcWaitFor(t, fmt.Sprintf("%s has the VIPs as %q (%s)", n.Name, want, what), repairWithin, func() (bool, string) {
			got := fmt.Sprint(addrsOf(eth0Addrs(t, n), vips...))
			return got == fmt.Sprint(want), got
		})
	}
	// clean checks that n has none of the VIPs left, by address.
	clean := func(n *lab.Node, what string) {
		t.Helper()
		if left := addrsOf(eth0Addrs(t, n), vips...); len(left) != 0 {
			t.Errorf("%s: %s still has %v", what, n.Name, left)
		}
	}
	// cleanSoon waits for clean: a Backup removes its VIPs once it has
	// heard the new Master.
	cleanSoon := func(n *lab.Node, what string) {
		t.Helper()
		ksWithin(t, time.Now().Add(repairWithin), fmt.Sprintf("%s: %s has none of the VIPs", what, n.Name), func() (bool, string) {
			left := addrsOf(eth0Addrs(t, n), vips...)
			return len(left) == 0, fmt.Sprint(left)
		})
	}
	// ownSource checks that the Master's traffic leaves from its own
	// address, not a VIP.
	ownSource := func(n *lab.Node) {
		t.Helper()
		for _, c := range []struct {
			family, dst string
			want        netip.Prefix
		}{{"-4", "198.51.100.7", n.Addr}, {"-6", "2001:db8:ffff::7", n.Addr6}} {
			out, err := n.IP("-j", c.family, "route", "get", c.dst)
			if err != nil {
				t.Fatalf("harness: %v", err)
			}
			var rs []struct {
				Prefsrc string `json:"prefsrc"`
			}
			if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
				t.Fatalf("harness: ip -j route get %s on %s: %v: %s", c.dst, n.Name, err, out)
			}
			if rs[0].Prefsrc != c.want.Addr().String() {
				t.Errorf("ip route get %s on the Master %s: source %s, want its own %s (addresses %v)", c.dst, n.Name, rs[0].Prefsrc, c.want.Addr(), eth0Addrs(t, n))
			}
		}
	}
	// The client pings a VIP of each family throughout; answers waits
	// until both reply.
	probes := []*lab.Prober{}
	for _, v := range []netip.Prefix{vipInSubnet, vipSource6} {
		p, err := r.l.Probe(t.Context(), v.Addr(), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		probes = append(probes, p)
	}
	answers := func(what string) {
		t.Helper()
		for _, p := range probes {
			r.waitReply(p)
		}
		t.Logf("%s: the client reaches %s and %s", what, vipInSubnet.Addr(), vipSource6.Addr())
	}

	r.startAndAnswer(n1, instances(150, false)...)
	holds(n1, "the first Master", hidden)
	r.startAndAnswer(n2, instances(100, false)...)
	r.waitStates(n2, "backup", "api", "api6")
	clean(n2, "a Backup")
	ownSource(n1)
	answers("n1 Master")

	// A failover: n1 steps down to priority 50 and n2 preempts.
	r.reloadVipd(n1, instances(50, false)...)
	holds(n2, "after the failover", hidden)
	cleanSoon(n1, "after the failover")
	ownSource(n2)
	answers("n2 Master")

	// A graceful stop of the Master: it removes its VIPs before it exits.
	if _, err := n2.Stop(); err != nil {
		t.Fatal(err)
	}
	clean(n2, "after a graceful stop")
	holds(n1, "after n2's graceful stop", hidden)
	answers("n1 Master again")
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	clean(n1, "after a graceful stop")

	// vips_as_source: true adds them exactly as written.
	r.startAndAnswer(n1, instances(150, true)...)
	holds(n1, "vips_as_source true", []string{"192.0.2.50/32", "203.0.113.50/32", "2001:db8::50/64"})
	answers("n1 Master with vips_as_source")
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	clean(n1, "after a graceful stop with vips_as_source")
}

// The next hops of TestVirtualRoutes: one on the lab's second segment
// (eth1, 198.51.100.0/24), whose link can flap without touching VRRP, and
// gateways on eth0.
var (
	nextHopEth1 = netip.MustParseAddr("198.51.100.1")
	gatewayEth0 = netip.MustParseAddr("192.0.2.1")
	gateway6    = netip.MustParseAddr("2001:db8::1")
)

// routesRig is a pair with IPv6 and a second segment for the next hop that
// flaps.
func routesRig(t *testing.T) *rig {
	t.Helper()
	return newParityRig(t, lab.VIP, lab.Config{Nodes: 2, IPv6: true, Segments: 2})
}

// routedInstances are instance api (the lab's VIP) with a route over eth1,
// a route with the VIP as its source, a route in table 100 and a rule
// sending the VIP's traffic there, and api6 (the lab's IPv6 VIP) with an
// IPv6 route.
func routedInstances(r *rig, priority int) []lab.Instance {
	api := r.inst(priority)
	api.Routes = []lab.Route{
		{To: netip.MustParsePrefix("203.0.113.0/25"), Via: nextHopEth1},
		{To: netip.MustParsePrefix("203.0.113.128/25"), Dev: "eth0", Src: lab.VIP.Addr()},
		{To: netip.MustParsePrefix("203.0.113.0/24"), Via: gatewayEth0, Table: 100},
	}
	api.Rules = []lab.Rule{{From: netip.PrefixFrom(lab.VIP.Addr(), 32), Table: 100}}
	api6 := r.inst(priority)
	api6.Name, api6.VRID, api6.VIPs = "api6", vrid+1, []netip.Prefix{lab.VIP6}
	api6.Routes = []lab.Route{{To: netip.MustParsePrefix("2001:db8:ffff::/48"), Via: gateway6}}
	return []lab.Instance{api, api6}
}

// routeOverEth1 is the route of routedInstances whose next hop is on eth1,
// as routes prints it.
const routeOverEth1 = "203.0.113.0/25 via 198.51.100.1 dev eth1 table 254 metric 0 src -"

// routedState is routedInstances' routes and rules as the kernel of their
// Master holds them, with vipd's protocol.
var routedState = kernelState{
	Routes4: []string{
		"203.0.113.0/24 via 192.0.2.1 dev eth0 table 100 metric 0 src -",
		routeOverEth1,
		"203.0.113.128/25 via - dev eth0 table 254 metric 0 src 192.0.2.50",
	},
	Routes6: []string{"2001:db8:ffff::/48 via 2001:db8::1 dev eth0 table 254 metric 1024 src -"},
	Rules4:  []string{"from 192.0.2.50/32 to all table 100"},
}

// Deadlines of the route tests: routes follow a transition at once (the
// src route once the VIP is on the host); a route the kernel dropped is
// noticed at the next link or address change, or retried with backoff.
const (
	routesWithinTransition = 3 * time.Second
	routesWithinFlap       = 5 * time.Second
)

// startRoutedPair starts n1 (priority 150) and n2 (100) with
// routedInstances and waits until n1 is Master with the routes.
func startRoutedPair(t *testing.T, r *rig) {
	t.Helper()
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	r.startAndAnswer(n1, routedInstances(r, 150)...)
	r.waitHolders("n1 holds the VIP", lab.Only(n1))
	r.waitHoldersOf(lab.VIP6, "n1 holds the IPv6 VIP", lab.Only(n1))
	r.startAndAnswer(n2, routedInstances(r, 100)...)
	r.waitStates(n2, "backup", "api", "api6")
	if !routesWithin(t, n1, "n1 Master", routedState, routesWithinTransition) {
		t.FailNow()
	}
}

// TestVirtualRoutes checks an instance's routes and rules: in the kernel
// with vipd's protocol only while the instance is Master, removed when it
// leaves Master or stops; put back after a next-hop flap made the kernel
// drop them; a route two instances share stays while either is Master; and
// what a crashed run left is removed at the next start, while routes and
// rules added by hand are never touched.
func TestVirtualRoutes(t *testing.T) {
	testenv.Privileged(t)
	t.Run("follow-master", testRoutesFollowMaster)
	t.Run("next-hop-flap", testRoutesNextHopFlap)
	t.Run("shared", testRoutesShared)
	t.Run("crash-leftovers", testRoutesCrashLeftovers)
}

// testRoutesFollowMaster: present on the Master only, IPv4 and IPv6; the
// rule takes the VIP's traffic to table 100; they move with a failover
// (a lowered priority reload) and go with a graceful stop.
func testRoutesFollowMaster(t *testing.T) {
	r := routesRig(t)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	ksLogOnFailure(t, r.l)
	startRoutedPair(t, r)
	if s := vipdState(t, n2); !s.empty() {
		t.Errorf("the Backup n2 has vipd's routes or rules: %v", s)
	}
	// The rule sends what leaves from the VIP to table 100; the rest takes
	// the main table.
	if got, want := routeGet(t, n1, "203.0.113.7", "from", lab.VIP.Addr().String()), "192.0.2.1 dev eth0"; got != want {
		t.Errorf("n1: ip route get 203.0.113.7 from %s: via %s, want via %s (table 100, by the rule)", lab.VIP.Addr(), got, want)
	}
	if got, want := routeGet(t, n1, "203.0.113.7"), "198.51.100.1 dev eth1"; got != want {
		t.Errorf("n1: ip route get 203.0.113.7: via %s, want via %s (the main table)", got, want)
	}

	r.reloadVipd(n1, routedInstances(r, 50)...)
	r.waitHolders("n2 holds the VIP after the failover", lab.Only(n2))
	r.waitHoldersOf(lab.VIP6, "n2 holds the IPv6 VIP after the failover", lab.Only(n2))
	routesWithin(t, n2, "n2 Master after the failover", routedState, routesWithinTransition)
	routesWithin(t, n1, "n1 Backup after the failover", kernelState{}, routesWithinTransition)

	if _, err := n2.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := vipdState(t, n2); !s.empty() {
		t.Errorf("n2 left routes or rules behind after a graceful stop: %v", s)
	}
	r.waitHolders("n1 holds the VIP after n2's stop", lab.Only(n1))
	routesWithin(t, n1, "n1 Master again", routedState, routesWithinTransition)
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := vipdState(t, n1); !s.empty() {
		t.Errorf("n1 left routes or rules behind after a graceful stop: %v", s)
	}
}

// testRoutesNextHopFlap: the link to a route's next hop goes down, the
// kernel drops the route without telling anyone, the link comes back: the
// Master must put the route back, without a state change.
func testRoutesNextHopFlap(t *testing.T) {
	r := routesRig(t)
	n1 := r.l.Nodes[0]
	ksLogOnFailure(t, r.l)
	startRoutedPair(t, r)
	flapped := time.Now()
	if _, err := n1.IP("link", "set", "eth1", "down"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	svcWaitFor(t, "the kernel drops n1's route over eth1", repairWithin, func() (bool, string) {
		got := routes(t, n1, "-4", isVipd)
		return !slices.Contains(got, routeOverEth1), fmt.Sprintf("vipd's IPv4 routes on n1: %q", got)
	})
	if _, err := n1.IP("link", "set", "eth1", "up"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	up := time.Now()
	if routesWithin(t, n1, "after eth1 came back up", routedState, routesWithinFlap) {
		t.Logf("n1 put the route over eth1 back %v after the link came up", time.Since(up).Round(time.Millisecond))
	}
	if cs := stateChangesTo(t, n1, "", flapped); len(cs) != 0 {
		t.Errorf("n1 changed state during the flap of eth1: %+v", cs)
	}
}

// testRoutesShared: two instances on a node list the same route; when one
// goes Backup (a lowered priority reload) the route stays, never missing
// for a moment, as long as the other is Master; when both are Backup it
// goes.
func testRoutesShared(t *testing.T) {
	r := routesRig(t)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	ksLogOnFailure(t, r.l)
	vipB := netip.MustParsePrefix("192.0.2.60/24")
	shared := lab.Route{To: netip.MustParsePrefix("203.0.113.0/24"), Via: gatewayEth0}
	instances := func(a, b int) []lab.Instance {
		ia := r.inst(a)
		ia.Name, ia.Routes = "a", []lab.Route{shared}
		ib := r.inst(b)
		ib.Name, ib.VRID, ib.VIPs, ib.Routes = "b", vrid+1, []netip.Prefix{vipB}, []lab.Route{shared}
		return []lab.Instance{ia, ib}
	}
	want := kernelState{Routes4: []string{"203.0.113.0/24 via 192.0.2.1 dev eth0 table 254 metric 0 src -"}}
	r.startAndAnswer(n1, instances(150, 150)...)
	r.waitStates(n1, "master", "a", "b")
	r.startAndAnswer(n2, instances(100, 100)...)
	r.waitStates(n2, "backup", "a", "b")
	if !routesWithin(t, n1, "n1 Master of a and b", want, routesWithinTransition) {
		t.FailNow()
	}

	// Watch n1's route from before b steps down until a second after.
	stop := make(chan struct{})
	type sample struct {
		missing, total int
		err            error
	}
	watched := make(chan sample, 1)
	go func() {
		var s sample
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			got, err := routesOf(n1, "-4", isVipd)
			if err != nil {
				s.err = err
				break
			}
			s.total++
			if !slices.Equal(got, want.Routes4) {
				s.missing++
			}
			select {
			case <-stop:
				watched <- s
				return
			case <-tick.C:
			}
		}
		watched <- s
	}()
	r.reloadVipd(n1, instances(150, 50)...)
	r.waitHoldersOf(vipB, "n2 holds b's VIP", lab.Only(n2))
	r.waitStates(n1, "backup", "b")
	routesWithin(t, n2, "n2 Master of b", want, routesWithinTransition)
	waitUntil(time.Now().Add(time.Second))
	close(stop)
	s := <-watched
	if s.err != nil {
		t.Fatalf("harness: %v", s.err)
	}
	if s.missing > 0 {
		t.Errorf("n1's shared route was not as wanted in %d of %d samples after b went Backup, while a was still Master", s.missing, s.total)
	}
	if st := svcStatus(t, svcSocket(r.l, n1), "a"); st.State != "master" {
		t.Errorf("n1's a: %+v, want still master", st)
	}
	if got := vipdState(t, n1); !got.equal(want) {
		t.Errorf("n1 Master of a, Backup of b: vipd's routes %v, want %v", got, want)
	}

	r.reloadVipd(n1, instances(50, 50)...)
	r.waitHolders("n2 holds a's VIP", lab.Only(n2))
	r.waitStates(n1, "backup", "a")
	routesWithin(t, n1, "n1 Backup of a and b", kernelState{}, routesWithinTransition)
	if got := vipdState(t, n2); !got.equal(want) {
		t.Errorf("n2 Master of a and b: vipd's routes %v, want %v", got, want)
	}
}

// testRoutesCrashLeftovers: a SIGKILLed Master leaves its routes and rules
// in the kernel; vipd started again on that node, now a Backup, removes
// them, and leaves alone the routes and rules added by hand without vipd's
// protocol, in the same table among them.
func testRoutesCrashLeftovers(t *testing.T) {
	r := routesRig(t)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	ksLogOnFailure(t, r.l)
	startRoutedPair(t, r)
	for _, args := range [][]string{
		{"route", "add", "203.0.113.192/26", "via", "192.0.2.1", "table", "100", "proto", "static"},
		{"route", "add", "198.51.100.128/25", "via", "192.0.2.1"},
		{"-6", "route", "add", "2001:db8:eeee::/48", "via", "2001:db8::1", "proto", "static"},
		{"rule", "add", "from", "192.0.2.51/32", "table", "100", "priority", "1000"},
	} {
		if _, err := n1.IP(args...); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	others := othersState(t, n1)
	t.Logf("on n1 besides vipd's and the kernel's own: %v", others)
	if len(others.Routes4) != 2 || len(others.Routes6) != 1 || !slices.Contains(others.Rules4, "from 192.0.2.51/32 to all table 100") {
		t.Fatalf("harness: the routes and rule added by hand on n1 are not all there: %v", others)
	}

	if err := n1.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := vipdState(t, n1); !got.equal(routedState) {
		t.Fatalf("harness: after SIGKILL n1 has vipd's routes %v, want what it had as Master, %v", got, routedState)
	}
	r.waitStates(n2, "master", "api", "api6")
	routesWithin(t, n2, "n2 Master after n1's crash", routedState, routesWithinTransition)

	r.startAndAnswer(n1, routedInstances(r, 50)...)
	r.waitStates(n1, "backup", "api", "api6")
	if routesWithin(t, n1, "n1 restarted as a Backup", kernelState{}, routesWithinTransition) {
		t.Logf("n1's restarted vipd removed what the crashed one left")
	}
	// Long enough for a start's cleanup and a pass or two of vipd's
	// checks to have touched what they would.
	waitUntil(time.Now().Add(time.Second))
	if got := othersState(t, n1); !got.equal(others) {
		t.Errorf("the routes and rules added by hand on n1 changed: now %v, were %v", got, others)
	}
	if got := vipdState(t, n1); !got.empty() {
		t.Errorf("n1, a Backup, has vipd's routes or rules: %v", got)
	}
	if got := vipdState(t, n2); !got.equal(routedState) {
		t.Errorf("n2, the Master, has vipd's routes %v, want %v", got, routedState)
	}
}
