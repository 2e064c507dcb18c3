package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/lb"
	"github.com/vipd/vipd/internal/router"
)

// fakeLB is a host's load-balancing table: what was applied, flushed and
// removed.
type fakeLB struct {
	mu        sync.Mutex
	table     map[string][]string // virtual server → "addr:port" of its backends, sorted
	applies   int
	present   bool
	removed   int
	flushed   []string // "vs addr:port"
	local     map[netip.Addr]bool
	preflight error               // what Preflight returns
	forward   error               // what CheckForwarding returns
	applyErr  error               // what Apply returns
	locals    map[string]bool     // backend "addr:port" → Local, as last applied
	down      map[string][]string // virtual server → "addr:port" of its Down, sorted
	conns     []lb.Connections    // what Connections returns once applied
	connsErr  error
}

var _ LBTable = (*fakeLB)(nil)

func (h *host) LB() LBTable { return &h.lb }

func (f *fakeLB) Preflight() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.preflight
}

func (f *fakeLB) CheckForwarding([]lb.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forward
}

func (f *fakeLB) Apply(vss []lb.VirtualServer) error {
	if err := lb.Validate(vss); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	f.table = map[string][]string{}
	f.locals = map[string]bool{}
	f.down = map[string][]string{}
	for _, v := range vss {
		for _, b := range v.Down {
			f.down[v.Name] = append(f.down[v.Name], netip.AddrPortFrom(b.Addr, b.Port).String())
		}
		sort.Strings(f.down[v.Name])
		bs := []string{}
		for _, b := range v.Backends {
			ap := netip.AddrPortFrom(b.Addr, b.Port).String()
			bs = append(bs, ap)
			f.locals[ap] = b.Local
		}
		sort.Strings(bs)
		f.table[v.Name] = bs
	}
	f.applies++
	f.present = true
	return nil
}

func (f *fakeLB) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.present = false
	f.table = nil
	f.removed++
	return nil
}

func (f *fakeLB) FlushConntrack(vs lb.VirtualServer, be lb.Backend) (uint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushed = append(f.flushed, vs.Name+" "+netip.AddrPortFrom(be.Addr, be.Port).String())
	return 1, nil
}

func (f *fakeLB) Connections() ([]lb.Connections, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.present {
		return nil, nil
	}
	return slices.Clone(f.conns), f.connsErr
}

func (f *fakeLB) LocalAddrs() (map[netip.Addr]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local, nil
}

// backends is the table's backends of a virtual server; nil while it has
// none or there is no table.
func (f *fakeLB) backends(vs string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.table[vs]) == 0 {
		return nil
	}
	return slices.Clone(f.table[vs])
}

func (f *fakeLB) flushes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flushed)
}

// rsProbe is a real server as its check sees it: up, refusing
// connections (gone), or answering unhealthy.
type rsProbe struct {
	mu  sync.Mutex
	err error
}

func (p *rsProbe) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *rsProbe) Probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// errForwarding stands for lb.ErrForwarding, which is Linux's.
var errForwarding = errors.New("lb: real servers on another host need forwarding")

var errRefused = fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)

// realServers makes the daemon's checks probe the real server at the
// check's address; the ones not listed are up.
type realServers map[string]*rsProbe

func (rs realServers) option(d *Daemon) {
	d.newProbe = func(s health.Spec) (health.Probe, error) {
		if s.TCP == nil {
			return nil, errors.New("not a TCP check")
		}
		p := rs[s.TCP.Address]
		if p == nil {
			p = &rsProbe{}
			rs[s.TCP.Address] = p
		}
		return p, nil
	}
}

func vsConfig(quorum int, addrs ...string) config.VirtualServer {
	v := config.VirtualServer{Name: "apiserver", Address: vip.Addr(), Port: 6443, Protocol: "tcp", Mode: "nat",
		Scheduler: "round_robin", Quorum: quorum,
		Check: config.RealServerCheck{Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond, Fall: 2, Rise: 1, TCP: true}}
	for _, a := range addrs {
		v.RealServers = append(v.RealServers, config.RealServer{Address: netip.MustParseAddr(a), Port: 6443, Weight: 1})
	}
	return v
}

func lbConfig(prio uint8, track []config.TrackVirtualServer, vss ...config.VirtualServer) *config.Config {
	ic := instanceConfig(prio)
	ic.TrackVirtualServers = track
	return &config.Config{File: "test.yaml", Instances: []config.Instance{ic}, VirtualServers: vss}
}

func TestVirtualServerFollowsRealServers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		h.lb.local = map[netip.Addr]bool{netip.MustParseAddr("192.0.2.11"): true}
		rs := realServers{}
		n := startConfig(t, h, lbConfig(150, nil, vsConfig(1, "192.0.2.11", "192.0.2.12", "192.0.2.13")), rs.option)
		all := []string{"192.0.2.11:6443", "192.0.2.12:6443", "192.0.2.13:6443"}
		waitFor(t, time.Second, "every real server in the table", func() bool { return slices.Equal(h.lb.backends("apiserver"), all) })
		h.lb.mu.Lock()
		if !h.lb.locals["192.0.2.11:6443"] || h.lb.locals["192.0.2.12:6443"] {
			t.Errorf("local backends %v, want only 192.0.2.11", h.lb.locals)
		}
		h.lb.mu.Unlock()
		if got := n.value("vipd_virtual_server_healthy_real_servers", "virtual_server=apiserver"); got != 3 {
			t.Errorf("healthy real servers = %v, want 3", got)
		}

		// Answering unhealthy: out of the table, connections left to drain.
		rs["192.0.2.12:6443"].set(errors.New("HTTP 503"))
		waitFor(t, time.Second, "192.0.2.12 out of the table", func() bool {
			return slices.Equal(h.lb.backends("apiserver"), []string{"192.0.2.11:6443", "192.0.2.13:6443"})
		})
		if f := h.lb.flushes(); len(f) != 0 {
			t.Errorf("flushed %v for a real server that still answers", f)
		}
		// Gone: out, and its connections flushed.
		rs["192.0.2.13:6443"].set(errRefused)
		waitFor(t, time.Second, "192.0.2.13 out of the table", func() bool {
			return slices.Equal(h.lb.backends("apiserver"), []string{"192.0.2.11:6443"})
		})
		waitFor(t, time.Second, "192.0.2.13's connections flushed", func() bool {
			return slices.Equal(h.lb.flushes(), []string{"apiserver 192.0.2.13:6443"})
		})
		if got := n.value("vipd_real_server_up", "virtual_server=apiserver", "address=192.0.2.13", "port=6443"); got != 0 {
			t.Errorf("vipd_real_server_up{192.0.2.13} = %v, want 0", got)
		}
		st := n.d.VirtualServers()
		if len(st) != 1 || st[0].Healthy != 1 || !st[0].Up || len(st[0].RealServers) != 3 || !st[0].RealServers[0].Local {
			t.Errorf("status %+v", st)
		}

		rs["192.0.2.12:6443"].set(nil)
		rs["192.0.2.13:6443"].set(nil)
		waitFor(t, time.Second, "every real server back", func() bool { return slices.Equal(h.lb.backends("apiserver"), all) })

		n.stop()
		h.lb.mu.Lock()
		defer h.lb.mu.Unlock()
		if h.lb.present || h.lb.removed != 1 {
			t.Errorf("after a clean stop: table present %v, removed %d times", h.lb.present, h.lb.removed)
		}
	})
}

// Real servers out of the schedule are passed as Down, so that the table
// keeps their counters, and the counters are exported at every scrape.
func TestVirtualServerConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		rs := realServers{}
		rs["192.0.2.12:6443"] = &rsProbe{err: errRefused}
		n := startConfig(t, h, lbConfig(150, nil, vsConfig(2, "192.0.2.11", "192.0.2.12")), rs.option)
		down := func() []string {
			h.lb.mu.Lock()
			defer h.lb.mu.Unlock()
			return h.lb.down["apiserver"]
		}
		// Below quorum 2: no backends, both counted as down.
		waitFor(t, time.Second, "both real servers down", func() bool {
			return slices.Equal(down(), []string{"192.0.2.11:6443", "192.0.2.12:6443"})
		})
		rs["192.0.2.12:6443"].set(nil)
		waitFor(t, time.Second, "both in the schedule", func() bool { return len(h.lb.backends("apiserver")) == 2 && len(down()) == 0 })
		h.lb.mu.Lock()
		h.lb.conns = []lb.Connections{
			{VirtualServer: "apiserver", Addr: netip.MustParseAddr("192.0.2.11"), Port: 6443, Total: 5},
			{VirtualServer: "apiserver", Addr: netip.MustParseAddr("192.0.2.12"), Port: 6443, Total: 7},
		}
		h.lb.mu.Unlock()
		if got := n.value("vipd_real_server_connections_total", "virtual_server=apiserver", "address=192.0.2.12", "port=6443"); got != 7 {
			t.Errorf("connections of 192.0.2.12 = %v, want 7", got)
		}
		if got := n.value("vipd_real_server_connections_total", "virtual_server=apiserver"); got != 12 {
			t.Errorf("connections of apiserver = %v, want 12", got)
		}
		if st := n.d.VirtualServers(); len(st) != 1 || st[0].RealServers[0].Connections != 5 || st[0].RealServers[1].Connections != 7 {
			t.Errorf("status %+v, want 5 and 7 connections", st)
		}
		h.lb.mu.Lock()
		h.lb.connsErr = errors.New("netlink: no buffer space")
		h.lb.mu.Unlock()
		n.value("vipd_real_server_connections_total")
		if got := n.value("vipd_real_server_connections_read_errors_total"); got != 2 {
			t.Errorf("read errors = %v after two failed scrapes, want 2", got)
		}
	})
}

func TestVirtualServerQuorumTracked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.21"), newHost(seg, "192.0.2.22")}
		rs := realServers{}
		vs := vsConfig(2, "192.0.2.11", "192.0.2.12", "192.0.2.13")
		n0 := startConfig(t, hs[0], lbConfig(150, []config.TrackVirtualServer{{VirtualServer: "apiserver", Weight: -60}}, vs), rs.option)
		startNode(t, hs[1], 100)
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		rs["192.0.2.11:6443"].set(errRefused)
		settle(time.Second)
		if got := hs[0].lb.backends("apiserver"); len(got) != 2 || !only(0, hs...)() {
			t.Fatalf("one real server down, quorum 2 kept: backends %v, holders %v", got, holders(hs...))
		}
		rs["192.0.2.12:6443"].set(errRefused)
		waitFor(t, time.Second, "no backends below quorum", func() bool { return hs[0].lb.backends("apiserver") == nil })
		waitFor(t, 2*time.Second, "host 1 to preempt host 0 at priority 90", only(1, hs...))
		if got := n0.value("vipd_virtual_server_up", "virtual_server=apiserver"); got != 0 {
			t.Errorf("vipd_virtual_server_up = %v, want 0", got)
		}
		if st := n0.d.Status()[0]; st.Priority != 90 || !slices.Equal(st.FailingChecks, []string{"vs:apiserver"}) {
			t.Errorf("status priority %d, failing %v; want 90, [vs:apiserver]", st.Priority, st.FailingChecks)
		}

		rs["192.0.2.12:6443"].set(nil)
		waitFor(t, 3*time.Second, "host 0 to preempt again at quorum", only(0, hs...))
		if got := hs[0].lb.backends("apiserver"); len(got) != 2 {
			t.Errorf("backends %v, want 2", got)
		}
	})
}

func TestVirtualServerFaultTracked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.21"), newHost(seg, "192.0.2.22")}
		rs := realServers{}
		n0 := startConfig(t, hs[0], lbConfig(150, []config.TrackVirtualServer{{VirtualServer: "apiserver"}}, vsConfig(1, "192.0.2.11")), rs.option)
		startNode(t, hs[1], 100)
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		rs["192.0.2.11:6443"].set(errRefused)
		waitFor(t, 2*time.Second, "host 1 to take over from the faulted host 0", only(1, hs...))
		if s := state(n0); s != router.Fault {
			t.Errorf("host 0 is %v, want fault", s)
		}
		rs["192.0.2.11:6443"].set(nil)
		waitFor(t, 3*time.Second, "host 0 back", only(0, hs...))
	})
}

func TestVirtualServerReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		rs := realServers{}
		vs := vsConfig(1, "192.0.2.11", "192.0.2.12")
		vs.Check.Rise = 5 // a real server new to the table takes 5 runs
		n := startConfig(t, h, lbConfig(150, nil, vs), rs.option)
		waitFor(t, 2*time.Second, "both real servers in the table", func() bool { return len(h.lb.backends("apiserver")) == 2 })

		// 192.0.2.12 leaves, 192.0.2.13 joins: 192.0.2.11 keeps its state
		// (it stays in the table throughout), the new one rises.
		next := vsConfig(1, "192.0.2.11", "192.0.2.13")
		next.Check.Rise = 5
		n.d.Reload(lbConfig(150, nil, next))
		settle(150 * time.Millisecond)
		if got := h.lb.backends("apiserver"); !slices.Equal(got, []string{"192.0.2.11:6443"}) {
			t.Errorf("right after the reload: backends %v, want only 192.0.2.11", got)
		}
		if c := n.count("vipd_real_server_up", "address=192.0.2.12"); c != 0 {
			t.Errorf("%d series of the removed real server left", c)
		}
		waitFor(t, 2*time.Second, "the new real server in the table", func() bool {
			return slices.Equal(h.lb.backends("apiserver"), []string{"192.0.2.11:6443", "192.0.2.13:6443"})
		})
		if f := h.lb.flushes(); len(f) != 0 {
			t.Errorf("a reload flushed %v", f)
		}

		// Without virtual servers: an empty table, no series.
		n.d.Reload(lbConfig(150, nil))
		waitFor(t, time.Second, "the virtual server gone", func() bool {
			h.lb.mu.Lock()
			defer h.lb.mu.Unlock()
			return len(h.lb.table) == 0
		})
		if c := n.count("vipd_virtual_server_up") + n.count("vipd_real_server_up"); c != 0 {
			t.Errorf("%d series left", c)
		}
	})
}

func TestVirtualServerPreflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		h.lb.forward = fmt.Errorf("%w: virtual server apiserver: set net.ipv4.ip_forward=1", errForwarding)
		rs := realServers{}
		cfg := lbConfig(150, []config.TrackVirtualServer{{VirtualServer: "apiserver"}}, vsConfig(1, "192.0.2.11"))
		n := startConfig(t, h, cfg, rs.option)
		settle(time.Second)
		if s := state(n); s != router.Fault {
			t.Errorf("instance tracking a virtual server that cannot run is %v, want fault", s)
		}
		if st := n.d.VirtualServers(); len(st) != 1 || st[0].Up || st[0].Error == "" {
			t.Errorf("status %+v, want down with the error", st)
		}
		if err := n.d.CheckVirtualServers(cfg); !errors.Is(err, errForwarding) {
			t.Errorf("CheckVirtualServers = %v, want the forwarding error", err)
		}
		h.lb.mu.Lock()
		h.lb.forward = nil
		applied := h.lb.applies
		h.lb.mu.Unlock()
		if applied != 0 {
			t.Errorf("%d applies while the forwarding is off", applied)
		}
		if err := n.d.CheckVirtualServers(cfg); err != nil {
			t.Fatal(err)
		}
		n.d.Reload(cfg)
		waitFor(t, 2*time.Second, "the instance out of fault once the reload starts the virtual server", func() bool { return state(n) == router.Master })
	})
}

func TestCleanupRemovesTable(t *testing.T) {
	h := newHost(&segment{}, "192.0.2.21")
	h.lb.present = true
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := Cleanup(lbConfig(150, nil), h, log); err != nil {
		t.Fatal(err)
	}
	if h.lb.present || h.lb.removed != 1 {
		t.Errorf("table present %v after cleanup, removed %d times", h.lb.present, h.lb.removed)
	}
}

// TestVirtualServerApplyFails: a table the kernel refuses is tried again
// every second; meanwhile the instances still follow the quorum.
func TestVirtualServerApplyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		rs := realServers{}
		n := startConfig(t, h, lbConfig(150, []config.TrackVirtualServer{{VirtualServer: "apiserver", Weight: -10}}, vsConfig(1, "192.0.2.11")), rs.option)
		waitFor(t, 2*time.Second, "the real server in the table", func() bool { return len(h.lb.backends("apiserver")) == 1 })
		h.lb.mu.Lock()
		h.lb.applyErr = errors.New("netlink: no buffer space")
		h.lb.mu.Unlock()
		rs["192.0.2.11:6443"].set(errRefused)
		waitFor(t, 2*time.Second, "the priority to follow the quorum while the table cannot change", func() bool {
			return n.d.Status()[0].Priority == 140
		})
		if got := h.lb.backends("apiserver"); len(got) != 1 {
			t.Errorf("backends %v: the failed replacement changed the table", got)
		}
		h.lb.mu.Lock()
		h.lb.applyErr = nil
		h.lb.mu.Unlock()
		waitFor(t, 2*time.Second, "the retry to empty the table", func() bool { return h.lb.backends("apiserver") == nil })
		waitFor(t, time.Second, "the flush after the retry", func() bool { return len(h.lb.flushes()) == 1 })
	})
}
