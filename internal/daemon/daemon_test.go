package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

var vip = netip.MustParsePrefix("192.0.2.50/24")

func instanceConfig(prio uint8) config.Instance {
	return config.Instance{
		Name: "api", Interface: "eth0", VRID: 51, Priority: prio, Family: "ipv4", Version: 3,
		AdvertInterval: 10 * time.Millisecond, Preempt: true,
		VIPs:     []netip.Prefix{vip},
		Announce: config.Announce{Count: 3, Interval: 10 * time.Millisecond},
	}
}

// node is one daemon on a simulated host.
type node struct {
	h      *host
	reg    *prometheus.Registry
	m      *metrics.Metrics
	d      *Daemon
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, h *host, prio uint8) *node {
	t.Helper()
	return startConfig(t, h, &config.Config{File: "test.yaml", Instances: []config.Instance{instanceConfig(prio)}})
}

// startConfig runs a daemon for cfg on h until the test ends. Tests run
// in a testing/synctest bubble: everything here runs on fake time.
func startConfig(t *testing.T, h *host, cfg *config.Config, opts ...func(*Daemon)) *node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", h.addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test")
	n := &node{h: h, reg: reg, m: m, d: New(cfg, h, m, log), cancel: cancel, done: make(chan struct{})}
	for _, o := range opts {
		o(n.d)
	}
	go func() {
		defer close(n.done)
		if err := n.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(n.stop)
	return n
}

// series lists the series name{labels} that n exports; labels are
// "key=value" pairs that must all match.
func (n *node) series(name string, labels ...string) []*dto.Metric {
	mfs, err := n.reg.Gather()
	if err != nil {
		panic(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue metric
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// value is the sum of the series name{labels}: 0 if there is none.
func (n *node) value(name string, labels ...string) float64 {
	total := 0.0
	for _, m := range n.series(name, labels...) {
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

// count is how many series name{labels} n exports.
func (n *node) count(name string, labels ...string) int { return len(n.series(name, labels...)) }

func (n *node) stop() {
	n.cancel()
	<-n.done
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// waitFor lets fake time pass, a millisecond at a time, until cond holds
// once every goroutine of the bubble is blocked, for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle lets d of fake time pass and every goroutine come to rest.
func settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// holders returns the indexes of the hosts that have the VIP.
func holders(hs ...*host) []int {
	var out []int
	for i, h := range hs {
		if h.has(vip) {
			out = append(out, i)
		}
	}
	return out
}

func only(i int, hs ...*host) func() bool {
	return func() bool { got := holders(hs...); return len(got) == 1 && got[0] == i }
}

func TestElectionAndGracefulHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12"), newHost(seg, "192.0.2.13")}
		// A VIP left behind by a crashed run on a Backup host must go.
		hs[1].vips[vip] = 2 // eth0
		ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100), startNode(t, hs[2], 50)}

		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		if hs[0].announcements() == 0 {
			t.Error("new Master sent no gratuitous ARP")
		}
		// Stable: exactly one holder at every sample.
		for i := 0; i < 100; i++ {
			if got := holders(hs...); len(got) != 1 || got[0] != 0 {
				t.Fatalf("sample %d: holders %v, want [0]", i, got)
			}
			time.Sleep(time.Millisecond)
		}

		// Graceful stop: priority 0, then host 1 takes over after Skew_Time
		// (6 ms) rather than Master_Down_Interval (36 ms).
		ns[0].stop()
		if hs[0].has(vip) {
			t.Fatal("stopped Master kept its VIP")
		}
		waitFor(t, time.Second, "host 1 alone holding the VIP", only(1, hs...))
		waitFor(t, time.Second, "host 1's status to say master", func() bool {
			st := ns[1].d.Status()
			return len(st) == 1 && st[0].State == router.Master && st[0].Master == hs[1].addr
		})
	})
}

func TestDropsAreCountedAndHarmless(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.11")
		n := startNode(t, h, 150)
		waitFor(t, 2*time.Second, "the lone node to become Master", func() bool { return h.has(vip) })

		stranger := netip.MustParseAddr("192.0.2.99")
		good := func(mod func(*vrrp.Packet)) []byte {
			p := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 200, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
			mod(p)
			b, err := p.Marshal(stranger, vrrp.IPv4Group)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		higher := good(func(*vrrp.Packet) {})
		badSum := append([]byte(nil), higher...)
		badSum[6] ^= 0xff
		tests := []struct {
			b      []byte
			ttl    int
			reason drop.Reason
		}{
			{b: higher, ttl: 64, reason: drop.TTL},
			{b: higher[:5], ttl: 255, reason: drop.Truncated},
			{b: append(append([]byte(nil), higher...), 0, 0, 0, 0), ttl: 255, reason: drop.Oversized},
			{b: badSum, ttl: 255, reason: drop.Checksum},
			{b: good(func(p *vrrp.Packet) { p.VRID = 52 }), ttl: 255, reason: drop.UnknownVRID},
			{b: good(func(p *vrrp.Packet) { p.Version = 2; p.Interval = 1 }), ttl: 255, reason: drop.Version},
		}
		for _, tt := range tests {
			dropped := func() float64 {
				return testutil.ToFloat64(n.m.PacketsDropped.WithLabelValues("eth0", tt.reason.String()))
			}
			before := dropped()
			for i := 0; i < 50; i++ {
				seg.inject(tt.b, stranger, vrrp.IPv4Group, tt.ttl)
			}
			waitFor(t, time.Second, "drops counted as "+tt.reason.String(), func() bool { return dropped() >= before+50 })
		}
		if !h.has(vip) || n.d.Status()[0].State != router.Master {
			t.Fatalf("bad packets changed the state: %+v", n.d.Status())
		}
		// The same advertisement, valid, does make it step down.
		seg.inject(higher, stranger, vrrp.IPv4Group, 255)
		waitFor(t, time.Second, "Master to yield to a higher priority", func() bool { return !h.has(vip) })
	})
}

func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100)}
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		transitions := func() float64 {
			return ns[0].value("vipd_transitions_total", "instance=api", "from=master", "to=backup")
		}

		// An unrelated change (a new instance) disturbs nothing: the VIP stays
		// at every sample and no transition happens.
		other := instanceConfig(120)
		other.Name, other.VRID = "ingress", 52
		other.VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.60/24")}
		stop := make(chan struct{})
		lost := make(chan int, 1)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					lost <- n
					return
				default:
				}
				if !hs[0].has(vip) {
					n++
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
		ns[0].d.Reload(&config.Config{File: "test.yaml", Instances: []config.Instance{instanceConfig(150), other}})
		waitFor(t, 2*time.Second, "the new instance to hold its VIP", func() bool {
			return hs[0].has(netip.MustParsePrefix("192.0.2.60/24"))
		})
		time.Sleep(100 * time.Millisecond)
		close(stop)
		if n := <-lost; n != 0 {
			t.Errorf("the VIP was missing at %d samples during an unrelated reload", n)
		}
		if got := transitions(); got != 0 {
			t.Errorf("%v master→backup transitions during an unrelated reload", got)
		}
		if st := ns[0].d.Status(); len(st) != 2 || st[0].State != router.Master || st[1].Name != "ingress" {
			t.Errorf("status after reload: %+v", st)
		}

		// A lower priority on the Master takes effect in place and hands over.
		lowered := instanceConfig(40)
		ns[0].d.Reload(&config.Config{File: "test.yaml", Instances: []config.Instance{lowered, other}})
		waitFor(t, 2*time.Second, "host 1 alone holding the VIP", only(1, hs...))
		if got := ns[0].value("vipd_instance_priority", "instance=api", "kind=configured"); got != 40 {
			t.Errorf("configured priority metric %v, want 40", got)
		}

		// Removing an instance releases its VIP and drops its series.
		ns[0].d.Reload(&config.Config{File: "test.yaml", Instances: []config.Instance{lowered}})
		waitFor(t, time.Second, "the removed instance's VIP to go", func() bool {
			return !hs[0].has(netip.MustParsePrefix("192.0.2.60/24"))
		})
		if n := ns[0].count("vipd_adverts_sent_total"); n != 1 {
			t.Errorf("%d vipd_adverts_sent_total series after removing an instance, want 1", n)
		}
	})
}

func TestSplitBrainGauge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.11")
		n := startNode(t, h, 150)
		waitFor(t, 2*time.Second, "the lone node to become Master", func() bool { return h.has(vip) })
		gauge := func() float64 { return n.value("vipd_split_brain", "instance=api") }
		if g := gauge(); g != 0 {
			t.Fatalf("split brain %v before any rival", g)
		}
		rival := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 50, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
		from := netip.MustParseAddr("192.0.2.99")
		b, err := rival.Marshal(from, vrrp.IPv4Group)
		if err != nil {
			t.Fatal(err)
		}
		// One advert is what a Master that steps down sends last: not yet a
		// split brain. A second within three intervals is.
		seg.inject(b, from, vrrp.IPv4Group, 255)
		time.Sleep(5 * time.Millisecond)
		if g := gauge(); g != 0 {
			t.Fatalf("split brain %v after a single advert", g)
		}
		seg.inject(b, from, vrrp.IPv4Group, 255)
		waitFor(t, time.Second, "split brain to be seen", func() bool { return gauge() == 1 })
		if !h.has(vip) {
			t.Fatal("a lower-priority rival took the VIP")
		}
		// The rival stops: the gauge clears after three intervals.
		waitFor(t, time.Second, "split brain to clear", func() bool { return gauge() == 0 })
		if got := n.value("vipd_instance_master_info", "instance=api", "master=192.0.2.11"); got != 1 {
			t.Errorf("vipd_instance_master_info{master=192.0.2.11} = %v, want 1", got)
		}
	})
}

func TestStartedAndPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		n := startNode(t, newHost(seg, "192.0.2.11"), 150)
		select {
		case <-n.d.Started():
		case <-time.After(2 * time.Second):
			t.Fatal("Started not closed")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := n.d.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// An interface that does not exist holds Started back.
func TestStartedWaitsForInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		ic := instanceConfig(150)
		ic.Interface = "eth9"
		n := startConfig(t, newHost(seg, "192.0.2.11"), &config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
		select {
		case <-n.d.Started():
			t.Fatal("Started closed without the interface")
		case <-time.After(200 * time.Millisecond):
		}
		if st := n.d.Status(); len(st) != 1 || st[0].State != router.Init {
			t.Fatalf("status %+v, want one instance in init", st)
		}
	})
}

// announce.refresh: the Master announces its VIPs again every period, on
// its own timer; a Backup never does; 0 is off.
func TestAnnounceRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		refreshing := func(prio uint8) *config.Config {
			ic := instanceConfig(prio)
			ic.Announce.Refresh = time.Second
			return one(ic)
		}
		startConfig(t, hs[0], refreshing(150))
		startConfig(t, hs[1], refreshing(100))
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		settle(100 * time.Millisecond) // the new Master's 3 rounds are over
		master, backup := hs[0].announcements(), hs[1].announcements()
		settle(10*time.Second + 50*time.Millisecond)
		if got := hs[0].announcements() - master; got != 10 {
			t.Errorf("the Master announced %d times in 10 s, want 10 (one VIP, every second)", got)
		}
		if got := hs[1].announcements() - backup; got != 0 {
			t.Errorf("the Backup announced %d times", got)
		}
	})
}

// An instance's routes and rules are wanted exactly while it holds its
// VIPs: on the Master, not the Backup; they move with a failover, follow a
// reload in place, and go with a graceful stop once handed over.
func TestRoutesFollowTheVIPs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		routed := func(prio uint8, to string) *config.Config {
			ic := instanceConfig(prio)
			ic.Routes = []config.Route{{To: netip.MustParsePrefix(to), Via: netip.MustParseAddr("192.0.2.1"), Type: config.RouteUnicast}}
			ic.Rules = []config.Rule{{From: netip.MustParsePrefix("192.0.2.50/32"), Table: 100}}
			return one(ic)
		}
		want := func(h *host, routes ...string) func() bool {
			return func() bool { return slices.Equal(h.routes.installed(), routes) }
		}
		ns := []*node{startConfig(t, hs[0], routed(150, "198.51.100.0/24")), startConfig(t, hs[1], routed(100, "198.51.100.0/24"))}
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		waitFor(t, time.Second, "host 0's routes", want(hs[0], "198.51.100.0/24 via 192.0.2.1", "rule from 192.0.2.50/32"))
		if got := hs[1].routes.installed(); len(got) != 0 {
			t.Fatalf("the Backup wants %v", got)
		}
		if got := ns[0].value("vipd_virtual_routes", "kind=route"); got != 1 {
			t.Errorf("vipd_virtual_routes{kind=route} = %v on the Master, want 1", got)
		}

		// A reload changes them in place.
		ns[0].d.Reload(routed(150, "203.0.113.0/24"))
		waitFor(t, time.Second, "host 0's new routes", want(hs[0], "203.0.113.0/24 via 192.0.2.1", "rule from 192.0.2.50/32"))

		// A lower priority moves them with the VIP.
		ns[0].d.Reload(routed(50, "203.0.113.0/24"))
		waitFor(t, 2*time.Second, "host 1 alone holding the VIP", only(1, hs...))
		waitFor(t, time.Second, "the routes on host 1 only", func() bool {
			return want(hs[1], "198.51.100.0/24 via 192.0.2.1", "rule from 192.0.2.50/32")() && want(hs[0])()
		})

		// A graceful stop: released, and the manager stopped.
		ns[1].stop()
		if got := hs[1].routes.installed(); len(got) != 0 || hs[1].routes.running {
			t.Fatalf("after stopping: wants %v, running %v", got, hs[1].routes.running)
		}
		waitFor(t, 2*time.Second, "host 0's routes again", want(hs[0], "203.0.113.0/24 via 192.0.2.1", "rule from 192.0.2.50/32"))
	})
}
