package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// instance drives one virtual router. Only its run goroutine touches the
// router, the timers and the buffers; snap is guarded by mu.
type instance struct {
	cfg  config.Instance
	f    *iface
	p    *plane
	log  *slog.Logger
	m    instanceMetrics
	wire wire // read by the plane's receive loop; fixed for the instance's life

	// src is the source of adverts, and the address compared on equal
	// priorities; dsts are where adverts go. Set when the plane is ready.
	src  netip.Addr
	dsts []netip.Addr
	csum vrrp.Checksum

	cancel  context.CancelFunc
	done    chan struct{}
	events  chan received
	updates chan *config.Instance
	pings   chan chan struct{}
	trackc  chan trackUpdate

	r       *router.Router
	pkt     vrrp.Packet
	buf     []byte // for adverts sent by the driver itself, grown as needed
	actions []router.Action
	taken   []received // reused by takeAdverts

	// announceLeft counts the gratuitous ARP rounds still to send;
	// announceArmed says the announce timer is running.
	announceLeft  int
	announceArmed bool
	// sendFailing is set after a failed send, so that only the first
	// failure of a run is logged at warn level. The plane's sender sets it
	// too.
	sendFailing atomic.Bool
	// rivalSeen is when another router last advertised as Master while
	// this one was Master; rivalAdverts counts such adverts in a row.
	rivalSeen    time.Time
	rivalAdverts int

	// tracker holds the tracked checks and interfaces; effective is the
	// priority they leave, faulted whether they put the instance in FAULT.
	tracker   *tracker
	effective uint8
	faulted   bool

	hooks *hooks // nil without notify commands

	// handingOver is set while a Master shuts down: the VIPs stay until
	// the new Master advertises (removalPending), so that clients reach
	// them until the new Master's announcements move them.
	handingOver, removalPending bool

	mu   sync.Mutex
	snap Status

	// routine is shared with the plane's receive loop (see deliver).
	routine routineAdverts
}

// routineAdverts lets the receive loop keep a Backup's routine adverts —
// its Master advertising again, unchanged (router.Routine) — off the
// driver's path: the loop notes the latest one instead of queueing it, and
// the driver steps it when its Master_Down_Timer is about to run out, or
// before anything else it steps. A Backup's driver thus wakes about once per
// Master_Down_Interval instead of at every advert, with the same outcome:
// stepping the latest routine advert at its arrival time leaves the router
// as stepping each would have.
//
// Adverts reach the driver in the order they arrived: whatever is queued in
// events arrived before the noted one, since the receive loop queues the
// noted one ahead of any advert it queues after it.
type routineAdverts struct {
	mu      sync.Mutex
	ev      router.Event // the routine advert; valid if ok
	ok      bool
	latest  received // the latest routine advert not yet stepped; valid if pending
	pending bool
}

// instanceMetrics are the instance's series, resolved once.
type instanceMetrics struct {
	all                 *metrics.Metrics
	name                string
	state               map[router.State]prometheus.Gauge
	configured, effect  prometheus.Gauge
	sent, received      prometheus.Counter
	garp, masterChanges prometheus.Counter
	splitBrain          prometheus.Gauge
	master              netip.Addr // the label currently set in MasterInfo
}

func newInstance(ic config.Instance, f *iface, p *plane) *instance {
	in := &instance{
		cfg:  ic,
		f:    f,
		p:    p,
		wire: newWire(ic),
		log:  f.log.With("instance", ic.Name, "vrid", ic.VRID),
		done: make(chan struct{}),
		// Routine adverts are only noted (see routineAdverts): the queue
		// holds the others, a handful per interval, and absorbs a burst.
		events:  make(chan received, 32),
		updates: make(chan *config.Instance, 4),
		pings:   make(chan chan struct{}, 1),
		trackc:  make(chan trackUpdate, 16),
		// Until the tracker is built in run, nothing is known to be down.
		effective: ic.Priority,
	}
	in.pkt = vrrp.Packet{Version: uint8(ic.Version), Type: vrrp.TypeAdvertisement, VRID: ic.VRID}
	if ic.AuthPass != "" {
		in.pkt.AuthType, in.pkt.AuthData = in.wire.authType, in.wire.auth
	}
	in.setPacket()
	for _, v := range ic.VIPs {
		in.pkt.Addresses = append(in.pkt.Addresses, v.Addr())
	}
	in.csum = vrrp.ChecksumPseudoHeader
	if ic.V3ChecksumAsV2 || ic.Version == 2 {
		in.csum = vrrp.ChecksumNoPseudoHeader
	}
	in.snap = Status{Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Family: ic.Family, State: router.Init,
		Priority: ic.Priority, ConfiguredPriority: ic.Priority, VIPs: ic.VIPs, Since: time.Now()}

	m := f.d.m
	vrid := vridLabel(ic.VRID)
	in.m = instanceMetrics{
		all:           m,
		name:          ic.Name,
		state:         map[router.State]prometheus.Gauge{},
		configured:    m.Priority.WithLabelValues(ic.Name, "configured"),
		effect:        m.Priority.WithLabelValues(ic.Name, "effective"),
		sent:          m.AdvertsSent.WithLabelValues(ic.Name),
		received:      m.AdvertsReceived.WithLabelValues(ic.Name),
		garp:          m.Announcements.WithLabelValues(ic.Name, announceKind(ic.Family)),
		masterChanges: m.MasterChangesSeen.WithLabelValues(ic.Name),
		splitBrain:    m.SplitBrain.WithLabelValues(ic.Name),
	}
	for _, s := range []router.State{router.Init, router.Backup, router.Master, router.Fault} {
		in.m.state[s] = m.InstanceState.WithLabelValues(ic.Name, ic.Interface, vrid, ic.Family, s.String())
	}
	in.m.state[router.Init].Set(1)
	in.m.configured.Set(float64(ic.Priority))
	in.m.effect.Set(float64(ic.Priority))
	in.m.splitBrain.Set(0)
	return in
}

// trackUpdate says a check or link went up or down.
type trackUpdate struct {
	kind trackKind
	name string
	up   bool
}

func (in *instance) routerConfig() router.Config {
	return router.Config{
		Priority:       in.effective,
		AdvertInterval: in.cfg.AdvertInterval,
		Preempt:        in.cfg.Preempt,
		PreemptDelay:   in.cfg.PreemptDelay,
		Addr:           in.src,
	}
}

func (in *instance) setPacket() {
	in.pkt.Priority = in.cfg.Priority
	if in.cfg.Version == 2 {
		// RFC 3768 §5.3.7: whole seconds.
		in.pkt.Interval = uint16(in.cfg.AdvertInterval / time.Second)
		return
	}
	// RFC 9568 §5.2.7: centiseconds; the config allows only whole ones.
	in.pkt.Interval = uint16(in.cfg.AdvertInterval / (10 * time.Millisecond))
}

// run is the instance's driver loop: the only goroutine that steps the
// router. It returns after the shutdown actions have been carried out.
func (in *instance) run(ctx context.Context) {
	protocol := time.NewTimer(time.Hour)
	protocol.Stop()
	announce := time.NewTimer(time.Hour)
	announce.Stop()
	defer protocol.Stop()
	defer announce.Stop()

	defer func() {
		if in.hooks != nil {
			in.hooks.close()
		}
	}()
	if !in.start(ctx) {
		return
	}

	var armed time.Time
	var g stallGrace
	for {
		in.syncRoutine()
		target := in.r.Deadline()
		switch {
		case in.r.State() == router.Master:
			// The plane's sender carries out the Adver_Timer; the
			// driver only wakes to clear the split-brain gauge.
			target = time.Time{}
			if !in.rivalSeen.IsZero() {
				target = in.rivalSeen.Add(in.rivalWindow() + time.Millisecond)
			}
		case !g.of.IsZero() && g.of.Equal(target):
			target = g.until
		case !target.IsZero() && in.r.State() == router.Backup:
			target = target.Add(-spinEarly)
		}
		if !target.Equal(armed) {
			armed = target
			protocol.Stop()
			if !target.IsZero() {
				protocol.Reset(time.Until(target))
			}
		}
		switch {
		case in.announceLeft > 0 && !in.announceArmed:
			announce.Reset(in.cfg.Announce.Interval)
			in.announceArmed = true
		case in.announceLeft == 0 && in.announceArmed:
			announce.Stop()
			in.announceArmed = false
		}
		select {
		case <-ctx.Done():
			in.shutdown()
			return
		case r := <-in.events:
			in.stepAt(r.at, r.ev)
		case <-protocol.C:
			armed = time.Time{}
			in.timerFired(&g)
		case <-announce.C:
			in.announceArmed = false
			in.announceRound()
		case ic := <-in.updates:
			// Adverts so far are judged by the configuration they
			// arrived under.
			in.catchUp()
			in.reconfigure(*ic)
		case reply := <-in.pings:
			close(reply)
		case u := <-in.trackc:
			if in.tracker.set(u.kind, u.name, u.up) {
				in.catchUp()
				in.retrack()
			}
		}
	}
}

// start prepares the instance and joins the election; it reports false if
// ctx ended first.
func (in *instance) start(ctx context.Context) bool {
	// Before joining the election, take away whatever a crashed earlier run
	// left, so that two hosts never answer for a VIP.
	_ = removeVIPs(in.f.d.sys, in.f.link.Index, in.cfg, in.log)
	if hasHooks(in.cfg.Notify) {
		in.hooks = newHooks(in.cfg.Notify.Timeout, in.log)
	}
	select {
	case <-in.p.ready:
	case <-ctx.Done():
		return false
	}
	in.src = in.p.src
	switch {
	case in.cfg.UnicastSource.IsValid():
		in.src = in.cfg.UnicastSource
	case len(in.cfg.UnicastPeers) > 0 && in.cfg.Family == "ipv6":
		// Unicast peers are listed by their global addresses and check
		// ours against their lists, so a link-local source will not do.
		err := retry(ctx, in.log, "waiting for a global IPv6 address to send unicast adverts from", func() error {
			var err error
			in.src, err = in.f.d.sys.PrimaryIPv6(in.f.link.Index, in.cfg.VIPs)
			return err
		})
		if err != nil {
			return false
		}
	}
	in.dsts = in.cfg.UnicastPeers
	if len(in.dsts) == 0 {
		in.dsts = []netip.Addr{in.p.group()}
	}
	in.r = router.New(in.routerConfig())

	// A service that is down at start keeps the instance out of the
	// election from the first moment.
	in.tracker = newTracker(in.cfg, in.f.d.checks.up)
	in.refreshLinks()
	if in.retrack(); !in.faulted {
		in.step(router.Event{Kind: router.Startup})
	}
	in.f.d.markStarted(in.cfg.Name)
	return true
}

// stallGrace is the grace a late Master_Down_Timer gets (see staleAfter):
// of is the deadline it was given for, until when it ends.
type stallGrace struct{ of, until time.Time }

// timerFired handles the protocol timer: in Master the split-brain window;
// in Backup the Master_Down_Timer, after stepping every advert that
// arrived before it.
func (in *instance) timerFired(g *stallGrace) {
	if in.r.State() == router.Master {
		in.observe(time.Now(), router.Event{Kind: router.Timeout}, true, in.r.Master())
		return
	}
	// Adverts that arrived before the timer fired go first: the select in
	// run picks at random among ready cases, and the Master's routine
	// adverts were only noted.
	in.catchUp()
	if in.r.State() == router.Backup && (time.Until(in.r.Deadline()) > spinEarly || in.spinUntilDeadline()) {
		return
	}
	dl := in.r.Deadline()
	if in.r.State() == router.Backup && !dl.IsZero() && time.Since(dl) > staleAfter && !g.of.Equal(dl) {
		// Fired late: the process was stopped or starved, and the Master's
		// adverts may still sit unread in the socket. Let the receive loop
		// catch up before claiming the VIPs.
		*g = stallGrace{of: dl, until: time.Now().Add(staleGrace)}
		return
	}
	g.of = time.Time{}
	in.step(router.Event{Kind: router.Timeout})
}

// handoverMax bounds how long a Master that shuts down keeps its VIPs
// waiting for a new Master's first advertisement. It covers the Skew_Time
// of every Backup up to a 650 ms interval, and of Backups of priority 90 or
// more at a 1 s interval, while shutdown stays within a second.
const handoverMax = 650 * time.Millisecond

// shutdown leaves the election. A Master sends priority 0 (RFC 9568
// §6.4.3), so that a Backup takes over after its Skew_Time, and removes its
// VIPs make-before-break: once the new Master's first advertisement is
// heard — it has then added the VIPs and is announcing them — or after
// handoverMax if none is (the longest Skew_Time is one interval). Clients thus never find the VIPs on neither host, and two hosts
// hold them only for as long as the new Master's announcement takes to
// reach the clients. A FAULT, unlike a shutdown, releases them at once: the
// service behind them is gone.
func (in *instance) shutdown() {
	in.catchUp()
	in.handingOver = in.r.State() == router.Master
	in.step(router.Event{Kind: router.Shutdown})
	in.handingOver = false
	if !in.removalPending {
		return
	}
	in.removalPending = false
	wait := min(in.cfg.AdvertInterval+in.cfg.AdvertInterval/4+5*time.Millisecond, handoverMax)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	start := time.Now()
	for {
		select {
		case r := <-in.events:
			if r.ev.Priority == 0 {
				continue
			}
			in.log.Debug("handover: new Master heard", "master", r.ev.From, "after", time.Since(start))
		case <-deadline.C:
			in.log.Debug("handover: no new Master heard", "after", wait)
		}
		break
	}
	_ = removeVIPs(in.f.d.sys, in.f.link.Index, in.cfg, in.log)
}

// staleAfter is how late a Master_Down_Timer may fire before the driver
// suspects it was stalled; staleGrace is how long it then waits for adverts
// still queued in the socket before acting on the timer.
const (
	staleAfter = 5 * time.Millisecond
	staleGrace = 3 * time.Millisecond
)

// spinEarly is how long before a Backup's Master_Down_Timer the driver
// wakes up. Go's timers can fire a millisecond or two late (the runtime
// sleeps in whole milliseconds while idle), which would add that much to
// every failover. While its Master is alive a Backup's timer only fires to
// step the Master's latest advert (see routineAdverts), which moves the
// deadline well past spinEarly, so the spin costs nothing in normal
// operation.
const spinEarly = 2 * time.Millisecond

// spinUntilDeadline waits, spinning, until the Master_Down_Timer deadline,
// stepping adverts that arrive meanwhile. It reports whether one of them
// moved the deadline (or changed the state), so the timer has not expired.
func (in *instance) spinUntilDeadline() bool {
	dl := in.r.Deadline()
	for time.Now().Before(dl) {
		in.catchUp()
		if in.r.State() != router.Backup || !in.r.Deadline().Equal(dl) {
			return true
		}
		runtime.Gosched()
	}
	return false
}

// reconfigure applies a changed configuration in place (see
// Daemon.Reload for which changes get here).
func (in *instance) reconfigure(ic config.Instance) {
	switch {
	case in.hooks == nil && hasHooks(ic.Notify):
		in.hooks = newHooks(ic.Notify.Timeout, in.log)
	case in.hooks != nil:
		in.hooks.setTimeout(ic.Notify.Timeout)
	}
	in.cfg = ic
	in.setPacket()
	in.tracker = newTracker(ic, in.f.d.checks.up)
	in.refreshLinks()
	in.m.configured.Set(float64(ic.Priority))
	in.mu.Lock()
	in.snap.ConfiguredPriority = ic.Priority
	in.mu.Unlock()
	in.r.SetConfig(in.routerConfig())
	if in.r.State() == router.Master {
		in.scheduleAdverts(false)
	}
	in.retrack()
}

// refreshLinks sets the tracker's interfaces to their current state.
func (in *instance) refreshLinks() {
	for _, it := range in.tracker.items {
		if it.kind == trackInterface {
			in.tracker.set(trackInterface, it.name, in.f.d.linkUp(it.name))
		}
	}
}

// retrack derives the effective priority and FAULT from the tracker and
// applies them: a new priority is advertised from the next advertisement
// on; entering FAULT makes a Master send priority 0 and release its VIPs at
// once.
func (in *instance) retrack() {
	prio, fault, why := in.tracker.effective(in.cfg.Priority)
	if prio != in.effective {
		in.log.Info("effective priority changed", "from", in.effective, "to", prio, "failing_checks", in.tracker.failing())
		in.effective = prio
		in.r.SetConfig(in.routerConfig())
		in.m.effect.Set(float64(prio))
		if in.r.State() == router.Master {
			in.scheduleAdverts(false)
		}
	}
	in.mu.Lock()
	in.snap.Priority = prio
	in.snap.FailingChecks = in.tracker.failing()
	in.mu.Unlock()
	switch {
	case fault && !in.faulted:
		in.faulted = true
		in.step(router.Event{Kind: router.FaultOn, Reason: why})
	case !fault && in.faulted:
		in.faulted = false
		in.step(router.Event{Kind: router.FaultOff})
	}
}

// ping asks the driver loop to answer: the returned channel is closed when
// it does. nil means the instance has ended.
func (in *instance) ping() chan struct{} {
	r := make(chan struct{})
	select {
	case in.pings <- r:
	case <-in.done:
		return nil
	default:
		// The loop has not taken the last ping yet: wedged or busy.
	}
	return r
}

// received is an advert as the receive loop hands it over, with the time
// it was read: the Master_Down_Timer runs from the advert's arrival, not
// from when the driver got to it.
type received struct {
	ev router.Event
	at time.Time
}

// deliver hands an advert from the receive loop to the driver: noted if it
// is routine, else queued behind the noted one. It reports false if the
// queue was full and the advert was dropped.
func (in *instance) deliver(r received) bool {
	ra := &in.routine
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.ok && r.ev == ra.ev {
		ra.latest, ra.pending = r, true
		return true
	}
	if ra.pending {
		select {
		case in.events <- ra.latest:
			ra.pending = false
		default:
			return false // r must not overtake it
		}
	}
	select {
	case in.events <- r:
		return true
	default:
		return false
	}
}

// catchUp steps every advert that arrived so far, queued or noted, in order.
func (in *instance) catchUp() {
	in.stepAll(in.takeAdverts(true))
}

// takeAdverts tells the receive loop which advert is routine now and
// returns, in order of arrival, the queued adverts and the noted routine
// one: always if all, else only when a noted advert is no longer routine
// (it must then be stepped now: nothing would step it later).
func (in *instance) takeAdverts(all bool) []received {
	ev, ok := in.r.Routine()
	ra := &in.routine
	ra.mu.Lock()
	defer ra.mu.Unlock()
	changed := ok != ra.ok || ev != ra.ev
	ra.ev, ra.ok = ev, ok
	if !all && !(changed && ra.pending) {
		return nil
	}
	out := in.taken[:0]
	for len(in.events) > 0 {
		out = append(out, <-in.events)
	}
	if ra.pending {
		out = append(out, ra.latest)
		ra.pending = false
	}
	in.taken = out
	return out
}

// syncRoutine tells the receive loop which advert is routine now, stepping
// the one it noted if that changed.
func (in *instance) syncRoutine() {
	for rs := in.takeAdverts(false); len(rs) > 0; rs = in.takeAdverts(false) {
		in.stepAll(rs)
	}
}

func (in *instance) stepAll(rs []received) {
	for _, r := range rs {
		in.stepAt(r.at, r.ev)
	}
}

// step feeds ev, happening now, to the router; see stepAt.
func (in *instance) step(ev router.Event) { in.stepAt(time.Now(), ev) }

// stepAt feeds ev, which happened at now, to the router and carries out the
// resulting actions in order.
func (in *instance) stepAt(now time.Time, ev router.Event) {
	wasMaster := in.r.State() == router.Master
	prevMaster := in.r.Master()
	in.actions = in.r.Step(now, ev, in.actions[:0])
	if wasMaster && in.r.State() != router.Master {
		// Before the last advert goes out (priority 0, or a farewell).
		in.p.sender.remove(in)
	}
	sent := false
	for _, a := range in.actions {
		switch a.Kind {
		case router.SendAdvert:
			in.send(a.Priority)
			sent = true
		case router.AddVIPs:
			for _, vip := range in.cfg.VIPs {
				if err := in.f.d.sys.Add(in.f.link.Index, vip); err != nil {
					in.log.Error("adding VIP failed", "vip", vip, "err", err)
				}
			}
		case router.RemoveVIPs:
			in.announceLeft = 0
			if in.handingOver {
				in.removalPending = true
				continue
			}
			_ = removeVIPs(in.f.d.sys, in.f.link.Index, in.cfg, in.log)
		case router.Announce:
			// The first round goes out at once; the rest follow at the
			// configured interval from the run loop.
			in.announceLeft = in.cfg.Announce.Count
			in.log.Debug("announcing the VIPs", "rounds", in.announceLeft, "interval", in.cfg.Announce.Interval)
			in.announceRound()
		case router.Transition:
			in.transition(a)
		}
	}
	if in.r.State() == router.Master && (sent || !wasMaster) {
		// The advert's priority changes only through SetConfig, whose
		// callers reschedule it themselves.
		in.scheduleAdverts(sent)
	}
	in.observe(now, ev, wasMaster, prevMaster)
}

// scheduleAdverts hands the Master's periodic advertisement, at the priority
// it advertises now, to the plane's sender: next due at the router's
// Adver_Timer if sent says one just went out, else when it was due anyway.
func (in *instance) scheduleAdverts(sent bool) {
	var due time.Time
	if sent {
		due = in.r.Deadline()
	}
	in.p.sender.set(in, in.advertPackets(in.r.Config().Priority), in.cfg.AdvertInterval, due)
}

// advertPackets returns the advertisement at priority p for each
// destination, in buffers of their own.
func (in *instance) advertPackets(p uint8) []transport.Outgoing {
	in.pkt.Priority = p
	out := make([]transport.Outgoing, 0, len(in.dsts))
	for _, dst := range in.dsts {
		b, err := in.pkt.Append(nil, in.src, dst, in.csum)
		if err != nil {
			in.log.Error("cannot build the advertisement", "dst", dst, "err", err)
			continue
		}
		out = append(out, transport.Outgoing{B: b, Src: in.src, Dst: dst})
	}
	return out
}

// rivalWindow is how long after another Master's advert the split brain it
// showed lasts.
func (in *instance) rivalWindow() time.Duration { return 3 * in.cfg.AdvertInterval }

// observe keeps the split-brain gauge and the Master address metrics.
func (in *instance) observe(now time.Time, ev router.Event, wasMaster bool, prevMaster netip.Addr) {
	isMaster := in.r.State() == router.Master
	window := in.rivalWindow()
	switch {
	case !isMaster:
		in.rivalSeen, in.rivalAdverts = time.Time{}, 0
	case wasMaster && ev.Kind == router.Advert && ev.Priority != 0:
		// Only a Master advertises: another router claims the VIPs too.
		// One advert is not yet a split brain: a Master that steps down
		// for us sends one last advert (see router).
		if now.Sub(in.rivalSeen) > window {
			in.rivalAdverts = 0
		}
		in.rivalSeen = now
		in.rivalAdverts++
	case !in.rivalSeen.IsZero() && now.Sub(in.rivalSeen) > window:
		in.rivalSeen, in.rivalAdverts = time.Time{}, 0
	}
	if in.rivalAdverts >= 2 {
		in.m.splitBrain.Set(1)
	} else {
		in.m.splitBrain.Set(0)
	}

	master := in.r.Master()
	if master == prevMaster {
		return
	}
	if prevMaster.IsValid() && master.IsValid() {
		in.m.masterChanges.Inc()
	}
	if in.m.master.IsValid() {
		in.m.all.MasterInfo.DeleteLabelValues(in.cfg.Name, in.m.master.String())
	}
	in.m.master = master
	if master.IsValid() {
		in.m.all.MasterInfo.WithLabelValues(in.cfg.Name, master.String()).Set(1)
	}
	in.mu.Lock()
	in.snap.Master = master
	in.mu.Unlock()
}

// send sends an advertisement with priority p to the group, or to each
// unicast peer.
func (in *instance) send(p uint8) {
	in.pkt.Priority = p
	var err error
	for _, dst := range in.dsts {
		// The checksum covers the destination (RFC 9568 §5.2.8).
		b, e := in.pkt.Append(in.buf[:0], in.src, dst, in.csum)
		if e == nil {
			in.buf = b
			e = in.p.conn.WriteTo(b, in.src, dst)
		}
		err = errors.Join(err, e)
	}
	in.sendResult(err)
}

// sendResult logs and counts the outcome of sending one advertisement; the
// first failure of a run is a warning.
func (in *instance) sendResult(err error) {
	switch {
	case err != nil && !in.sendFailing.Swap(true):
		in.log.Warn("sending advertisement failed; retrying at every interval", "err", err)
	case err != nil:
		in.log.Debug("sending advertisement failed", "err", err)
	default:
		in.m.sent.Inc()
		if in.sendFailing.Swap(false) {
			in.log.Info("sending advertisements again")
		}
	}
}

// announceRound sends one gratuitous ARP round for every VIP.
func (in *instance) announceRound() {
	if in.announceLeft <= 0 {
		return
	}
	in.announceLeft--
	for _, vip := range in.cfg.VIPs {
		if err := in.p.ann.Announce(vip.Addr()); err != nil {
			in.log.Warn("announcing a VIP failed; the next round retries", "vip", vip.Addr(), "rounds_left", in.announceLeft, "err", err)
			continue
		}
		in.m.garp.Inc()
	}
}

func hasHooks(n config.Notify) bool {
	return len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) > 0
}

func (in *instance) transition(a router.Action) {
	in.f.d.transitions.Add(1)
	if in.hooks != nil {
		in.hooks.transition(in.cfg.Notify, in.cfg.Name, a.To, in.effective)
	}
	in.m.state[a.From].Set(0)
	in.m.state[a.To].Set(1)
	in.m.all.Transitions.WithLabelValues(in.cfg.Name, a.From.String(), a.To.String()).Inc()
	in.mu.Lock()
	in.snap.State = a.To
	in.snap.Since = time.Now()
	in.mu.Unlock()
	attrs := []any{"from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String()}
	if m := in.r.Master(); m.IsValid() {
		attrs = append(attrs, "master", m)
	}
	in.log.Info("state change", attrs...)
}

func (in *instance) status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.snap
}

// deleteMetrics removes the instance's series after it was removed.
func (in *instance) deleteMetrics() {
	in.m.all.DeleteInstance(in.cfg.Name)
}

// announceKind is the announcements label of a family.
func announceKind(family string) string {
	if family == "ipv6" {
		return "na"
	}
	return "garp"
}

// wire is what the receive loop checks against an instance: its version,
// authentication and unicast peers. It does not change while the instance
// runs (a reload that changes it restarts the instance).
type wire struct {
	version  uint8
	authType uint8
	auth     [8]byte
	peers    []netip.Addr
	// interval is the VRRPv2 Adver Int in seconds, which RFC 3768 §7.1
	// requires adverts to match.
	interval uint16
}

func newWire(ic config.Instance) wire {
	w := wire{version: uint8(ic.Version), peers: ic.UnicastPeers}
	if ic.Version == 2 {
		w.interval = uint16(ic.AdvertInterval / time.Second)
	}
	if ic.AuthPass != "" {
		// RFC 3768 §5.3.6.1: type 1, the password zero-padded to 8 bytes.
		w.authType = 1
		copy(w.auth[:], ic.AuthPass)
	}
	return w
}

// accept checks a decoded packet against the instance.
func (w *wire) accept(p *vrrp.Packet, src netip.Addr) drop.Reason {
	if p.Version != w.version {
		return drop.Version
	}
	if len(w.peers) > 0 && !slices.Contains(w.peers, src) {
		return drop.NotPeer
	}
	if w.version == 2 {
		if p.AuthType != w.authType {
			return drop.AuthType
		}
		if w.authType == 1 && p.AuthData != w.auth {
			return drop.Auth
		}
		// RFC 3768 §7.1: the Adver Interval MUST be ours.
		if p.Interval != w.interval {
			return drop.IntervalMismatch
		}
	}
	return drop.None
}
