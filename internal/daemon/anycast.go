package daemon

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/vipd/vipd/internal/config"
)

// anycastSysctls is implemented by a System that can make the host
// answer ARP for the anycast VIPs on lo only as the router asks: on
// Linux arp_ignore=1 and arp_announce=2 on every interface. It returns
// what it changed, for the log.
type anycastSysctls interface {
	PrepareAnycast() ([]string, error)
}

// anycastSet runs the anycast groups: each group's VIPs are on lo and
// announced while all its tracked checks are up. Check changes land in a
// mailbox its goroutine drains, so that nothing waits for BGP or netlink.
type anycastSet struct {
	d    *Daemon
	mu   sync.Mutex // guards cfg, up
	cfg  []config.Anycast
	up   map[string]bool // group → announced now
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func anycastOwner(name string) string { return "anycast:" + name }

// newAnycastSet is d's anycast groups, not yet started. Its mailbox exists
// from here on: checks, which poke it, start before it does.
func newAnycastSet(d *Daemon) anycastSet {
	return anycastSet{d: d, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// start removes what a crashed run left on lo, then runs the groups of
// cfg.
func (a *anycastSet) start(cfg []config.Anycast) {
	a.mu.Lock()
	a.cfg, a.up = cfg, map[string]bool{}
	a.mu.Unlock()
	if len(cfg) > 0 {
		a.removeFromLo(cfg)
		if s, ok := a.d.sys.(anycastSysctls); ok {
			changed, err := s.PrepareAnycast()
			if err != nil {
				a.d.log.Error("anycast: setting arp_ignore/arp_announce failed; the host may answer ARP for the anycast VIPs on its other interfaces", "err", err)
			}
			for _, c := range changed {
				a.d.log.Info("anycast: sysctl set, so that the VIPs on lo are not answered for on the uplinks", "sysctl", c)
			}
		}
	}
	go a.run()
	a.poke()
}

func (a *anycastSet) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// setConfig takes a reload's groups.
func (a *anycastSet) setConfig(cfg []config.Anycast) {
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	a.poke()
}

func (a *anycastSet) run() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
			a.sync()
		case <-a.stop:
			return
		}
	}
}

// sync announces the groups whose checks are all up and withdraws the
// others (and the groups a reload removed).
func (a *anycastSet) sync() {
	a.mu.Lock()
	cfg := slices.Clone(a.cfg)
	a.mu.Unlock()
	lo, err := a.d.sys.LinkByName("lo")
	if err != nil {
		a.d.log.Error("anycast: no lo interface", "err", err)
		return
	}
	seen := map[string]bool{}
	for _, g := range cfg {
		seen[g.Name] = true
		want := true
		for _, c := range g.TrackChecks {
			want = want && a.d.checks.up(c)
		}
		a.mu.Lock()
		was := a.up[g.Name]
		a.up[g.Name] = want
		a.mu.Unlock()
		log := a.d.log.With("anycast", g.Name)
		switch {
		case want:
			// Idempotent: also puts back a VIP removed under vipd, and
			// applies a reload's VIPs.
			for _, v := range g.VIPs {
				if err := a.d.sys.Add(lo.Index, v, true); err != nil {
					log.Error("adding anycast VIP to lo failed", "vip", v, "err", err)
				}
			}
			a.d.bgp.set(anycastOwner(g.Name), slices.Clone(g.VIPs))
			if !was {
				log.Info("anycast VIPs announced: every tracked check is up", "vips", g.VIPs)
			}
		case was:
			a.d.bgp.set(anycastOwner(g.Name), nil)
			a.remove(lo.Index, g.VIPs, log)
			log.Info("anycast VIPs withdrawn: a tracked check is down", "vips", g.VIPs)
		}
	}
	a.mu.Lock()
	for name := range a.up {
		if !seen[name] {
			delete(a.up, name)
			a.d.bgp.set(anycastOwner(name), nil)
		}
	}
	a.mu.Unlock()
}

func (a *anycastSet) remove(lo int, vips []netip.Prefix, log *slog.Logger) {
	for _, v := range vips {
		if err := a.d.sys.Remove(lo, v); err != nil {
			log.Error("removing anycast VIP from lo failed", "vip", v, "err", err)
		}
	}
}

// removeFromLo removes the groups' VIPs from lo.
func (a *anycastSet) removeFromLo(cfg []config.Anycast) {
	lo, err := a.d.sys.LinkByName("lo")
	if err != nil {
		return
	}
	for _, g := range cfg {
		a.remove(lo.Index, g.VIPs, a.d.log.With("anycast", g.Name))
	}
}

// close stops the goroutine and removes every group's VIPs from lo; the
// routes are already withdrawn (bgpSet.close).
func (a *anycastSet) close() {
	close(a.stop)
	<-a.done
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	a.removeFromLo(cfg)
}
