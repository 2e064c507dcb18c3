package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/lb"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/proxy"
)

// LBTable is the kernel's load-balancing table as the daemon uses it: on
// Linux internal/lb's nftables table; in tests a record of what was asked.
type LBTable interface {
	// Preflight says what the kernel lacks, changing nothing.
	Preflight() error
	// CheckForwarding says which forwarding sysctl remote real servers
	// need and is off (lb.ErrForwarding).
	CheckForwarding(vss []lb.VirtualServer) error
	// Apply replaces the table with vss, atomically.
	Apply(vss []lb.VirtualServer) error
	// Remove deletes the table; no error when there is none.
	Remove() error
	// FlushConntrack deletes the connections of vs to be.
	FlushConntrack(vs lb.VirtualServer, be lb.Backend) (uint, error)
	// Connections reads the applied table's connection counters; nothing
	// before the first Apply.
	Connections() ([]lb.Connections, error)
	// LocalAddrs lists the host's addresses: a real server at one of
	// them is local.
	LocalAddrs() (map[netip.Addr]bool, error)
}

// lbDebounce lets a burst of real-server changes (a host with several of
// them going away) become one table replacement.
const lbDebounce = 20 * time.Millisecond

// lbRetry is how soon a failed table replacement is tried again.
const lbRetry = time.Second

// lbSet runs the virtual servers: a health check per real server, and the
// kernel table rebuilt from the healthy ones whenever one changes. A
// virtual server is up while at least its quorum of real servers is
// healthy; below it, it has no backends at all (new connections are
// refused), and the instances that track it are told, like checks.
type lbSet struct {
	d *Daemon

	applyMu sync.Mutex // serialises apply and stop
	mu      sync.Mutex // guards vss, broken and pending; a leaf lock
	vss     []*vsState
	// broken is why the kernel cannot hold the table (Preflight): no
	// check runs, every virtual server is down.
	broken error
	// pending are real servers found gone whose connections are flushed
	// after the next table replacement.
	pending []flushReq

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// applied says the table is in the kernel, for stop.
	applied bool
	// draining are the proxies closing in the background (proxy.go).
	draining sync.WaitGroup
}

type vsState struct {
	cfg config.VirtualServer
	rs  []*rsState
	up  bool // as last told to the instances
	// px is a proxy virtual server's listener, nil until open; pxErr why
	// it could not listen.
	px    VirtualProxy
	pxErr error
	// resets are real servers found gone whose proxied connections are
	// reset after the next update (proxy.go).
	resets []netip.AddrPort
}

type rsState struct {
	cfg     config.RealServer
	check   config.RealServerCheck
	checker *health.Checker
	cancel  context.CancelFunc
	done    chan struct{}
	up      bool
	local   bool
}

type flushReq struct {
	vs lb.VirtualServer
	be lb.Backend
}

// CheckVirtualServers says whether the kernel can hold cfg's virtual
// servers: a reload that cannot is refused before anything changes.
func (d *Daemon) CheckVirtualServers(cfg *config.Config) error {
	return d.lbs.preflight(cfg.VirtualServers)
}

// preflight checks the kernel's features and the forwarding that remote
// real servers need, for the nat virtual servers: the proxies need
// neither.
func (s *lbSet) preflight(vss []config.VirtualServer) error {
	vss = slices.DeleteFunc(slices.Clone(vss), isProxy)
	if len(vss) == 0 {
		return nil
	}
	t := s.d.sys.LB()
	if err := t.Preflight(); err != nil {
		return err
	}
	local, err := t.LocalAddrs()
	if err != nil {
		return fmt.Errorf("listing the host's addresses: %w", err)
	}
	all := make([]lb.VirtualServer, 0, len(vss))
	for _, v := range vss {
		lv := lbVirtualServer(v)
		for _, r := range v.RealServers {
			lv.Backends = append(lv.Backends, lb.Backend{Addr: r.Address, Port: r.Port, Weight: r.Weight, Local: local[r.Address]})
		}
		all = append(all, lv)
	}
	return t.CheckForwarding(all)
}

// apply starts, keeps and stops real servers' checks for vss. A real
// server with the same address, port and check as before keeps its
// checker and state, so a reload disturbs nothing it did not change.
func (s *lbSet) apply(ctx context.Context, vss []config.VirtualServer) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.done == nil && len(vss) == 0 {
		return
	}
	if s.done == nil {
		if err := s.preflight(vss); err != nil {
			s.d.log.Error("load balancing cannot run: every virtual server is down until a reload fixes this", "err", err)
			s.mu.Lock()
			s.broken = err
			s.vss = s.vss[:0]
			for _, v := range vss {
				st := &vsState{cfg: v}
				for _, r := range v.RealServers {
					st.rs = append(st.rs, &rsState{cfg: r, check: v.Check})
				}
				s.vss = append(s.vss, st)
			}
			s.mu.Unlock()
			s.metrics()
			return
		}
		s.kick = make(chan struct{}, 1)
		rctx, cancel := context.WithCancel(ctx)
		s.cancel, s.done = cancel, make(chan struct{})
		go s.run(rctx)
	}
	s.mu.Lock()
	s.broken = nil
	old := map[string]*vsState{}
	for _, v := range s.vss {
		old[v.cfg.Name] = v
	}
	var stop []*rsState
	next := make([]*vsState, 0, len(vss))
	for _, c := range vss {
		v := &vsState{cfg: c}
		prev := old[c.Name]
		delete(old, c.Name)
		keep := map[netip.AddrPort]*rsState{}
		if prev != nil {
			v.up = prev.up
			for _, r := range prev.rs {
				keep[r.cfg.AddrPort()] = r
			}
			s.keepProxy(prev, v)
		}
		for _, rc := range c.RealServers {
			r := keep[rc.AddrPort()]
			delete(keep, rc.AddrPort())
			switch {
			case r != nil && r.checker != nil && reflect.DeepEqual(r.check, c.Check):
				r.cfg = rc // a new weight is taken at the next Apply
			default:
				initial := r != nil && r.up
				if r != nil {
					stop = append(stop, r)
				}
				r = &rsState{cfg: rc, check: c.Check, up: initial}
				s.startCheck(ctx, c, r)
			}
			v.rs = append(v.rs, r)
		}
		for _, r := range keep {
			stop = append(stop, r)
			s.deleteRealServerMetrics(c.Name, r.cfg)
		}
		next = append(next, v)
	}
	for name, v := range old {
		stop = append(stop, v.rs...)
		s.drain(v)
		s.d.m.DeleteVirtualServer(name)
	}
	s.vss = next
	s.mu.Unlock()
	for _, r := range stop {
		r.stop()
	}
	s.metrics()
	s.poke()
}

// startCheck runs r's health check; s.mu held.
func (s *lbSet) startCheck(ctx context.Context, v config.VirtualServer, r *rsState) {
	spec := rsSpec(v, r.cfg)
	spec.InitialUp = r.up
	var p health.Probe
	p, err := s.d.newProbe(spec)
	if err != nil {
		// Validated config: what is left is a CA file that cannot be
		// read now. The real server counts as down, with the reason.
		s.d.log.Error("real server check cannot run; it counts as down", "virtual_server", v.Name, "real_server", r.cfg.AddrPort().String(), "err", err)
		spec.InitialUp, r.up = false, false
		p = health.ProbeFunc(func(context.Context) error { return err })
	}
	cctx, cancel := context.WithCancel(ctx)
	r.checker = health.NewChecker(spec, p, nil, s.d.log)
	r.cancel, r.done = cancel, make(chan struct{})
	sub := r.checker.Subscribe()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.checker.Run(cctx)
	}()
	name := v.Name
	go func() {
		defer wg.Done()
		for {
			select {
			case <-cctx.Done():
				return
			case u := <-sub:
				s.realServerChanged(name, r, u)
			}
		}
	}()
	go func() {
		wg.Wait()
		close(r.done)
	}()
}

func (r *rsState) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

// realServerChanged records a real server's new state. One that went down
// because it cannot be reached at all has its connections flushed after
// the table no longer sends it new ones: its clients are reset and
// reconnect to another, rather than hang.
func (s *lbSet) realServerChanged(vsName string, r *rsState, u health.Update) {
	s.mu.Lock()
	// r may have been replaced by a reload since the update was sent.
	var v *vsState
	for _, x := range s.vss {
		if x.cfg.Name == vsName && slices.Contains(x.rs, r) {
			v = x
		}
	}
	if v == nil || r.up == u.Up {
		s.mu.Unlock()
		return
	}
	r.up = u.Up
	gone := !u.Up && unreachable(u.Result.Err)
	if gone && isProxy(v.cfg) {
		gone = v.resetGone(r, u.Result.Err)
	} else if gone {
		lv := lbVirtualServer(v.cfg)
		s.pending = append(s.pending, flushReq{vs: lv, be: lb.Backend{Addr: r.cfg.Address, Port: r.cfg.Port, Weight: r.cfg.Weight, Local: r.local}})
	}
	s.mu.Unlock()
	s.d.log.Info("real server changed", "virtual_server", vsName, "real_server", r.cfg.AddrPort().String(), "up", u.Up, "unreachable", gone, "err", u.Result.Err)
	s.metrics()
	s.poke()
}

// unreachable says a failed check could not reach the real server at all,
// as opposed to one that answered unhealthy (an HTTP status): refused,
// unroutable, or no answer in time.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, health.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func (s *lbSet) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run replaces the table after every burst of changes, until ctx is done.
func (s *lbSet) run(ctx context.Context) {
	defer close(s.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-retry.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(lbDebounce):
		}
		if err := s.sync(ctx); err != nil {
			// A proxy that cannot listen was logged when it began.
			if !errors.Is(err, errProxyListen) {
				s.d.log.Error("load-balancing table not replaced; retrying", "err", err)
			}
			retry.Reset(lbRetry)
		}
	}
}

// sync replaces the table with the healthy real servers of every virtual
// server, flushes the connections of the ones found gone, and tells the
// instances about virtual servers that went up or down.
func (s *lbSet) sync(ctx context.Context) error {
	t := s.d.sys.LB()
	local, err := t.LocalAddrs()
	if err != nil {
		return fmt.Errorf("listing the host's addresses: %w", err)
	}
	type change struct {
		name string
		up   bool
	}
	var changes []change
	s.mu.Lock()
	vss := make([]lb.VirtualServer, 0, len(s.vss))
	proxied := map[string][]proxy.Backend{}
	var pxErr error
	for _, v := range s.vss {
		if isProxy(v.cfg) {
			// Every real server, the ones that take no new connections
			// with weight 0: the proxy keeps their counters.
			healthy, bs := 0, make([]proxy.Backend, 0, len(v.rs))
			for _, r := range v.rs {
				r.local = local[r.cfg.Address]
				w := 0
				if r.up {
					healthy++
					w = r.cfg.Weight
				}
				bs = append(bs, proxy.Backend{Addr: r.cfg.AddrPort(), Weight: w})
			}
			// One that cannot listen is down, like a table that cannot
			// be applied.
			if err := s.openProxy(v); err != nil {
				pxErr = err
			}
			up := healthy >= v.cfg.Quorum && v.px != nil
			if !up {
				for i := range bs {
					bs[i].Weight = 0
				}
			}
			proxied[v.cfg.Name] = bs
			if up != v.up {
				v.up = up
				changes = append(changes, change{v.cfg.Name, up})
			}
			continue
		}
		lv := lbVirtualServer(v.cfg)
		healthy := 0
		for _, r := range v.rs {
			r.local = local[r.cfg.Address]
			be := lb.Backend{Addr: r.cfg.Address, Port: r.cfg.Port, Weight: r.cfg.Weight, Local: r.local}
			if r.up {
				healthy++
				lv.Backends = append(lv.Backends, be)
			} else {
				lv.Down = append(lv.Down, be) // keeps its connection counter
			}
		}
		up := healthy >= v.cfg.Quorum
		if !up {
			lv.Down = append(lv.Down, lv.Backends...)
			lv.Backends = nil
		}
		if up != v.up {
			v.up = up
			changes = append(changes, change{v.cfg.Name, up})
		}
		vss = append(vss, lv)
	}
	flush := s.pending
	s.pending = nil
	s.updateProxies(proxied)
	// A host whose virtual servers are all proxies never touches
	// nftables.
	skipTable := len(vss) == 0 && !s.applied
	s.mu.Unlock()

	// The instances hear of a change of quorum even when the table cannot
	// be replaced: it follows the real servers' health, not the kernel.
	defer func() {
		for _, c := range changes {
			s.d.log.Info("virtual server changed", "virtual_server", c.name, "up", c.up)
			s.d.broadcast(ctx, trackVirtualServer, c.name, c.up)
		}
		s.metrics()
	}()
	if skipTable {
		return pxErr
	}
	if err := t.Apply(vss); err != nil {
		s.mu.Lock()
		s.pending = append(flush, s.pending...)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.applied = true
	s.mu.Unlock()
	for _, f := range flush {
		n, err := t.FlushConntrack(f.vs, f.be)
		if err != nil {
			s.d.log.Warn("flushing a gone real server's connections failed", "virtual_server", f.vs.Name, "real_server", netip.AddrPortFrom(f.be.Addr, f.be.Port).String(), "err", err)
			continue
		}
		s.d.log.Info("flushed a gone real server's connections", "virtual_server", f.vs.Name, "real_server", netip.AddrPortFrom(f.be.Addr, f.be.Port).String(), "connections", n)
	}
	return pxErr
}

// up says whether the named virtual server is up, as last told to the
// instances; an unknown one is down.
func (s *lbSet) up(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.vss {
		if v.cfg.Name == name {
			return v.up
		}
	}
	return false
}

// stop stops every check and the table's goroutine, then removes the
// table: the next Master's own table balances the clients, and the
// connections this host carried keep their conntrack entries.
func (s *lbSet) stop() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	var all []*rsState
	for _, v := range s.vss {
		all = append(all, v.rs...)
	}
	s.mu.Unlock()
	for _, r := range all {
		r.stop()
	}
	if s.done == nil {
		return
	}
	s.cancel()
	<-s.done
	s.stopProxies()
	if s.applied {
		if err := s.d.sys.LB().Remove(); err != nil {
			s.d.log.Error("removing the load-balancing table failed; vipd cleanup removes it", "err", err)
		}
	}
}

// metrics sets every virtual and real server's series.
func (s *lbSet) metrics() {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.d.m
	for _, v := range s.vss {
		healthy := 0
		for _, r := range v.rs {
			up := 0.0
			if r.up && s.broken == nil {
				up = 1
				healthy++
			}
			m.RealServerUp.WithLabelValues(v.cfg.Name, r.cfg.Address.String(), strconv.Itoa(int(r.cfg.Port))).Set(up)
		}
		up := 0.0
		if v.up && s.broken == nil {
			up = 1
		}
		m.VirtualServerUp.WithLabelValues(v.cfg.Name).Set(up)
		m.VirtualServerHealthy.WithLabelValues(v.cfg.Name).Set(float64(healthy))
	}
}

func (s *lbSet) deleteRealServerMetrics(vs string, r config.RealServer) {
	s.d.m.RealServerUp.DeleteLabelValues(vs, r.Address.String(), strconv.Itoa(int(r.Port)))
}

// connections is the nat table's connection counters, for the
// vipd_real_server_connections_total collector. Nothing is read before the
// table is applied: a configuration without virtual servers never touches
// nftables.
func (s *lbSet) connections() ([]metrics.RealServerConnections, error) {
	s.mu.Lock()
	applied := s.applied
	s.mu.Unlock()
	if !applied {
		return nil, nil
	}
	cs, err := s.d.sys.LB().Connections()
	out := make([]metrics.RealServerConnections, len(cs))
	for i, c := range cs {
		out[i] = metrics.RealServerConnections{VirtualServer: c.VirtualServer, Address: c.Addr, Port: c.Port, Total: c.Total}
	}
	return out, err
}

// VirtualServerStatus is a snapshot of one virtual server.
type VirtualServerStatus struct {
	Name      string
	Address   netip.Addr
	Port      uint16
	Protocol  string
	Mode      string // nat or proxy
	Scheduler string
	Quorum    int
	Healthy   int
	Up        bool
	// Error is why load balancing cannot run at all, "" when it can.
	Error       string
	RealServers []RealServerStatus
}

// RealServerStatus is a snapshot of one real server.
type RealServerStatus struct {
	Address netip.Addr
	Port    uint16
	Weight  int
	Up      bool
	Local   bool
	// Connections is how many new connections it was sent (its counter
	// in the table, or the proxy's total).
	Connections uint64
	// Live is a proxy's connections to the real server now.
	Live uint64
}

// VirtualServers returns a snapshot of every virtual server, in
// configuration order.
func (d *Daemon) VirtualServers() []VirtualServerStatus {
	s := &d.lbs
	conns := map[string]uint64{}
	cs, _ := s.connections() // a status without counts rather than none
	pcs, _ := s.proxyConnections()
	for _, c := range append(cs, pcs...) {
		conns[c.VirtualServer+" "+netip.AddrPortFrom(c.Address, c.Port).String()] = c.Total
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VirtualServerStatus, 0, len(s.vss))
	for _, v := range s.vss {
		st := VirtualServerStatus{Name: v.cfg.Name, Address: v.cfg.Address, Port: v.cfg.Port, Protocol: v.cfg.Protocol,
			Mode: v.cfg.Mode, Scheduler: v.cfg.Scheduler, Quorum: v.cfg.Quorum, Up: v.up && s.broken == nil}
		if s.broken != nil {
			st.Error = s.broken.Error()
		} else if v.pxErr != nil {
			st.Error = v.pxErr.Error()
		}
		live := liveConns(v)
		for _, r := range v.rs {
			up := r.up && s.broken == nil
			if up {
				st.Healthy++
			}
			st.RealServers = append(st.RealServers, RealServerStatus{Address: r.cfg.Address, Port: r.cfg.Port, Weight: r.cfg.Weight, Up: up, Local: r.local,
				Connections: conns[v.cfg.Name+" "+r.cfg.AddrPort().String()], Live: live[r.cfg.AddrPort()]})
		}
		out = append(out, st)
	}
	return out
}

// lbVirtualServer is v as internal/lb takes it, without backends.
func lbVirtualServer(v config.VirtualServer) lb.VirtualServer {
	lv := lb.VirtualServer{Name: v.Name, Addr: v.Address, Port: v.Port, Protocol: lb.TCP, Persistence: v.Persistence}
	if v.Protocol == "udp" {
		lv.Protocol = lb.UDP
	}
	lv.Scheduler, _ = lb.ParseScheduler(v.Scheduler) // validated
	return lv
}

// rsSpec is the health check of real server r of v: TCP to its address
// and port, or an HTTP GET of scheme://address:port/path.
func rsSpec(v config.VirtualServer, r config.RealServer) health.Spec {
	c := v.Check
	port := r.Port
	if c.Port != 0 {
		port = c.Port
	}
	hostport := netip.AddrPortFrom(r.Address, port).String()
	s := health.Spec{Name: v.Name + "/" + hostport, Interval: c.Interval, Timeout: c.Timeout, Fall: c.Fall, Rise: c.Rise}
	if h := c.HTTP; h != nil {
		s.HTTP = &health.HTTPSpec{URL: h.Scheme + "://" + hostport + h.Path, Method: "GET", Host: h.Host,
			ExpectStatus: h.ExpectStatus, CAFile: h.CAFile, InsecureSkipVerify: h.InsecureSkipVerify}
	} else {
		s.TCP = &health.TCPSpec{Address: hostport}
	}
	return s
}
