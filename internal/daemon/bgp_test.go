package daemon

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/config"
)

// fakeRouter is the BGP router of the tests: the routes each node's
// speaker announces, by node.
type fakeRouter struct {
	mu     sync.Mutex
	routes map[string]map[string][]netip.Prefix // node → owner → prefixes
	closed map[string]bool
}

// paths lists the nodes announcing p.
func (r *fakeRouter) paths(p netip.Prefix) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for node, owners := range r.routes {
		for _, ps := range owners {
			if slices.Contains(ps, p) {
				out = append(out, node)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// speaker returns an option that gives a daemon a fake speaker named
// node.
func (r *fakeRouter) speaker(node string) func(*Daemon) {
	return func(d *Daemon) {
		d.bgp.newA = func(cfg config.BGP, _ *slog.Logger) RouteAnnouncer {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.routes == nil {
				r.routes, r.closed = map[string]map[string][]netip.Prefix{}, map[string]bool{}
			}
			r.routes[node] = map[string][]netip.Prefix{}
			return &fakeSpeaker{r: r, node: node, cfg: cfg}
		}
	}
}

type fakeSpeaker struct {
	r    *fakeRouter
	node string
	cfg  config.BGP
}

func (s *fakeSpeaker) Set(owner string, ps []netip.Prefix) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.closed[s.node] {
		return
	}
	if ps == nil {
		delete(s.r.routes[s.node], owner)
	} else {
		s.r.routes[s.node][owner] = ps
	}
}

func (s *fakeSpeaker) Reconfigure(cfg config.BGP) { s.cfg = cfg }

func (s *fakeSpeaker) Peers() []bgp.Peer {
	return []bgp.Peer{{Address: s.cfg.Peers[0].Address, ASN: s.cfg.Peers[0].ASN, State: "established", Since: time.Now()}}
}

func (s *fakeSpeaker) Announced() []netip.Prefix {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	var out []netip.Prefix
	for _, ps := range s.r.routes[s.node] {
		out = append(out, ps...)
	}
	return out
}

func (s *fakeSpeaker) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.closed[s.node] = true
	delete(s.r.routes, s.node)
}

func bgpConfig(prio uint8) *config.Config {
	ic := instanceConfig(prio)
	ic.BGP = true
	return &config.Config{File: "test.yaml", Instances: []config.Instance{ic}, BGP: &config.BGP{
		ASN: 65001, RouterID: netip.MustParseAddr("192.0.2.11"),
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65000, Port: 179, HoldTime: 9 * time.Second}},
	}}
}

// TestBGPMasterMode: only the Master announces its VIP as a /32, a
// failover moves the route, and a stop withdraws it before the handover.
func TestBGPMasterMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		r := &fakeRouter{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{startConfig(t, hs[0], bgpConfig(150), r.speaker("a")), startConfig(t, hs[1], bgpConfig(100), r.speaker("b"))}
		route := netip.PrefixFrom(vip.Addr(), 32)
		paths := func(want ...string) func() bool {
			return func() bool { return slices.Equal(r.paths(route), want) }
		}
		waitFor(t, 2*time.Second, "only a's path", paths("a"))
		if got := ns[0].value("vipd_bgp_routes_announced"); got != 1 {
			t.Errorf("vipd_bgp_routes_announced %v, want 1", got)
		}
		if got := ns[0].value("vipd_bgp_peer_state", "peer=192.0.2.1"); got != 5 {
			t.Errorf("vipd_bgp_peer_state %v, want 5 (established)", got)
		}
		if st, ok := ns[0].d.BGP(); !ok || len(st.Peers) != 1 || !slices.Equal(st.Announced, []netip.Prefix{route}) {
			t.Errorf("BGP() = %+v, %v", st, ok)
		}

		// A stop withdraws a's route at once; b takes over and announces.
		ns[0].stop()
		if got := r.paths(route); slices.Contains(got, "a") {
			t.Errorf("a's path still there after its stop: %v", got)
		}
		waitFor(t, 2*time.Second, "only b's path", paths("b"))
	})
}

// TestBGPReload: turning bgp off withdraws the route without touching
// VRRP; turning it on again announces it while Master.
func TestBGPReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		r := &fakeRouter{}
		h := newHost(seg, "192.0.2.11")
		n := startConfig(t, h, bgpConfig(150), r.speaker("a"))
		route := netip.PrefixFrom(vip.Addr(), 32)
		waitFor(t, 2*time.Second, "a's path", func() bool { return slices.Equal(r.paths(route), []string{"a"}) })

		off := bgpConfig(150)
		off.Instances[0].BGP = false
		n.d.Reload(off)
		if got := r.paths(route); len(got) != 0 {
			t.Errorf("paths after bgp: false: %v", got)
		}
		if !h.has(vip) {
			t.Error("the VIP went with the route")
		}
		n.d.Reload(bgpConfig(150))
		if got := r.paths(route); !slices.Equal(got, []string{"a"}) {
			t.Errorf("paths after bgp: true again: %v", got)
		}

		// Without a bgp section nothing is exported.
		plain := &config.Config{File: "test.yaml", Instances: []config.Instance{instanceConfig(150)}}
		n.d.Reload(plain)
		if c := n.count("vipd_bgp_peer_state"); c != 0 {
			t.Errorf("%d vipd_bgp_peer_state series without a bgp section", c)
		}
		if _, ok := n.d.BGP(); ok {
			t.Error("BGP() ok without a bgp section")
		}
	})
}

// TestAnycast: every node whose check is up has the VIP on lo and
// announces it; a failing check withdraws it within fall × interval and
// takes it off lo; a stop withdraws and removes it; a start removes a
// stale one first.
func TestAnycast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		r := &fakeRouter{}
		any := netip.MustParsePrefix("198.51.100.10/32")
		cfg := func() *config.Config {
			c := bgpConfig(150)
			c.Instances[0].BGP = false
			c.Checks = []config.Check{{Name: "svc", Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
				Fall: 2, Rise: 1, TCP: &config.TCPCheck{Address: "192.0.2.1:6443"}}}
			c.Anycast = []config.Anycast{{Name: "dns", VIPs: []netip.Prefix{any}, TrackChecks: []string{"svc"}}}
			return c
		}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		// A crashed run left the VIP on host 1's lo; its check is down.
		if err := hs[1].Add(1, any, true); err != nil {
			t.Fatal(err)
		}
		p0, p1 := &fakeProbe{up: true}, &fakeProbe{up: false}
		ns := []*node{startConfig(t, hs[0], cfg(), r.speaker("a"), withProbe(p0)), startConfig(t, hs[1], cfg(), r.speaker("b"), withProbe(p1))}
		paths := func(want ...string) func() bool {
			return func() bool { return slices.Equal(r.paths(any), want) }
		}
		waitFor(t, time.Second, "a's path only", paths("a"))
		if !hs[0].hasOn(any, 1) || hs[1].has(any) {
			t.Errorf("VIP on lo: a %v, b %v; want a only (b's stale one removed)", hs[0].hasOn(any, 1), hs[1].has(any))
		}

		p1.set(true)
		waitFor(t, time.Second, "both paths", paths("a", "b"))

		start := time.Now()
		p0.set(false)
		waitFor(t, time.Second, "a's path withdrawn", paths("b"))
		if took := time.Since(start); took > 2*20*time.Millisecond+50*time.Millisecond {
			t.Errorf("withdrawn %v after the check failed, want within fall × interval + 50ms", took)
		}
		if hs[0].has(any) {
			t.Error("the VIP stayed on a's lo")
		}

		ns[1].stop()
		if got := r.paths(any); len(got) != 0 {
			t.Errorf("paths after b's stop: %v", got)
		}
		if hs[1].has(any) {
			t.Error("the VIP stayed on b's lo after its stop")
		}
	})
}
