package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
)

// retryEvery is how often a missing interface or address is looked up again.
const retryEvery = time.Second

// Daemon runs every instance of one configuration, and of the next one on
// Reload.
type Daemon struct {
	sys System
	log *slog.Logger
	m   *metrics.Metrics

	// transitions counts every instance's state changes (Transitions).
	transitions atomic.Uint64

	// ctx is Run's context; instances and interfaces live under it.
	ctx context.Context

	mu     sync.Mutex // guards cfg, ifaces
	cfg    *config.Config
	ifaces map[string]*iface
	wg     sync.WaitGroup // interface goroutines

	// started is closed once every instance of the first configuration
	// has its sockets open and has joined the election (or entered FAULT);
	// unstarted lists those that have not yet.
	started   chan struct{}
	startMu   sync.Mutex // guards unstarted; never held while waiting
	unstarted map[string]bool

	checks checkSet

	// regMu guards reg, every instance goroutine that runs. It is a leaf
	// lock, never held while waiting for anything, so that check and link
	// updates and pings never wait for a reload (which holds mu while it
	// stops instances and checks).
	regMu sync.Mutex
	reg   map[*instance]struct{}

	linkMu sync.Mutex
	links  map[string]bool // link up (admin up with carrier) by name, from netlink
}

// New returns a Daemon for cfg. It does nothing until Run.
func New(cfg *config.Config, sys System, m *metrics.Metrics, log *slog.Logger) *Daemon {
	d := &Daemon{cfg: cfg, sys: sys, m: m, log: log, ifaces: map[string]*iface{}, started: make(chan struct{}), links: map[string]bool{},
		reg: map[*instance]struct{}{}}
	d.checks.d = d
	return d
}

// Started is closed once every instance of the configuration Run started
// with has its sockets open and has joined the election (or entered FAULT).
// An interface that does not exist yet holds it back until it appears.
func (d *Daemon) Started() <-chan struct{} { return d.started }

// Transitions returns how many state changes the instances have made so
// far, for callers that act once a burst of them is over.
func (d *Daemon) Transitions() uint64 { return d.transitions.Load() }

// Ping asks every running instance's driver loop to answer and waits for
// all of them, or ctx: a loop that cannot answer is wedged. It is what the
// systemd watchdog is fed from.
func (d *Daemon) Ping(ctx context.Context) error {
	var replies []chan struct{}
	for _, in := range d.running() {
		if r := in.ping(); r != nil {
			replies = append(replies, r)
		}
	}
	for _, r := range replies {
		select {
		case <-r:
		case <-ctx.Done():
			return fmt.Errorf("an instance's protocol loop did not answer: %w", ctx.Err())
		}
	}
	return nil
}

// Run starts every instance and blocks until ctx is cancelled, then shuts
// them down: a Master sends priority 0 and removes its VIPs.
func (d *Daemon) Run(ctx context.Context) error {
	linksDone := make(chan struct{})
	go func() {
		defer close(linksDone)
		d.watchLinks(ctx)
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
	for _, ic := range d.cfg.Instances {
		d.startLocked(ic)
	}
	d.mu.Unlock()
	<-ctx.Done()
	d.wg.Wait()
	d.checks.stopAll()
	<-linksDone
	return nil
}

// watchLinks follows link state changes for interface tracking until ctx
// is done.
func (d *Daemon) watchLinks(ctx context.Context) {
	for ctx.Err() == nil {
		err := d.sys.WatchLinks(ctx, func(l netif.Link) { d.setLink(ctx, l.Name, l.Up) })
		if err != nil && ctx.Err() == nil {
			d.log.Error("link notifications failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryEvery):
			}
		}
	}
}

func (d *Daemon) setLink(ctx context.Context, name string, up bool) {
	d.linkMu.Lock()
	prev, known := d.links[name]
	d.links[name] = up
	d.linkMu.Unlock()
	if known && prev == up {
		return
	}
	if known {
		d.log.Info("link state changed", "iface", name, "up", up)
	}
	d.broadcast(ctx, trackInterface, name, up)
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

// broadcast tells every running instance that a check or link changed;
// instances that do not track it ignore the message.
func (d *Daemon) broadcast(ctx context.Context, kind trackKind, name string, up bool) {
	u := trackUpdate{kind: kind, name: name, up: up}
	for _, in := range d.running() {
		select {
		case in.trackc <- u:
		case <-in.done:
		case <-ctx.Done():
			return
		}
	}
}

// startLocked starts ic on its interface, creating the interface's runner
// if it has none.
func (d *Daemon) startLocked(ic config.Instance) {
	f := d.ifaces[ic.Interface]
	if f == nil {
		f = newIface(d, ic.Interface)
		d.ifaces[ic.Interface] = f
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			f.run()
		}()
	}
	f.start(ic)
}

// Reload applies cfg in place of the running configuration: instances that
// did not change are not touched at all; a changed priority, interval,
// preemption or announcement setting takes effect in place; removed
// instances leave (a Master sends priority 0 and releases its VIPs); new
// ones start; an instance whose interface, VRID or VIPs changed is
// restarted alone. cfg must be valid (config.Load validates).
func (d *Daemon) Reload(cfg *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil { // not running yet
		d.cfg = cfg
		return
	}
	d.checks.apply(d.ctx, cfg.Checks)
	d.startMu.Lock()
	for name := range d.unstarted {
		if _, ok := findInstance(cfg, name); !ok {
			delete(d.unstarted, name)
		}
	}
	d.checkStartedLocked()
	d.startMu.Unlock()
	old := map[string]config.Instance{}
	for _, ic := range d.cfg.Instances {
		old[ic.Name] = ic
	}
	next := map[string]bool{}
	for _, ic := range cfg.Instances {
		next[ic.Name] = true
	}
	// Stop removed and restarted instances first, so that a VRID or VIP
	// that moves between instances is free when the new one starts.
	for _, oc := range d.cfg.Instances {
		nc, ok := findInstance(cfg, oc.Name)
		switch {
		case !ok:
			d.log.Info("reload: removing instance", "instance", oc.Name)
			d.ifaces[oc.Interface].stop(oc.Name)
		case needsRestart(oc, nc):
			d.log.Info("reload: restarting instance", "instance", oc.Name, "why", restartWhy(oc, nc))
			d.ifaces[oc.Interface].stop(oc.Name)
		}
	}
	for _, nc := range cfg.Instances {
		oc, ok := old[nc.Name]
		switch {
		case !ok:
			d.log.Info("reload: adding instance", "instance", nc.Name)
			d.startLocked(nc)
		case needsRestart(oc, nc):
			d.startLocked(nc)
		case !equalInstance(oc, nc):
			d.log.Info("reload: updating instance in place", "instance", nc.Name)
			d.ifaces[nc.Interface].update(nc)
		}
	}
	for name, f := range d.ifaces {
		if f.empty() {
			f.close()
			delete(d.ifaces, name)
		}
	}
	d.cfg = cfg
}

// register and unregister keep the set of running instances.
func (d *Daemon) register(in *instance) {
	d.regMu.Lock()
	d.reg[in] = struct{}{}
	d.regMu.Unlock()
}

func (d *Daemon) unregister(in *instance) {
	d.regMu.Lock()
	delete(d.reg, in)
	d.regMu.Unlock()
}

// running lists the running instances.
func (d *Daemon) running() []*instance {
	d.regMu.Lock()
	defer d.regMu.Unlock()
	out := make([]*instance, 0, len(d.reg))
	for in := range d.reg {
		out = append(out, in)
	}
	return out
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

// needsRestart says whether going from a to b needs the instance restarted:
// its identity on the wire or the addresses it owns changed.
func needsRestart(a, b config.Instance) bool { return restartWhy(a, b) != "" }

func restartWhy(a, b config.Instance) string {
	switch {
	case a.Interface != b.Interface:
		return "interface changed"
	case a.VRID != b.VRID:
		return "vrid changed"
	case !slices.Equal(a.VIPs, b.VIPs):
		return "vips changed"
	case a.Version != b.Version:
		return "version changed"
	case a.AuthPass != b.AuthPass:
		return "auth_pass changed"
	case !slices.Equal(a.UnicastPeers, b.UnicastPeers) || a.UnicastSource != b.UnicastSource:
		return "unicast peers or source changed"
	case a.V3ChecksumAsV2 != b.V3ChecksumAsV2:
		return "checksum mode changed"
	case a.Version == 2 && a.AdvertInterval != b.AdvertInterval:
		return "VRRPv2 interval changed (adverts must match it)"
	}
	return ""
}

// equalInstance says a and b are the same in every field, so that a field
// added to config.Instance can never be missed by a reload.
func equalInstance(a, b config.Instance) bool { return reflect.DeepEqual(a, b) }

// Cleanup removes every VIP of cfg from its interface: what a crashed run
// may have left behind. Interfaces that do not exist are skipped.
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
		errs = append(errs, removeVIPs(sys, link.Index, ic, log))
	}
	return errors.Join(errs...)
}

func removeVIPs(sys AddrSet, ifindex int, ic config.Instance, log *slog.Logger) error {
	var errs []error
	for _, vip := range ic.VIPs {
		if err := sys.Remove(ifindex, vip); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: removing %s: %w", ic.Name, vip, err))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Error("removing VIPs failed", "instance", ic.Name, "err", err)
	}
	return err
}

// retry calls fn until it succeeds or ctx ends, logging the first failure at
// warn level and the rest at debug.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil {
			if n > 0 {
				log.Info("recovered: " + what)
			}
			return nil
		}
		if n == 0 {
			log.Warn(what, "err", err, "retry_every", retryEvery)
		} else {
			log.Debug(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryEvery):
		}
	}
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
}

// Status returns a snapshot of every instance, in configuration order.
func (d *Daemon) Status() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Status, 0, len(d.cfg.Instances))
	for _, ic := range d.cfg.Instances {
		if f := d.ifaces[ic.Interface]; f != nil {
			if s, ok := f.status(ic.Name); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func vridLabel(v uint8) string { return strconv.Itoa(int(v)) }
