package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
)

// Daemon runs every instance of one configuration, and of the next one on
// Reload: one loop per interface and address family.
type Daemon struct {
	sys System
	log *slog.Logger
	m   *metrics.Metrics

	// transitions counts every instance's state changes (Transitions).
	transitions atomic.Uint64
	// owners numbers the instances for the routes manager (instance.owner).
	owners atomic.Uint64

	// ctx is Run's context; the loops live under it.
	ctx context.Context

	mu  sync.Mutex // guards cfg; held by Reload
	cfg *config.Config
	// cellMu guards cells, the instances' status and counters by name, and
	// order, their names in configuration order. A leaf lock: Status and
	// scrapes never wait for a reload.
	cellMu sync.Mutex
	cells  map[string]*statusCell
	order  []string
	// loopMu guards loops. It is a leaf lock, never held while waiting for
	// anything, so that check and link notifications and pings never wait
	// for a reload (which holds mu while it stops checks).
	loopMu sync.Mutex
	loops  map[loopKey]*loop
	wg     sync.WaitGroup // loop goroutines
	// hookWG waits for the hooks of stopped instances to drain.
	hookWG sync.WaitGroup

	// started is closed once every instance of the first configuration
	// has its sockets open and has joined the election (or entered FAULT);
	// unstarted lists those that have not yet.
	started   chan struct{}
	startMu   sync.Mutex // guards unstarted; never held while waiting
	unstarted map[string]bool

	checks checkSet
	lbs    lbSet
	bgp    bgpSet
	any    anycastSet

	// groupMu guards groups, the running sync groups by name: a leaf
	// lock.
	groupMu sync.Mutex
	groups  map[string]*syncGroup

	linkMu sync.Mutex
	links  map[string]bool // link up (admin up with carrier) by name, from netlink

	// How a check's probe is built and a notify command run: the health
	// package's, but for tests.
	newProbe   func(health.Spec) (health.Probe, error)
	runCommand func(ctx context.Context, argv []string) error
}

// loopKey names a loop: an interface and an address family.
type loopKey struct{ iface, family string }

// New returns a Daemon for cfg. It does nothing until Run.
func New(cfg *config.Config, sys System, m *metrics.Metrics, log *slog.Logger) *Daemon {
	d := &Daemon{cfg: cfg, sys: sys, m: m, log: log, loops: map[loopKey]*loop{}, cells: map[string]*statusCell{}, groups: map[string]*syncGroup{},
		started: make(chan struct{}), links: map[string]bool{}, newProbe: health.NewProbe, runCommand: health.RunCommand}
	d.checks.d = d
	d.lbs.d = d
	d.bgp.d, d.bgp.newA = d, newSpeaker
	d.any = newAnycastSet(d)
	m.BGP.SetSource(d.bgpStats)
	m.Instances.SetSource(d.samples)
	m.Routes.SetSource(sys.Routes().Stats)
	m.Connections.AddSource(d.lbs.connections)
	m.Connections.AddSource(d.lbs.proxyConnections)
	m.Proxy.SetSource(d.lbs.proxyStats)
	return d
}

// samples yields the metrics of every instance, in configuration order.
func (d *Daemon) samples(yield func(*metrics.InstanceSample)) {
	var s metrics.InstanceSample
	for _, c := range d.statusCells() {
		c.sample(&s)
		yield(&s)
	}
}

// statusCells lists the instances' cells in configuration order.
func (d *Daemon) statusCells() []*statusCell {
	d.cellMu.Lock()
	defer d.cellMu.Unlock()
	out := make([]*statusCell, 0, len(d.order))
	for _, name := range d.order {
		if c := d.cells[name]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// Started is closed once every instance of the configuration Run started
// with has its sockets open and has joined the election (or entered FAULT).
// An interface that does not exist yet holds it back until it appears.
func (d *Daemon) Started() <-chan struct{} { return d.started }

// Transitions returns how many state changes the instances have made so
// far, for callers that act once a burst of them is over.
func (d *Daemon) Transitions() uint64 { return d.transitions.Load() }

// Ping asks every loop to answer and waits for all of them, or ctx: a loop
// that cannot answer is wedged. It is what the systemd watchdog and
// /healthz are fed from.
func (d *Daemon) Ping(ctx context.Context) error {
	for _, l := range d.allLoops() {
		if err := l.call(ctx, func() {}); err != nil {
			return fmt.Errorf("the protocol loop of %s (%s) did not answer: %w", l.name, l.family, err)
		}
	}
	return nil
}

// Run starts every instance and blocks until ctx is cancelled, then shuts
// them down: a Master sends priority 0 and hands its VIPs over. Its error
// says that the daemon could not watch the kernel at all.
func (d *Daemon) Run(ctx context.Context) error {
	// The routes outlive the loops: a Master handing over at shutdown
	// keeps its VIPs, and so its routes, until the new Master is heard.
	rctx, stopRoutes := context.WithCancel(context.Background())
	defer stopRoutes()
	routesDone := make(chan struct{})
	go func() {
		defer close(routesDone)
		if err := d.sys.Routes().Run(rctx); err != nil {
			d.log.Error("virtual routes and rules stopped", "err", err)
		}
	}()
	var watchers sync.WaitGroup
	watchers.Add(2)
	go func() {
		defer watchers.Done()
		d.watch(ctx, "link", func() error {
			return d.sys.WatchLinks(ctx, func(l netif.Link) { d.linkEvent(ctx, l) })
		})
	}()
	go func() {
		defer watchers.Done()
		d.watch(ctx, "address", func() error {
			return d.sys.WatchAddrs(ctx, func(u netif.AddrUpdate) { d.addrEvent(u) })
		})
	}()

	d.mu.Lock()
	d.ctx = ctx
	d.startMu.Lock()
	d.unstarted = map[string]bool{}
	for _, ic := range d.cfg.Instances {
		d.unstarted[ic.Name] = true
	}
	d.checkStartedLocked()
	d.startMu.Unlock()
	d.checks.apply(ctx, d.cfg.Checks)
	d.lbs.apply(ctx, d.cfg.VirtualServers)
	d.bgp.apply(d.cfg, d.holdingVIPs)
	d.any.start(d.cfg.Anycast)
	d.applyGroupsLocked(d.cfg)
	d.applyLocked(plan(nil, d.cfg.Instances))
	d.setOrder(d.cfg)
	d.mu.Unlock()

	<-ctx.Done()
	// Routes go first, at once: the router moves to the new Master's
	// path (or another anycast node's) while the loops hand over.
	d.bgp.close()
	d.any.close()
	d.wg.Wait()
	d.groupMu.Lock()
	for _, g := range d.groups {
		g.close(true)
	}
	d.groupMu.Unlock()
	d.hookWG.Wait()
	d.checks.stopAll()
	d.lbs.stop()
	watchers.Wait()
	stopRoutes()
	<-routesDone
	return nil
}

// watch runs a netlink subscription until ctx is done, again after a
// failure.
func (d *Daemon) watch(ctx context.Context, what string, run func() error) {
	for ctx.Err() == nil {
		if err := run(); err != nil && ctx.Err() == nil {
			d.log.Error(what+" notifications failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryEvery):
			}
		}
	}
}

// linkEvent records a link's state for interface tracking and tells the
// loops of that interface.
func (d *Daemon) linkEvent(ctx context.Context, l netif.Link) {
	d.linkMu.Lock()
	prev, known := d.links[l.Name]
	d.links[l.Name] = l.Up
	d.linkMu.Unlock()
	for _, lp := range d.allLoops() {
		if lp.name == l.Name {
			lp.send(func() { lp.linkEvent(l) })
		}
	}
	if known && prev == l.Up {
		return
	}
	if known {
		d.log.Info("link state changed", "iface", l.Name, "up", l.Up)
	}
	d.broadcast(ctx, trackInterface, l.Name, l.Up)
}

// addrEvent hands an address notification to the loop of its interface
// and family.
func (d *Daemon) addrEvent(u netif.AddrUpdate) {
	for _, lp := range d.allLoops() {
		if int(lp.ifindex.Load()) == u.Index && (lp.family == "ipv6") == u.Prefix.Addr().Is6() {
			lp.send(func() { lp.addrEvent(u) })
		}
	}
}

// linkUp says whether the named link is up: from the notifications, or
// asked directly before the first one arrived. A missing link is down.
func (d *Daemon) linkUp(name string) bool {
	d.linkMu.Lock()
	up, known := d.links[name]
	d.linkMu.Unlock()
	if known {
		return up
	}
	l, err := d.sys.LinkByName(name)
	return err == nil && l.Up
}

// broadcast tells every loop that a check or link changed; instances that
// do not track it ignore the message.
func (d *Daemon) broadcast(ctx context.Context, kind trackKind, name string, up bool) {
	if kind == trackCheck {
		d.any.poke()
	}
	for _, l := range d.allLoops() {
		if ctx.Err() != nil {
			return
		}
		l.send(func() { l.track(kind, name, up) })
	}
}

func (d *Daemon) allLoops() []*loop {
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	out := make([]*loop, 0, len(d.loops))
	for _, l := range d.loops {
		out = append(out, l)
	}
	return out
}

// loopLocked returns the loop of an interface and family, starting it if
// needed; d.mu held.
func (d *Daemon) loopLocked(ic config.Instance) *loop {
	k := loopKey{ic.Interface, ic.Family}
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	if l := d.loops[k]; l != nil {
		return l
	}
	l := newLoop(d, ic.Interface, ic.Family)
	d.loops[k] = l
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		l.run(d.ctx)
	}()
	return l
}

// Reload applies cfg in place of the running configuration, as plan says:
// instances that did not change are not touched at all; a changed
// priority, interval, preemption or announcement setting takes effect in
// place; removed instances leave (a Master sends priority 0 and hands its
// VIPs over); new ones start; an instance whose interface, VRID or VIPs
// changed is restarted alone. cfg must be valid (config.Load validates).
// It returns once removed instances have released their VIPs.
func (d *Daemon) Reload(cfg *config.Config) {
	d.mu.Lock()
	if d.ctx == nil { // not running yet
		d.cfg = cfg
		d.mu.Unlock()
		return
	}
	d.checks.apply(d.ctx, cfg.Checks)
	d.lbs.apply(d.ctx, cfg.VirtualServers)
	d.startMu.Lock()
	for name := range d.unstarted {
		if _, ok := findInstance(cfg, name); !ok {
			delete(d.unstarted, name)
		}
	}
	d.checkStartedLocked()
	d.startMu.Unlock()
	stale, fresh := d.applyGroupsLocked(cfg)
	changes := plan(d.cfg.Instances, cfg.Instances)
	for _, c := range changes {
		switch c.kind {
		case changeRemove:
			d.log.Info("reload: removing instance", "instance", c.old.Name)
		case changeRestart:
			d.log.Info("reload: restarting instance", "instance", c.old.Name, "why", c.why)
		case changeAdd:
			d.log.Info("reload: adding instance", "instance", c.new.Name)
		case changeUpdate:
			d.log.Info("reload: updating instance in place", "instance", c.new.Name)
		}
	}
	released := d.applyLocked(changes)
	for _, g := range fresh {
		d.resync(g)
	}
	// Loops left without instances stop once their last one has handed
	// over.
	used := map[loopKey]bool{}
	for _, ic := range cfg.Instances {
		used[loopKey{ic.Interface, ic.Family}] = true
	}
	d.loopMu.Lock()
	for k, l := range d.loops {
		if !used[k] {
			l.send(func() { l.closing = true })
			delete(d.loops, k)
		}
	}
	d.loopMu.Unlock()
	d.cfg = cfg
	d.setOrder(cfg)
	d.bgp.apply(cfg, d.holdingVIPs)
	d.any.setConfig(cfg.Anycast)
	d.mu.Unlock()
	for _, g := range stale {
		g.close(false)
		if d.syncGroup(g.name) == nil {
			d.m.DeleteSyncGroup(g.name)
		}
	}

	bound := time.NewTimer(2 * shutdownMax)
	defer bound.Stop()
	for _, c := range released {
		select {
		case <-c:
		case <-bound.C:
			d.log.Warn("reload: a removed instance is still handing over its VIPs")
			return
		}
	}
}

// applyLocked carries out a plan; d.mu held. Each change is a message to
// the loop concerned, which carries them out in order. It returns a channel
// for each instance stopped, closed once it has released its VIPs.
func (d *Daemon) applyLocked(changes []change) []chan struct{} {
	var released []chan struct{}
	for _, c := range changes {
		switch c.kind {
		case changeRemove, changeRestart:
			d.loopMu.Lock()
			l := d.loops[loopKey{c.old.Interface, c.old.Family}]
			d.loopMu.Unlock()
			if l != nil {
				name, done := c.old.Name, make(chan struct{})
				released = append(released, done)
				if !l.send(func() { l.stop(name, done) }) {
					close(done)
				}
			}
			d.cellMu.Lock()
			delete(d.cells, c.old.Name)
			d.cellMu.Unlock()
		}
		switch c.kind {
		case changeAdd, changeRestart:
			cell := &statusCell{}
			cell.p.Store(&Status{Name: c.new.Name, Interface: c.new.Interface, VRID: c.new.VRID, Family: c.new.Family,
				State: router.Init, Priority: c.new.Priority, ConfiguredPriority: c.new.Priority, VIPs: c.new.VIPs, SyncGroup: c.new.SyncGroup})
			d.cellMu.Lock()
			d.cells[c.new.Name] = cell
			d.cellMu.Unlock()
			l, ic := d.loopLocked(c.new), c.new
			l.send(func() { l.add(ic, cell) })
		case changeUpdate:
			l, ic := d.loopLocked(c.new), c.new
			l.send(func() { l.update(ic) })
		}
	}
	return released
}

// markStarted records that the named instance has started.
func (d *Daemon) markStarted(name string) {
	d.startMu.Lock()
	defer d.startMu.Unlock()
	delete(d.unstarted, name)
	d.checkStartedLocked()
}

// checkStartedLocked closes started when nothing is left; d.startMu held.
func (d *Daemon) checkStartedLocked() {
	if len(d.unstarted) == 0 {
		select {
		case <-d.started:
		default:
			close(d.started)
		}
	}
}

func findInstance(cfg *config.Config, name string) (config.Instance, bool) {
	for _, ic := range cfg.Instances {
		if ic.Name == name {
			return ic, true
		}
	}
	return config.Instance{}, false
}

// Cleanup removes every VIP of cfg from its interface, and vipd's
// load-balancing table: what a crashed run may have left behind.
// Interfaces that do not exist are skipped.
func Cleanup(cfg *config.Config, sys System, log *slog.Logger) error {
	var errs []error
	for _, ic := range cfg.Instances {
		link, err := sys.LinkByName(ic.Interface)
		if err != nil {
			log.Debug("cleanup: interface not found", "iface", ic.Interface, "err", err)
			continue
		}
		if err := sys.PrepareInterface(ic.Interface); err != nil {
			log.Warn("cannot set promote_secondaries", "iface", ic.Interface, "err", err)
		}
		for _, vip := range ic.VIPs {
			if err := sys.Remove(link.Index, vip); err != nil {
				err = fmt.Errorf("instance %s: removing %s: %w", ic.Name, vip, err)
				log.Error("removing VIPs failed", "instance", ic.Name, "err", err)
				errs = append(errs, err)
			}
		}
	}
	if lo, err := sys.LinkByName("lo"); err == nil {
		for _, g := range cfg.Anycast {
			for _, vip := range g.VIPs {
				if err := sys.Remove(lo.Index, vip); err != nil {
					err = fmt.Errorf("anycast %s: removing %s from lo: %w", g.Name, vip, err)
					log.Error("removing anycast VIPs failed", "anycast", g.Name, "err", err)
					errs = append(errs, err)
				}
			}
		}
	}
	if err := sys.CleanupVMACs(); err != nil {
		log.Error("removing virtual MAC interfaces failed", "err", err)
		errs = append(errs, fmt.Errorf("virtual MAC interfaces: %w", err))
	}
	if err := sys.CleanupRoutes(); err != nil {
		log.Error("removing virtual routes and rules failed", "err", err)
		errs = append(errs, fmt.Errorf("virtual routes and rules: %w", err))
	}
	// The load-balancing table is removed whatever the configuration says,
	// since a crashed run's may have had virtual servers; a kernel without
	// nftables is an error only for a configuration that needs it (nat).
	if err := sys.LB().Remove(); err != nil {
		if slices.ContainsFunc(cfg.VirtualServers, func(v config.VirtualServer) bool { return !isProxy(v) }) {
			log.Error("removing the load-balancing table failed", "err", err)
			errs = append(errs, fmt.Errorf("load-balancing table: %w", err))
		} else {
			log.Debug("cleanup: no load-balancing table removed", "err", err)
		}
	}
	return errors.Join(errs...)
}

// Status is a snapshot of one instance.
type Status struct {
	Name               string
	Interface          string
	VRID               uint8
	Family             string
	State              router.State
	Priority           uint8 // effective
	ConfiguredPriority uint8
	Master             netip.Addr
	Since              time.Time
	VIPs               []netip.Prefix
	FailingChecks      []string
	// Auth describes the instance's auth_hmac, "" without: its mode, and
	// the key it signs with.
	Auth string
	// SyncGroup names the instance's sync group, "" for none.
	SyncGroup string
}

// Status returns a snapshot of every instance, in configuration order.
func (d *Daemon) Status() []Status {
	cells := d.statusCells()
	out := make([]Status, 0, len(cells))
	for _, c := range cells {
		out = append(out, *c.p.Load())
	}
	return out
}

// setOrder records the configuration order of the instances.
func (d *Daemon) setOrder(cfg *config.Config) {
	order := make([]string, 0, len(cfg.Instances))
	for _, ic := range cfg.Instances {
		order = append(order, ic.Name)
	}
	d.cellMu.Lock()
	d.order = order
	d.cellMu.Unlock()
}
