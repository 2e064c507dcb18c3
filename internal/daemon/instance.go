package daemon

import (
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/ladder"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// instance is one virtual router as its loop holds it: the router, the
// adverts it sends, what it tracks and its series. Only its loop's
// goroutine touches it, except status, an atomic snapshot.
type instance struct {
	cfg config.Instance
	log *slog.Logger
	m   instanceMetrics
	r   *router.Router

	// admit is what the loop's reader checks adverts against and counts
	// them in; fixed for the instance's life (a reload that changes it
	// restarts the instance).
	admit *admission

	// src is the source of adverts, and the address compared on equal
	// priorities; dsts are where adverts go; csum how they are summed.
	src  netip.Addr
	dsts []netip.Addr
	csum vrrp.Checksum
	pkt  vrrp.Packet
	// adverts is the advertisement for each destination at priority
	// advertsPrio, rebuilt when the priority or the source changes.
	adverts     []transport.Outgoing
	advertsPrio uint8

	// tracker holds the tracked checks and interfaces; effective is the
	// priority they leave, faulted whether the instance is out of the
	// election (a tracked item is down, or its interface is gone).
	tracker   *tracker
	effective uint8
	faulted   bool

	// started says it has joined the election (Startup or FAULT);
	// stopping that it left it and waits only to release its VIPs;
	// released, if not nil, is closed once it has (gone).
	started, stopping bool
	released          chan struct{}
	// sendFailing is set after a failed send, so that only the first
	// failure of a run is logged at warn level.
	sendFailing bool

	hooks *hooks // nil without notify commands

	// heapAt is the instance's key in its loop's timer heap, heapIdx its
	// position (-1 when not in it).
	heapAt  time.Time
	heapIdx int

	// cell is the snapshot Status reads, from any goroutine.
	cell *statusCell
}

// statusCell holds an instance's latest Status. The daemon creates it, so
// that Status finds it by name; the loop replaces its value.
type statusCell struct{ p atomic.Pointer[Status] }

// admission is what the loop's reader needs of an instance for every
// packet: the ladder's rules and the counter of adverts it admits.
type admission struct {
	rules    ladder.Rules
	received prometheus.Counter
}

// instanceMetrics are the instance's series, resolved once.
type instanceMetrics struct {
	all                 *metrics.Metrics
	name                string
	state               [router.Fault + 1]prometheus.Gauge
	configured, effect  prometheus.Gauge
	sent                prometheus.Counter
	garp, masterChanges prometheus.Counter
	splitBrain          prometheus.Gauge
	master              netip.Addr // the label currently set in MasterInfo
}

func newInstance(ic config.Instance, cell *statusCell, d *Daemon, log *slog.Logger) *instance {
	m := d.m
	in := &instance{
		cfg:       ic,
		log:       log.With("instance", ic.Name, "vrid", ic.VRID),
		effective: ic.Priority,
		heapIdx:   -1,
		cell:      cell,
		admit:     &admission{rules: ladder.RulesFor(ic), received: m.AdvertsReceived.WithLabelValues(ic.Name)},
	}
	in.pkt = vrrp.Packet{Version: uint8(ic.Version), Type: vrrp.TypeAdvertisement, VRID: ic.VRID}
	if ic.AuthPass != "" {
		in.pkt.AuthType, in.pkt.AuthData = in.admit.rules.AuthType, in.admit.rules.Auth
	}
	in.setInterval()
	for _, v := range ic.VIPs {
		in.pkt.Addresses = append(in.pkt.Addresses, v.Addr())
	}
	in.csum = vrrp.ChecksumPseudoHeader
	if ic.V3ChecksumAsV2 || ic.Version == 2 {
		in.csum = vrrp.ChecksumNoPseudoHeader
	}
	cell.p.Store(&Status{Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Family: ic.Family, State: router.Init,
		Priority: ic.Priority, ConfiguredPriority: ic.Priority, VIPs: ic.VIPs, Since: time.Now()})

	vrid := strconv.Itoa(int(ic.VRID))
	in.m = instanceMetrics{
		all:           m,
		name:          ic.Name,
		configured:    m.Priority.WithLabelValues(ic.Name, "configured"),
		effect:        m.Priority.WithLabelValues(ic.Name, "effective"),
		sent:          m.AdvertsSent.WithLabelValues(ic.Name),
		garp:          m.Announcements.WithLabelValues(ic.Name, announceKind(ic.Family)),
		masterChanges: m.MasterChangesSeen.WithLabelValues(ic.Name),
		splitBrain:    m.SplitBrain.WithLabelValues(ic.Name),
	}
	for s := router.Init; s <= router.Fault; s++ {
		in.m.state[s] = m.InstanceState.WithLabelValues(ic.Name, ic.Interface, vrid, ic.Family, s.String())
	}
	in.m.state[router.Init].Set(1)
	in.m.configured.Set(float64(ic.Priority))
	in.m.effect.Set(float64(ic.Priority))
	in.m.splitBrain.Set(0)
	if hasHooks(ic.Notify) {
		in.hooks = newHooks(ic.Notify.Timeout, d.runCommand, in.log)
	}
	return in
}

func (in *instance) routerConfig() router.Config {
	return router.Config{
		Priority:         in.effective,
		AdvertInterval:   in.cfg.AdvertInterval,
		Preempt:          in.cfg.Preempt,
		PreemptDelay:     in.cfg.PreemptDelay,
		Addr:             in.src,
		AnnounceRounds:   in.cfg.Announce.Count,
		AnnounceInterval: in.cfg.Announce.Interval,
	}
}

func (in *instance) setInterval() {
	if in.cfg.Version == 2 {
		// RFC 3768 §5.3.7: whole seconds.
		in.pkt.Interval = uint16(in.cfg.AdvertInterval / time.Second)
		return
	}
	// RFC 9568 §5.2.7: centiseconds; the config allows only whole ones.
	in.pkt.Interval = uint16(in.cfg.AdvertInterval / (10 * time.Millisecond))
}

// advertsAt returns the advertisement at priority p for each destination.
// The one at the router's own priority is kept for the next interval; a
// priority-0 advert is built afresh.
func (in *instance) advertsAt(p uint8) []transport.Outgoing {
	if p == in.advertsPrio && in.adverts != nil {
		return in.adverts
	}
	in.pkt.Priority = p
	out := make([]transport.Outgoing, 0, len(in.dsts))
	for _, dst := range in.dsts {
		// The checksum covers the destination (RFC 9568 §5.2.8).
		b, err := in.pkt.Append(nil, in.src, dst, in.csum)
		if err != nil {
			in.log.Error("cannot build the advertisement", "dst", dst, "err", err)
			continue
		}
		out = append(out, transport.Outgoing{B: b, Src: in.src, Dst: dst})
	}
	if p != 0 {
		in.adverts, in.advertsPrio = out, p
	}
	return out
}

// resetAdverts drops the cached advertisement (a new source or interval).
func (in *instance) resetAdverts() { in.adverts = nil }

// sendResult logs and counts the outcome of sending one advertisement; the
// first failure of a run is a warning.
func (in *instance) sendResult(err error) {
	switch {
	case err != nil && !in.sendFailing:
		in.sendFailing = true
		in.log.Warn("sending advertisement failed; retrying at every interval", "err", err)
	case err != nil:
		in.log.Debug("sending advertisement failed", "err", err)
	default:
		in.m.sent.Inc()
		if in.sendFailing {
			in.sendFailing = false
			in.log.Info("sending advertisements again")
		}
	}
}

// setStatus updates the snapshot that Status reads.
func (in *instance) setStatus(f func(*Status)) {
	s := *in.cell.p.Load()
	f(&s)
	in.cell.p.Store(&s)
}

// transition reports a state change: metrics, hooks, status, the log.
func (in *instance) transition(a router.Action, master netip.Addr) {
	if in.hooks != nil {
		in.hooks.transition(in.cfg.Notify, in.cfg.Name, a.To, in.effective)
	}
	in.m.state[a.From].Set(0)
	in.m.state[a.To].Set(1)
	in.m.all.Transitions.WithLabelValues(in.cfg.Name, a.From.String(), a.To.String()).Inc()
	in.setStatus(func(s *Status) { s.State, s.Since = a.To, time.Now() })
	attrs := []any{"from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String()}
	if master.IsValid() {
		attrs = append(attrs, "master", master)
	}
	in.log.Info("state change", attrs...)
}

// observeMaster keeps the Master address metrics and status.
func (in *instance) observeMaster(prev netip.Addr) {
	master := in.r.Master()
	if master == prev {
		return
	}
	if prev.IsValid() && master.IsValid() {
		in.m.masterChanges.Inc()
	}
	if in.m.master.IsValid() {
		in.m.all.MasterInfo.DeleteLabelValues(in.cfg.Name, in.m.master.String())
	}
	in.m.master = master
	if master.IsValid() {
		in.m.all.MasterInfo.WithLabelValues(in.cfg.Name, master.String()).Set(1)
	}
	in.setStatus(func(s *Status) { s.Master = master })
}

// gone says the instance has released its VIPs for good.
func (in *instance) gone() {
	if in.released != nil {
		close(in.released)
		in.released = nil
	}
}

// deleteMetrics removes the instance's series after it was removed.
func (in *instance) deleteMetrics() { in.m.all.DeleteInstance(in.cfg.Name) }

// announceKind is the announcements label of a family.
func announceKind(family string) string {
	if family == "ipv6" {
		return "na"
	}
	return "garp"
}

func hasHooks(n config.Notify) bool {
	return len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) > 0
}
