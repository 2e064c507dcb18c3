package daemon

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
)

// RouteAnnouncer announces routes to BGP peers: internal/bgp's Speaker, or a
// fake in tests. Set and Reconfigure never block on the network, so that
// a loop can call them.
type RouteAnnouncer interface {
	Set(owner string, prefixes []netip.Prefix)
	Reconfigure(config.BGP)
	Peers() []bgp.Peer
	Announced() []netip.Prefix
	// Close withdraws every route, waits briefly, and closes the
	// sessions.
	Close()
}

// bgpSet is the daemon's BGP speaker, started only when the
// configuration has a bgp section: without one nothing of GoBGP runs.
type bgpSet struct {
	d    *Daemon
	mu   sync.Mutex     // a leaf lock: guards a, want, closed
	a    RouteAnnouncer // nil without a bgp section
	want map[string][]netip.Prefix
	// closed: vipd is stopping, the routes are withdrawn for good.
	closed bool
	newA   func(config.BGP, *slog.Logger) RouteAnnouncer
}

// hostRoutes are the VIPs as /32 or /128 routes.
func hostRoutes(vips []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(vips))
	for i, v := range vips {
		out[i] = netip.PrefixFrom(v.Addr(), v.Addr().BitLen())
	}
	return out
}

// held says that in's VIPs are on this node now (or not): while they are,
// an instance with bgp: true announces them. Any goroutine; never blocks.
func (b *bgpSet) held(ic config.Instance, on bool) {
	if !ic.BGP && !on {
		// A reload may have turned bgp off: withdraw anyway.
		b.set(ic.Name, nil)
		return
	}
	if !ic.BGP {
		return
	}
	if on {
		b.set(ic.Name, hostRoutes(ic.VIPs))
	} else {
		b.set(ic.Name, nil)
	}
}

func (b *bgpSet) set(owner string, ps []netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.want == nil {
		b.want = map[string][]netip.Prefix{}
	}
	_, had := b.want[owner]
	if ps == nil {
		if !had {
			return
		}
		delete(b.want, owner)
	} else {
		b.want[owner] = ps
	}
	if b.a != nil {
		b.a.Set(owner, ps)
	}
}

// apply starts, reconfigures or stops the speaker for cfg, and withdraws
// what instances no longer announce; holding says which instances
// are Master now.
func (b *bgpSet) apply(cfg *config.Config, holding func(name string) bool) {
	b.mu.Lock()
	var stop RouteAnnouncer
	switch {
	case b.closed:
	case cfg.BGP == nil && b.a != nil:
		stop, b.a = b.a, nil
		b.d.log.Info("bgp section removed; stopping the BGP speaker")
	case cfg.BGP != nil && b.a == nil:
		b.a = b.newA(*cfg.BGP, b.d.log.With("component", "bgp"))
		for owner, ps := range b.want {
			b.a.Set(owner, ps)
		}
	case cfg.BGP != nil:
		b.a.Reconfigure(*cfg.BGP)
	}
	b.mu.Unlock()
	if stop != nil {
		stop.Close()
	}
	byName := map[string]config.Instance{}
	for _, ic := range cfg.Instances {
		byName[ic.Name] = ic
	}
	b.mu.Lock()
	var owners []string
	for owner := range b.want {
		owners = append(owners, owner)
	}
	b.mu.Unlock()
	for _, owner := range owners {
		if ic, ok := byName[owner]; !ok || !ic.BGP {
			b.set(owner, nil)
		}
	}
	for _, ic := range cfg.Instances {
		if ic.BGP && holding(ic.Name) {
			b.set(ic.Name, hostRoutes(ic.VIPs))
		}
	}
}

// close withdraws every route and closes the sessions; later sets are
// ignored.
func (b *bgpSet) close() {
	b.mu.Lock()
	a := b.a
	b.a, b.closed = nil, true
	b.mu.Unlock()
	if a != nil {
		a.Close()
	}
}

// status is the speaker's peers and routes; ok false without a speaker.
func (b *bgpSet) status() (BGPStatus, bool) {
	b.mu.Lock()
	a := b.a
	b.mu.Unlock()
	if a == nil {
		return BGPStatus{}, false
	}
	return BGPStatus{Peers: a.Peers(), Announced: a.Announced()}, true
}

// BGPStatus is what the BGP speaker does now.
type BGPStatus struct {
	Peers     []bgp.Peer     `json:"peers"`
	Announced []netip.Prefix `json:"announced"`
}

// BGP returns the BGP speaker's status; ok is false without a bgp
// section.
func (d *Daemon) BGP() (BGPStatus, bool) { return d.bgp.status() }

// bgpStats feeds the metrics.
func (d *Daemon) bgpStats() (metrics.BGPStats, bool) {
	st, ok := d.bgp.status()
	if !ok {
		return metrics.BGPStats{}, false
	}
	s := metrics.BGPStats{Routes: len(st.Announced)}
	for _, p := range st.Peers {
		up := 0.0
		if p.Established() && !p.Since.IsZero() {
			up = time.Since(p.Since).Seconds()
		}
		s.Peers = append(s.Peers, metrics.BGPPeerSample{Peer: p.Address.String(), State: bgp.StateValue(p.State), Uptime: up})
	}
	return s, true
}

// holdingVIPs says whether the named instance is Master now.
func (d *Daemon) holdingVIPs(name string) bool {
	d.cellMu.Lock()
	c := d.cells[name]
	d.cellMu.Unlock()
	return c != nil && c.p.Load().State == router.Master
}
