package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lb"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/proxy"
)

// VirtualProxy is a proxy virtual server's listener and connections: on
// Linux an internal/proxy.Proxy; in tests a record of what was asked.
type VirtualProxy interface {
	// Update makes bs the real servers of the proxy, those of weight 0
	// taking no new connections; established connections are not
	// touched.
	Update(bs []proxy.Backend)
	// Reconfigure applies a changed scheduler, persistence or PROXY
	// protocol to new connections (the address stays).
	Reconfigure(c proxy.Config)
	Stats() proxy.Stats
	// Reset closes the connections to the real server at addr, with a
	// reset towards their clients.
	Reset(addr netip.AddrPort) int
	// Close stops listening and lets the connections drain until ctx is
	// done.
	Close(ctx context.Context) error
}

// errProxyListen marks a proxy that could not listen, tried again every
// lbRetry.
var errProxyListen = errors.New("proxy cannot listen")

// proxyConfig is v as internal/proxy takes it.
func (s *lbSet) proxyConfig(v config.VirtualServer) proxy.Config {
	sched, _ := lb.ParseScheduler(v.Scheduler) // validated
	return proxy.Config{Name: v.Name, Addr: netip.AddrPortFrom(v.Address, v.Port), Scheduler: sched,
		Persistence: v.Persistence, ProxyProtocol: v.ProxyProtocol == "v2", Log: s.d.log}
}

func isProxy(v config.VirtualServer) bool { return v.Mode == "proxy" }

// keepProxy hands prev's proxy to v when it listens on the same address
// and port, reconfigured; otherwise prev's drains. s.mu held.
func (s *lbSet) keepProxy(prev, v *vsState) {
	if prev == nil || prev.px == nil {
		return
	}
	if isProxy(v.cfg) && prev.cfg.Address == v.cfg.Address && prev.cfg.Port == v.cfg.Port {
		v.px = prev.px
		v.px.Reconfigure(s.proxyConfig(v.cfg))
		return
	}
	s.drain(prev)
}

// drain closes v's proxy in the background, letting its connections go on
// for its drain timeout; stop waits for it. s.mu held.
func (s *lbSet) drain(v *vsState) {
	if v.px == nil {
		return
	}
	px, timeout, name := v.px, v.cfg.DrainTimeout, v.cfg.Name
	v.px = nil
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := px.Close(ctx); err != nil {
			s.d.log.Warn("closing a proxy virtual server", "virtual_server", name, "err", err)
		}
	}()
}

// openProxy opens v's listener unless it is open; s.mu held. The error
// says it could not, to be tried again.
func (s *lbSet) openProxy(v *vsState) error {
	if v.px != nil {
		return nil
	}
	px, err := s.d.sys.ListenProxy(s.proxyConfig(v.cfg))
	if err != nil {
		err = fmt.Errorf("%w: virtual server %s on %s: %w", errProxyListen, v.cfg.Name, netip.AddrPortFrom(v.cfg.Address, v.cfg.Port), err)
		if v.pxErr == nil || v.pxErr.Error() != err.Error() {
			s.d.log.Error("proxy virtual server cannot listen; it is down, retrying", "virtual_server", v.cfg.Name, "err", err)
		}
		v.pxErr = err
		return err
	}
	if v.pxErr != nil {
		s.d.log.Info("proxy virtual server listening", "virtual_server", v.cfg.Name)
	}
	v.px, v.pxErr = px, nil
	return nil
}

// updateProxies gives each open proxy its real servers, weighted while
// healthy (none below quorum), then resets the connections of the real
// servers found gone; s.mu held.
func (s *lbSet) updateProxies(backends map[string][]proxy.Backend) {
	for _, v := range s.vss {
		if v.px == nil {
			v.resets = nil
			continue
		}
		v.px.Update(backends[v.cfg.Name])
		for _, a := range v.resets {
			n := v.px.Reset(a)
			s.d.log.Info("reset a gone real server's connections", "virtual_server", v.cfg.Name, "real_server", a.String(), "connections", n)
		}
		v.resets = nil
	}
}

// resetGone notes that r, a real server of proxy v, failed its check with
// err, and says whether it is gone: unroutable or silent, as a host that
// went away. Its proxied connections would hang until keepalive gives up,
// so they are reset after the next update, as nat flushes conntrack. A
// refused connect is not gone: the host is up, and its kernel has reset
// the connections of a process that died; a real server that stopped
// accepting keeps its connections to finish them. s.mu held.
func (v *vsState) resetGone(r *rsState, err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	v.resets = append(v.resets, r.cfg.AddrPort())
	return true
}

// stopProxies drains every proxy, each for its drain timeout, at once.
func (s *lbSet) stopProxies() {
	s.mu.Lock()
	for _, v := range s.vss {
		s.drain(v)
	}
	s.mu.Unlock()
	s.draining.Wait()
}

// proxyStats are the proxies' counters for the metrics.
func (s *lbSet) proxyStats() []metrics.ProxyStats {
	type open struct {
		name string
		px   VirtualProxy
	}
	s.mu.Lock()
	var pxs []open
	for _, v := range s.vss {
		if v.px != nil {
			pxs = append(pxs, open{v.cfg.Name, v.px})
		}
	}
	s.mu.Unlock()
	out := make([]metrics.ProxyStats, 0, len(pxs))
	for _, o := range pxs {
		st := o.px.Stats()
		ps := metrics.ProxyStats{VirtualServer: o.name, Retries: st.Retries, Rejected: map[string]uint64{}}
		for _, r := range proxy.Reasons() {
			ps.Rejected[r.String()] = st.Rejected[r]
		}
		for _, b := range st.Backends {
			ps.RealServers = append(ps.RealServers, metrics.ProxyRealServer{Address: b.Addr.Addr().String(), Port: b.Addr.Port(),
				Live: b.Live, Total: b.Total, ConnectFailures: b.ConnectFailures, BytesIn: b.BytesIn, BytesOut: b.BytesOut})
		}
		out = append(out, ps)
	}
	return out
}

// proxyConnections are the proxies' connection totals per real server,
// for vipd_real_server_connections_total beside the nat table's.
func (s *lbSet) proxyConnections() ([]metrics.RealServerConnections, error) {
	var out []metrics.RealServerConnections
	for _, v := range s.proxyStats() {
		for _, r := range v.RealServers {
			a, err := netip.ParseAddr(r.Address)
			if err != nil {
				continue
			}
			out = append(out, metrics.RealServerConnections{VirtualServer: v.VirtualServer, Address: a, Port: r.Port, Total: r.Total})
		}
	}
	return out, nil
}

// liveConns is the live connections of each real server of v's proxy.
func liveConns(v *vsState) map[netip.AddrPort]uint64 {
	if v.px == nil {
		return nil
	}
	out := map[netip.AddrPort]uint64{}
	for _, b := range v.px.Stats().Backends {
		out[b.Addr] = b.Live
	}
	return out
}
