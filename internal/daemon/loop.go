package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/ladder"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// Timing of the loop, kept here so that it is tuned in one place.
const (
	// retryEvery is how often a missing interface, address or socket is
	// looked up again.
	retryEvery = time.Second
	// openEvery bounds how often address notifications make a loop
	// whose sockets are not open try again before retryEvery.
	openEvery = 50 * time.Millisecond
	// reconcileEvery is how often the loop compares the kernel's addresses
	// with what its instances need, besides reacting to every address
	// notification: the safety net for a notification that was lost.
	reconcileEvery = 30 * time.Second
	// staleAfter is how late the loop's timer may fire before the loop
	// suspects it was stalled (a stopped process, a starved CPU);
	// staleGrace is how long it then reads adverts still queued in the
	// socket before acting on its timers, so that a Backup whose Master is
	// alive does not claim the VIPs because it was frozen.
	staleAfter = 5 * time.Millisecond
	staleGrace = 3 * time.Millisecond
	// shutdownMax bounds how long a stopping loop waits for its Masters'
	// handovers (the router bounds each to 650 ms).
	shutdownMax = time.Second
	// rxQueue is how many admitted adverts may wait for the loop; beyond
	// that the reader drops them as queue_full.
	rxQueue = 256
)

// loop is the protocol loop of one interface and address family. Its
// goroutine owns every instance on it, their routers and their deadlines
// (one heap behind one timer), the VRRP socket and the announcer; a reader
// goroutine validates what the socket receives and hands admitted adverts
// over. Everything else — checks, link and address notifications, reloads,
// status requests, shutdown — reaches the loop as a message.
type loop struct {
	d      *Daemon
	name   string // interface
	family string
	log    *slog.Logger
	drops  [drop.Count]prometheus.Counter

	msgs chan func()
	rx   chan received
	done chan struct{}

	// admits is what the reader checks packets against, by VRID: a map
	// replaced, never changed, when instances come and go. src is the
	// socket's source address, for the own-address check.
	admits  atomic.Pointer[map[uint8]*admission]
	readSrc atomic.Pointer[netip.Addr]
	// ifindex is the interface's index while the sockets are open, for
	// the daemon to route address notifications.
	ifindex atomic.Int32

	// Owned by the loop's goroutine.
	instances map[string]*instance
	byVRID    map[uint8]*instance
	leaving   []*instance // shut down, waiting to release their VIPs
	heap      timerHeap
	maxEarly  time.Duration
	timer     *time.Timer
	armed     time.Time // what timer is set for; zero if stopped
	// graceFor is the deadline a stall grace was given for, graceUntil
	// when it ends.
	graceFor, graceUntil time.Time
	retryAt, reconcileAt time.Time
	// tried is when the sockets last tried to open (addrEvent).
	tried    time.Time
	retrying bool // a failure to open was logged at warn level
	closing  bool // stop once no instance is left

	link       netif.Link
	open       bool // sockets open
	gone       bool // the interface went away while they were
	conn       PacketConn
	ann        Announcer
	src        netip.Addr // primary IPv4, or link-local IPv6 (RFC 9568 §5.1.2.1)
	readerDone chan struct{}

	// Reused buffers.
	actions []router.Action
	out     []transport.Outgoing
	owners  []*instance
	errs    []error
	due     []*instance
}

// received is an admitted advert, with the time it was read: the
// Master_Down_Timer runs from the advert's arrival.
type received struct {
	vrid uint8
	ev   router.Event
	at   time.Time
}

func newLoop(d *Daemon, name, family string) *loop {
	l := &loop{
		d: d, name: name, family: family,
		log:       d.log.With("iface", name, "family", family),
		msgs:      make(chan func(), 64),
		rx:        make(chan received, rxQueue),
		done:      make(chan struct{}),
		instances: map[string]*instance{},
		byVRID:    map[uint8]*instance{},
	}
	for r := drop.None + 1; r < drop.Count; r++ {
		l.drops[r] = d.m.PacketsDropped.WithLabelValues(name, r.String())
	}
	l.admits.Store(&map[uint8]*admission{})
	l.readSrc.Store(&netip.Addr{})
	return l
}

// send hands f to the loop's goroutine; false if the loop has ended.
func (l *loop) send(f func()) bool {
	select {
	case l.msgs <- f:
		return true
	case <-l.done:
		return false
	}
}

// call runs f on the loop's goroutine and waits for it, or ctx.
func (l *loop) call(ctx context.Context, f func()) error {
	reply := make(chan struct{})
	if !l.send(func() { f(); close(reply) }) {
		return nil
	}
	select {
	case <-reply:
		return nil
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves the loop until ctx ends (then shuts every instance down) or
// the loop was closed and its last instance left.
func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	defer l.timer.Stop()
	l.tryOpen(time.Now())
	for {
		if l.closing && len(l.instances) == 0 && len(l.leaving) == 0 {
			l.closeSockets()
			return
		}
		l.arm()
		select {
		case <-ctx.Done():
			l.shutdown()
			return
		case f := <-l.msgs:
			f()
		case r := <-l.rx:
			l.adverts(r)
		case <-l.timer.C:
			l.timerFired()
		case <-l.readerDone:
			l.readerDone = nil
			l.lost(time.Now(), "the socket failed")
		}
		l.flush()
	}
}

// adverts steps r and every other advert the reader has queued.
func (l *loop) adverts(r received) {
	l.receive(r)
	l.drainRx()
}

// timerFired carries out the timers, once the timer has fired.
func (l *loop) timerFired() {
	l.armed = time.Time{}
	l.fire(time.Now())
}

// arm sets the timer for the earliest thing the loop has to do.
func (l *loop) arm() {
	var target time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (target.IsZero() || t.Before(target)) {
			target = t
		}
	}
	if len(l.heap) > 0 {
		earliest(l.heap[0].heapAt)
	}
	earliest(l.retryAt)
	earliest(l.reconcileAt)
	if !l.graceUntil.IsZero() {
		target = l.graceUntil
	}
	if target.Equal(l.armed) {
		return
	}
	l.armed = target
	l.timer.Stop()
	if !target.IsZero() {
		l.timer.Reset(time.Until(target))
	}
}

// fire carries out every timer whose time has come.
func (l *loop) fire(now time.Time) {
	if len(l.heap) > 0 && l.graceUntil.IsZero() {
		if dl := l.heap[0].heapAt; now.Sub(dl) > staleAfter && !l.graceFor.Equal(dl) {
			// Fired late: let the reader catch up first.
			l.graceFor, l.graceUntil = dl, now.Add(staleGrace)
			return
		}
	}
	l.graceUntil = time.Time{}
	// Adverts that arrived before the timer fired go first.
	l.drainRx()
	// Masters whose adverts are nearly due go with the one that is due,
	// so that they share this wakeup and one sendmmsg (router.Next).
	l.due = l.due[:0]
	for len(l.heap) > 0 && !l.heap[0].heapAt.After(now.Add(l.maxEarly)) {
		l.due = append(l.due, l.heap.pop())
	}
	for _, in := range l.due {
		if _, early := in.r.Next(); !early.After(now) {
			l.step(in, now, router.Event{Kind: router.Timeout})
		} else {
			l.schedule(in)
		}
	}
	if !l.retryAt.IsZero() && !now.Before(l.retryAt) {
		l.retryAt = time.Time{}
		l.retry(now)
	}
	if !l.reconcileAt.IsZero() && !now.Before(l.reconcileAt) {
		l.reconcile(now)
	}
}

// drainRx steps every advert the reader has queued.
func (l *loop) drainRx() {
	for {
		select {
		case r := <-l.rx:
			l.receive(r)
		default:
			return
		}
	}
}

// receive steps an advert into the instance of its VRID, and into an
// instance of that VRID still handing over.
func (l *loop) receive(r received) {
	if in := l.byVRID[r.vrid]; in != nil && in.joined() {
		l.step(in, r.at, r.ev)
	}
	for i := 0; i < len(l.leaving); i++ {
		if lv := l.leaving[i]; lv.cfg.VRID == r.vrid {
			l.step(lv, r.at, r.ev)
		}
	}
}

// step feeds ev, which happened at now, to in's router and carries out the
// actions in order.
func (l *loop) step(in *instance, now time.Time, ev router.Event) {
	prev := in.r.Master()
	acts := in.r.Step(now, ev, l.actions[:0])
	// A step may nest (a send that finds the interface gone puts every
	// instance in FAULT): the nested one must not reuse the buffer.
	l.actions = nil
	for _, a := range acts {
		l.act(in, now, a)
	}
	l.actions = acts[:0]
	in.observeMaster(prev)
	l.schedule(in)
	if in.stopping && !in.r.Holding() {
		l.forget(in)
	}
	l.report(in)
}

// report tells in's sync group what in is now, if that changed. A member
// that stopped does not: its successor under the name, or the group's
// own stop, speaks for it.
func (l *loop) report(in *instance) {
	if in.cfg.SyncGroup == "" || in.stopping {
		return
	}
	m := router.MemberOf(in.r, in.ownFault)
	if in.voted && m == in.vote {
		return
	}
	in.vote, in.voted = m, true
	if g := l.d.syncGroup(in.cfg.SyncGroup); g != nil {
		g.report(in.cfg.Name, m)
	}
}

// groupOrder carries out what in's sync group says (router.Decide).
func (l *loop) groupOrder(in *instance, o router.Order) {
	now := time.Now()
	if o.Fault != in.groupFault {
		in.groupFault = o.Fault
		l.retrack(in, now)
	}
	switch {
	case o.Master:
		l.step(in, now, router.Event{Kind: router.GroupMaster})
	case o.Backup:
		l.step(in, now, router.Event{Kind: router.GroupBackup})
	}
}

// act carries out one action of a step at now.
func (l *loop) act(in *instance, now time.Time, a router.Action) {
	switch a.Kind {
	case router.SendAdvert:
		if in.vmacUp {
			// From the virtual MAC, on its own socket, at once.
			_, err := in.vmac.WriteBatch(in.advertsAt(a.Priority, now, false))
			in.sendResult(err)
			return
		}
		// A second advert of in before the flush (a shutdown's
		// priority 0 after a routine one) must not overwrite the first.
		for _, o := range in.advertsAt(a.Priority, now, in.queued) {
			l.out = append(l.out, o)
			l.owners = append(l.owners, in)
		}
		in.queued = true
	case router.AddVIPs:
		l.flush()
		l.vmacUp(in)
		idx := l.vipIndex(in)
		for _, vip := range in.cfg.VIPs {
			if err := l.d.sys.Add(idx, in.vipPrefix(vip), in.cfg.VIPsAsSource); err != nil {
				in.log.Error("adding VIP failed", "vip", vip, "err", err)
			}
		}
		// The routes follow the VIPs (some leave from them: src).
		in.wantRoutes(l.d.sys.Routes())
		l.d.bgp.held(in.cfg, true)
	case router.RemoveVIPs:
		l.flush()
		in.releaseRoutes(l.d.sys.Routes())
		l.d.bgp.held(in.cfg, false)
		l.removeVIPs(in)
	case router.Announce:
		l.flush()
		l.announce(in, a)
	case router.Transition:
		l.d.transitions.Add(1)
		in.transition(a, in.r.Master())
	case router.RivalSeen:
		in.cell.splitBrain.Store(true)
		in.log.Warn("split brain: another router advertises as Master too", "rival", a.Master)
	case router.RivalGone:
		in.cell.splitBrain.Store(false)
		in.log.Info("split brain over: no other Master heard")
	}
}

// flush sends the adverts queued by the steps so far, in one batch.
func (l *loop) flush() {
	if len(l.out) == 0 {
		return
	}
	l.errs = l.errs[:0]
	for range l.out {
		l.errs = append(l.errs, nil)
	}
	for sent := 0; sent < len(l.out); {
		if !l.open {
			for i := sent; i < len(l.out); i++ {
				l.errs[i] = errNoSocket
			}
			break
		}
		n, err := l.conn.WriteBatch(l.out[sent:])
		sent += n
		if err != nil {
			// One message failed (a unicast peer without a route, say):
			// its instance hears of it, the rest still go.
			l.errs[sent] = err
			sent++
		}
	}
	// One result per advertisement: an instance's messages (one per
	// unicast peer) are consecutive.
	var gone error
	for i := 0; i < len(l.owners); {
		in := l.owners[i]
		var err error
		for ; i < len(l.owners) && l.owners[i] == in; i++ {
			if e := l.errs[i]; e != nil {
				err = e
				if linkGone(e) {
					gone = e
				}
			}
		}
		in.sendResult(err)
	}
	clear(l.out)
	for _, in := range l.owners {
		in.queued = false
	}
	clear(l.owners)
	l.out, l.owners = l.out[:0], l.owners[:0]
	if gone != nil && l.open {
		l.lost(time.Now(), "the interface cannot send: "+gone.Error())
	}
}

var errNoSocket = errors.New("no socket: the interface is gone")

// linkGone says whether a send failed because the interface is gone, not
// because of one destination.
func linkGone(err error) bool {
	return errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}

// announce sends one round of gratuitous ARPs or neighbour advertisements.
func (l *loop) announce(in *instance, a router.Action) {
	if !l.open {
		return
	}
	switch {
	case a.Refresh:
		in.log.Debug("refreshing the VIPs' announcement", "every", in.cfg.Announce.Refresh)
	case a.Round == 1:
		in.log.Debug("announcing the VIPs", "rounds", a.Rounds, "interval", in.cfg.Announce.Interval)
	}
	ann := l.ann
	if in.vmac != nil {
		ann = in.vmac
	}
	for _, vip := range in.cfg.VIPs {
		if err := ann.Announce(vip.Addr()); err != nil {
			in.log.Warn("announcing a VIP failed; the next round retries", "vip", vip.Addr(), "rounds_left", a.Rounds-a.Round, "err", err)
			continue
		}
		in.cell.announced.Add(1)
	}
}

// removeVIPs takes in's VIPs off the interface, but not one that another
// instance on it holds. A virtual MAC interface goes down first, so that
// nothing leaves from the virtual MAC any more.
func (l *loop) removeVIPs(in *instance) {
	if in.vmacUp {
		if err := in.vmac.SetUp(false); err != nil {
			in.log.Error("setting the virtual MAC interface down failed", "iface", in.cfg.VirtualMACInterface, "err", err)
		}
		in.vmacUp = false
	}
	l.removeVIPsAt(in, l.vipIndex(in))
}

func (l *loop) removeVIPsAt(in *instance, idx int) {
	for _, vip := range in.cfg.VIPs {
		if l.heldByOther(in, vip) {
			continue
		}
		if err := l.d.sys.Remove(idx, vip); err != nil && l.open {
			in.log.Error("removing VIP failed", "vip", vip, "err", err)
		}
	}
}

// vipIndex is the interface in's VIPs live on: its virtual MAC
// interface, or the loop's.
func (l *loop) vipIndex(in *instance) int {
	if in.vmac != nil {
		return in.vmac.Index()
	}
	return l.link.Index
}

// vmacUp sets in's virtual MAC interface up for its VIPs, with the
// parent's link-local address for IPv6 adverts.
func (l *loop) vmacUp(in *instance) {
	if in.vmac == nil || in.vmacUp {
		return
	}
	if err := in.vmac.SetUp(true); err != nil {
		in.log.Error("setting the virtual MAC interface up failed", "iface", in.cfg.VirtualMACInterface, "err", err)
		return
	}
	in.vmacUp = true
	if in.src.Is6() && in.src.IsLinkLocalUnicast() {
		if err := in.vmac.AddLinkLocal(in.src); err != nil {
			in.log.Error("adding the link-local address to the virtual MAC interface failed", "iface", in.cfg.VirtualMACInterface, "err", err)
		}
	}
}

// openVMAC creates in's virtual MAC interface, replacing any it had; it
// reports false after logging why it could not.
func (l *loop) openVMAC(in *instance, now time.Time) bool {
	in.closeVMAC()
	if !in.cfg.VirtualMAC {
		return true
	}
	v, err := l.d.sys.OpenVMAC(VMACSpec{Name: in.cfg.VirtualMACInterface, Parent: l.name, ParentIndex: l.link.Index,
		VRID: in.cfg.VRID, IPv6: in.cfg.Family == "ipv6"})
	if err != nil {
		in.log.Error("cannot create the virtual MAC interface; retrying", "iface", in.cfg.VirtualMACInterface, "err", err, "retry_every", retryEvery)
		l.retryAt = now.Add(retryEvery)
		return false
	}
	in.vmac = v
	in.log.Info("virtual MAC interface ready", "iface", in.cfg.VirtualMACInterface, "index", v.Index())
	return true
}

// heldByOther says whether another instance on the loop holds vip: a
// Master, or one that stopped and hands it over (a restarted instance must
// not take the VIPs from under its predecessor's handover).
func (l *loop) heldByOther(in *instance, vip netip.Prefix) bool {
	for _, o := range l.instances {
		if o != in && o.joined() && o.r.Holding() && hasVIP(o.cfg, vip) {
			return true
		}
	}
	for _, o := range l.leaving {
		if o != in && o.r.Holding() && hasVIP(o.cfg, vip) {
			return true
		}
	}
	return false
}

func hasVIP(ic config.Instance, vip netip.Prefix) bool {
	for _, v := range ic.VIPs {
		// By address: the kernel may hold a VIP with a wider prefix
		// (AddrSet.Add), and no two instances share an address.
		if v.Addr() == vip.Addr() {
			return true
		}
	}
	return false
}

// schedule puts in at its place in the timer heap.
func (l *loop) schedule(in *instance) {
	at, _ := in.r.Next()
	switch {
	case at.IsZero() && in.heapIdx >= 0:
		l.heap.remove(in)
	case at.IsZero():
	case in.heapIdx >= 0:
		in.heapAt = at
		l.heap.fix(in)
	default:
		in.heapAt = at
		l.heap.push(in)
	}
}

// publish gives the reader the instances it admits adverts for.
func (l *loop) publish() {
	m := make(map[uint8]*admission, len(l.instances)+len(l.leaving))
	for _, in := range l.leaving {
		m[in.cfg.VRID] = in.admit
	}
	for _, in := range l.instances {
		m[in.cfg.VRID] = in.admit
	}
	l.admits.Store(&m)
}

// add runs a new instance on the loop.
func (l *loop) add(ic config.Instance, cell *statusCell) {
	in := newInstance(ic, cell, l.d, l.log)
	l.instances[ic.Name] = in
	l.byVRID[ic.VRID] = in
	l.maxEarly = max(l.maxEarly, ic.AdvertInterval/4)
	l.publish()
	if l.open {
		l.start(in, time.Now())
	}
}

// start joins in to the election, or puts it in FAULT; it reports false if
// an address it needs is missing (retried with the interface).
func (l *loop) start(in *instance, now time.Time) bool {
	in.src = l.src
	switch {
	case in.cfg.UnicastSource.IsValid():
		in.src = in.cfg.UnicastSource
	case len(in.cfg.UnicastPeers) > 0 && in.cfg.Family == "ipv6":
		// Unicast peers are listed by their global addresses and check
		// ours against their lists, so a link-local source will not do.
		src, err := l.d.sys.PrimaryIPv6(l.link.Index, in.cfg.VIPs)
		if err != nil {
			in.log.Warn("waiting for a global IPv6 address to send unicast adverts from", "err", err, "retry_every", retryEvery)
			l.retryAt = now.Add(retryEvery)
			return false
		}
		in.src = src
	}
	in.dsts = in.cfg.UnicastPeers
	if len(in.dsts) == 0 {
		in.dsts = []netip.Addr{l.group()}
	}
	// Before joining the election, take away whatever a crashed earlier
	// run left, so that two hosts never answer for a VIP.
	in.r = router.New(in.routerConfig())
	l.removeVIPsAt(in, l.link.Index)
	if !l.openVMAC(in, now) {
		in.r = nil
		return false
	}
	in.tracker = newTracker(in.cfg, l.d.checks.up, l.d.lbs.up)
	l.refreshLinks(in)
	if !l.retrack(in, now) {
		l.step(in, now, router.Event{Kind: router.Startup})
	}
	l.d.markStarted(in.cfg.Name)
	return true
}

// stop takes the named instance out: a Master sends priority 0 and keeps
// its VIPs until the new Master is heard (router.Shutdown). released, if
// not nil, is closed once they are gone.
func (l *loop) stop(name string, released chan struct{}) {
	in := l.instances[name]
	if in == nil {
		if released != nil {
			close(released)
		}
		return
	}
	in.released = released
	delete(l.instances, name)
	if l.byVRID[in.cfg.VRID] == in {
		delete(l.byVRID, in.cfg.VRID)
	}
	if in.joined() {
		in.stopping = true
		l.leaving = append(l.leaving, in)
		l.step(in, time.Now(), router.Event{Kind: router.Shutdown})
	} else {
		in.gone()
	}
	l.closeHooks(in)
	l.publish()
}

// forget drops an instance that has released its VIPs after stopping.
func (l *loop) forget(in *instance) {
	for i, lv := range l.leaving {
		if lv == in {
			l.leaving = append(l.leaving[:i], l.leaving[i+1:]...)
			break
		}
	}
	if in.heapIdx >= 0 {
		l.heap.remove(in)
	}
	in.gone()
	l.publish()
}

func (l *loop) closeHooks(in *instance) {
	if in.hooks == nil {
		return
	}
	h := in.hooks
	in.hooks = nil
	l.d.hookWG.Add(1)
	go func() {
		defer l.d.hookWG.Done()
		h.close()
	}()
}

// update applies a changed configuration in place (see plan for which
// changes get here).
func (l *loop) update(ic config.Instance) {
	in := l.instances[ic.Name]
	if in == nil {
		return
	}
	switch {
	case in.hooks == nil && hasHooks(ic.Notify):
		in.hooks = newHooks(ic.Notify.Timeout, l.d.runCommand, in.log)
	case in.hooks != nil:
		in.hooks.setTimeout(ic.Notify.Timeout)
	}
	if in.cfg.SyncGroup != ic.SyncGroup {
		// Into another group, or out of one: it starts afresh there.
		in.groupFault, in.voted = false, false
	}
	in.cfg = ic
	in.setAuth()
	l.publish()
	in.setInterval()
	in.resetAdverts()
	in.setStatus(func(s *Status) {
		s.ConfiguredPriority, s.Auth, s.SyncGroup = ic.Priority, authStatus(ic.AuthHMAC), ic.SyncGroup
	})
	l.maxEarly = max(l.maxEarly, ic.AdvertInterval/4)
	if !in.joined() {
		return
	}
	in.tracker = newTracker(ic, l.d.checks.up, l.d.lbs.up)
	l.refreshLinks(in)
	in.r.SetConfig(in.routerConfig())
	if in.r.Holding() {
		in.wantRoutes(l.d.sys.Routes())
	}
	l.retrack(in, time.Now())
	l.schedule(in)
}

// track records that a check or link went up or down.
func (l *loop) track(kind trackKind, name string, up bool) {
	now := time.Now()
	for _, in := range l.instances {
		if in.joined() && in.tracker.set(kind, name, up) {
			l.retrack(in, now)
		}
	}
}

// refreshLinks sets the tracker's interfaces to their current state.
func (l *loop) refreshLinks(in *instance) {
	for _, it := range in.tracker.items {
		if it.kind == trackInterface {
			in.tracker.set(trackInterface, it.name, l.d.linkUp(it.name))
		}
	}
}

// retrack derives the effective priority and FAULT from the tracker and
// the interface, and applies them: a new priority is advertised from the
// next advertisement on; entering FAULT makes a Master send priority 0 and
// release its VIPs at once. It reports whether the instance is in FAULT.
func (l *loop) retrack(in *instance, now time.Time) bool {
	prio, fault, why := in.tracker.effective(in.cfg.Priority)
	if l.gone || in.cfg.VirtualMAC && in.vmac == nil {
		fault, why = true, router.ReasonInterfaceGone
	}
	in.ownFault = fault
	if !fault && in.groupFault {
		fault, why = true, router.ReasonGroupFault
	}
	if prio != in.effective {
		in.log.Info("effective priority changed", "from", in.effective, "to", prio, "failing_checks", in.tracker.failing())
		in.effective = prio
		in.r.SetConfig(in.routerConfig())
	}
	in.setStatus(func(s *Status) { s.Priority, s.FailingChecks = prio, in.tracker.failing() })
	switch inFault := in.r.State() == router.Fault; {
	case fault && !inFault:
		l.step(in, now, router.Event{Kind: router.FaultOn, Reason: why})
	case !fault && inFault:
		l.step(in, now, router.Event{Kind: router.FaultOff})
	}
	l.report(in)
	return in.r.State() == router.Fault
}

// group is the family's VRRP multicast group.
func (l *loop) group() netip.Addr {
	if l.family == "ipv6" {
		return vrrp.IPv6Group
	}
	return vrrp.IPv4Group
}

// shutdown takes every instance out of the election, waits (bounded) for
// the Masters' handovers, and closes the sockets.
func (l *loop) shutdown() {
	for name := range l.instances {
		l.stop(name, nil)
	}
	l.flush()
	bound := time.NewTimer(shutdownMax)
	defer bound.Stop()
	for len(l.leaving) > 0 {
		l.arm()
		select {
		case r := <-l.rx:
			l.adverts(r)
		case <-l.timer.C:
			l.timerFired()
		case <-bound.C:
			for _, lv := range l.leaving {
				l.removeVIPs(lv)
				lv.gone()
			}
			l.leaving = nil
		}
		l.flush()
	}
	l.closeSockets()
}

// closeSockets closes the socket and the announcer and waits for the reader.
func (l *loop) closeSockets() {
	if !l.open {
		return
	}
	l.open = false
	l.ifindex.Store(0)
	l.conn.Close()
	l.ann.Close()
	if l.readerDone != nil {
		<-l.readerDone
		l.readerDone = nil
	}
}

// read is the reader: it reads the socket until it is closed, validates
// each packet (RFC 9568 §7.1, internal/ladder) and hands admitted adverts
// to the loop.
func (l *loop) read(conn PacketConn, done chan struct{}) {
	defer close(done)
	buf := make([]byte, 2048)
	var pkt vrrp.Packet
	lk := &lookup{}
	find := lk.rules
	debug := l.log.Enabled(context.Background(), slog.LevelDebug)
	var refused authLog
	for {
		n, meta, err := conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("reading VRRP socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		lk.m, lk.found = *l.admits.Load(), nil
		reason := ladder.Check(&pkt, buf[:n], meta, *l.readSrc.Load(), at, find)
		if reason != drop.None {
			l.drops[reason].Inc()
			switch {
			case reason.Auth():
				refused.log(l.log, reason, meta.Src, &pkt, at)
			case debug:
				l.log.Debug("packet dropped", "from", meta.Src, "reason", reason.String(), "len", n)
			}
			continue
		}
		lk.found.received.Add(1)
		r := received{vrid: pkt.VRID, at: at,
			ev: router.Event{Kind: router.Advert, From: meta.Src, Priority: pkt.Priority, Interval: pkt.AdvertInterval()}}
		select {
		case l.rx <- r:
		default:
			l.drops[drop.QueueFull].Inc()
		}
	}
}

// authLog logs adverts that authentication refused, once per reason every
// authLogEvery, with how many it did not log: a forged flood must not
// flood the journal, nor a single forgery go unseen.
type authLog struct {
	last       [drop.Count]time.Time
	suppressed [drop.Count]int
}

const authLogEvery = 10 * time.Second

func (a *authLog) log(log *slog.Logger, r drop.Reason, from netip.Addr, p *vrrp.Packet, now time.Time) {
	if !a.last[r].IsZero() && now.Sub(a.last[r]) < authLogEvery {
		a.suppressed[r]++
		return
	}
	attrs := []any{"reason", r.String(), "from", from, "not_logged", a.suppressed[r]}
	if r != drop.AuthMalformed { // a trailer the codec refused leaves p as it was
		attrs = append(attrs, "vrid", p.VRID, "priority", p.Priority)
		if p.Signed {
			attrs = append(attrs, "key_id", p.Auth.KeyID)
		}
	}
	log.Warn("advert refused by authentication (logged at most every 10s per reason)", attrs...)
	a.last[r], a.suppressed[r] = now, 0
}

// lookup finds an instance's rules for the ladder without allocating.
type lookup struct {
	m     map[uint8]*admission
	found *admission
}

func (lk *lookup) rules(vrid uint8) *ladder.Rules {
	lk.found = lk.m[vrid]
	if lk.found == nil {
		return nil
	}
	return &lk.found.rules
}
