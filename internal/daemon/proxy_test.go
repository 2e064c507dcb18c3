package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/proxy"
)

// fakeProxies are the proxy virtual servers a host opened.
type fakeProxies struct {
	mu        sync.Mutex
	opened    []*fakeProxy
	listenErr error // what ListenProxy returns
}

// fakeProxy records what the daemon asked of one proxy.
type fakeProxy struct {
	mu       sync.Mutex
	cfg      proxy.Config
	backends []string // "addr:port" of weight > 0, sorted
	updates  int
	closed   bool
	drain    time.Duration // the Close context's time left
	live     map[netip.AddrPort]uint64
	resets   []string
}

var _ VirtualProxy = (*fakeProxy)(nil)

func (h *host) ListenProxy(c proxy.Config) (VirtualProxy, error) {
	h.px.mu.Lock()
	defer h.px.mu.Unlock()
	if h.px.listenErr != nil {
		return nil, h.px.listenErr
	}
	for _, p := range h.px.opened {
		if p.cfg.Addr == c.Addr && !p.isClosed() {
			return nil, errors.New("address already in use")
		}
	}
	p := &fakeProxy{cfg: c}
	h.px.opened = append(h.px.opened, p)
	return p, nil
}

// last is the proxy opened last for the virtual server name.
func (f *fakeProxies) last(name string) *fakeProxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.opened) - 1; i >= 0; i-- {
		if f.opened[i].cfg.Name == name {
			return f.opened[i]
		}
	}
	return nil
}

func (f *fakeProxies) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.opened)
}

func (p *fakeProxy) Update(bs []proxy.Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = p.backends[:0]
	for _, b := range bs {
		if b.Weight > 0 {
			p.backends = append(p.backends, b.Addr.String())
		}
	}
	sort.Strings(p.backends)
	p.updates++
}

func (p *fakeProxy) Reconfigure(c proxy.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = c
}

func (p *fakeProxy) Stats() proxy.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s proxy.Stats
	s.Retries = 7
	for a, n := range p.live {
		s.Backends = append(s.Backends, proxy.BackendStats{Addr: a, Live: n, Total: 10 * n})
	}
	return s
}

func (p *fakeProxy) Reset(a netip.AddrPort) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resets = append(p.resets, a.String())
	return 1
}

func (p *fakeProxy) Close(ctx context.Context) error {
	dl, _ := ctx.Deadline()
	p.mu.Lock()
	p.closed, p.drain = true, time.Until(dl)
	p.mu.Unlock()
	return nil
}

func (p *fakeProxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *fakeProxy) state() (backends []string, cfg proxy.Config, closed bool, drain time.Duration) {
	if p == nil {
		return nil, proxy.Config{}, false, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.backends), p.cfg, p.closed, p.drain
}

func proxyVS(quorum int, addrs ...string) config.VirtualServer {
	v := vsConfig(quorum, addrs...)
	v.Mode, v.Scheduler, v.DrainTimeout = "proxy", "least_conn", 3*time.Second
	return v
}

// TestProxyVirtualServer: a proxy virtual server listens, follows its
// real servers' health and the quorum, needs no nftables, reports its
// connections, and drains for its drain timeout at stop.
func TestProxyVirtualServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		// A kernel without nftables: the proxy does not care.
		h.lb.preflight = errors.New("nftables: operation not supported")
		rs := realServers{}
		cfg := lbConfig(150, []config.TrackVirtualServer{{VirtualServer: "apiserver", Weight: -60}}, proxyVS(2, "192.0.2.11", "192.0.2.12", "192.0.2.13"))
		n := startConfig(t, h, cfg, rs.option)
		if err := n.d.CheckVirtualServers(cfg); err != nil {
			t.Errorf("a reload's check of a proxy-only configuration: %v", err)
		}
		all := []string{"192.0.2.11:6443", "192.0.2.12:6443", "192.0.2.13:6443"}
		backends := func() []string { b, _, _, _ := h.px.last("apiserver").state(); return b }
		waitFor(t, time.Second, "every real server in the proxy", func() bool { return slices.Equal(backends(), all) })
		_, pc, _, _ := h.px.last("apiserver").state()
		if pc.Addr != netip.MustParseAddrPort("192.0.2.50:6443") || pc.Scheduler != proxy.LeastConn {
			t.Errorf("proxy opened with %+v", pc)
		}

		rs["192.0.2.12:6443"].set(errRefused)
		waitFor(t, time.Second, "192.0.2.12 out of the proxy", func() bool {
			return slices.Equal(backends(), []string{"192.0.2.11:6443", "192.0.2.13:6443"})
		})
		rs["192.0.2.13:6443"].set(errRefused)
		waitFor(t, time.Second, "no real servers below quorum", func() bool { return len(backends()) == 0 })
		waitFor(t, 2*time.Second, "the priority to follow the quorum", func() bool { return n.d.Status()[0].Priority == 90 })
		rs["192.0.2.12:6443"].set(nil)
		rs["192.0.2.13:6443"].set(nil)
		waitFor(t, time.Second, "every real server back", func() bool { return slices.Equal(backends(), all) })

		p := h.px.last("apiserver")
		p.mu.Lock()
		p.live = map[netip.AddrPort]uint64{netip.MustParseAddrPort("192.0.2.11:6443"): 4}
		p.mu.Unlock()
		st := n.d.VirtualServers()
		if len(st) != 1 || st[0].Mode != "proxy" || !st[0].Up || st[0].Error != "" || st[0].RealServers[0].Live != 4 || st[0].RealServers[0].Connections != 40 || st[0].RealServers[1].Live != 0 {
			t.Errorf("status %+v", st)
		}
		if got := n.value("vipd_real_server_connections", "virtual_server=apiserver", "address=192.0.2.11"); got != 4 {
			t.Errorf("vipd_real_server_connections = %v, want 4", got)
		}
		if got := n.value("vipd_real_server_connections_total", "virtual_server=apiserver", "address=192.0.2.11"); got != 40 {
			t.Errorf("vipd_real_server_connections_total = %v, want the proxy's 40", got)
		}
		if got := n.value("vipd_virtual_server_retries_total", "virtual_server=apiserver"); got != 7 {
			t.Errorf("vipd_virtual_server_retries_total = %v, want 7", got)
		}
		if f := h.lb.flushes(); len(f) != 0 {
			t.Errorf("a proxy's gone real servers flushed conntrack: %v", f)
		}
		p.mu.Lock()
		resets := slices.Clone(p.resets)
		p.mu.Unlock()
		if len(resets) != 0 {
			t.Errorf("refused real servers had their connections reset: %v", resets)
		}
		// Silent (a host gone): its connections are reset after the update.
		rs["192.0.2.13:6443"].set(health.ErrTimeout)
		waitFor(t, time.Second, "192.0.2.13's connections reset", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return slices.Equal(p.resets, []string{"192.0.2.13:6443"}) && !slices.Contains(p.backends, "192.0.2.13:6443")
		})

		n.stop()
		_, _, closed, drain := p.state()
		if !closed || drain != 3*time.Second {
			t.Errorf("at stop: closed %v, drained for %v; want 3s", closed, drain)
		}
		h.lb.mu.Lock()
		defer h.lb.mu.Unlock()
		if h.lb.applies != 0 || h.lb.removed != 0 {
			t.Errorf("a proxy-only configuration touched nftables: %d applies, %d removes", h.lb.applies, h.lb.removed)
		}
	})
}

// TestProxyReload: real servers come and go in the same proxy (its
// connections untouched); a new scheduler is applied in place; a removed
// virtual server drains; one that cannot listen is down, and retried.
func TestProxyReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.21")
		rs := realServers{}
		n := startConfig(t, h, lbConfig(150, nil, proxyVS(1, "192.0.2.11", "192.0.2.12")), rs.option)
		backends := func() []string { b, _, _, _ := h.px.last("apiserver").state(); return b }
		waitFor(t, time.Second, "both real servers in the proxy", func() bool { return len(backends()) == 2 })
		first := h.px.last("apiserver")

		next := proxyVS(1, "192.0.2.11", "192.0.2.13")
		next.Scheduler = "round_robin"
		n.d.Reload(lbConfig(150, nil, next))
		waitFor(t, time.Second, "the new real server in the proxy", func() bool {
			return slices.Equal(backends(), []string{"192.0.2.11:6443", "192.0.2.13:6443"})
		})
		if p := h.px.last("apiserver"); p != first || h.px.count() != 1 {
			t.Fatalf("a reload of real servers opened another proxy (%d opened)", h.px.count())
		}
		if _, cfg, closed, _ := first.state(); closed || cfg.Scheduler != proxy.RoundRobin {
			t.Errorf("after the reload: closed %v, scheduler %v", closed, cfg.Scheduler)
		}

		// Removed: it drains for its timeout.
		n.d.Reload(lbConfig(150, nil))
		waitFor(t, time.Second, "the removed virtual server's proxy closed", first.isClosed)
		if _, _, _, drain := first.state(); drain != 3*time.Second {
			t.Errorf("drained for %v, want 3s", drain)
		}

		// Back, on a host where the address cannot be bound for now.
		h.px.mu.Lock()
		h.px.listenErr = errors.New("bind: address already in use")
		h.px.mu.Unlock()
		n.d.Reload(lbConfig(150, nil, next))
		waitFor(t, time.Second, "the error in the status, the virtual server down", func() bool {
			st := n.d.VirtualServers()
			return len(st) == 1 && st[0].Error != "" && !st[0].Up
		})
		h.px.mu.Lock()
		h.px.listenErr = nil
		h.px.mu.Unlock()
		waitFor(t, 3*time.Second, "the listener retried", func() bool {
			p := h.px.last("apiserver")
			return p != first && p != nil && len(backends()) == 2
		})
		if st := n.d.VirtualServers(); st[0].Error != "" || !st[0].Up {
			t.Errorf("after the retry: error %q, up %v", st[0].Error, st[0].Up)
		}
	})
}
