package daemon

import (
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
)

// The loop owns the kernel state its instances depend on: the interface,
// its sockets, the primary address and the VIPs. It follows them through
// netlink notifications (linkEvent, addrEvent) and a slow periodic
// reconcile, and repairs what drifted.

// tryOpen finds the interface and opens the sockets; on failure it retries
// every retryEvery (and at every notification for the interface).
func (l *loop) tryOpen(now time.Time) {
	if l.open {
		return
	}
	l.tried = now
	if err := l.openSockets(); err != nil {
		if !l.retrying {
			l.retrying = true
			l.log.Warn("waiting for the interface, its address and sockets", "err", err, "retry_every", retryEvery)
		} else {
			l.log.Debug("waiting for the interface, its address and sockets", "err", err)
		}
		l.retryAt = now.Add(retryEvery)
		return
	}
	if l.retrying {
		l.retrying = false
		l.log.Info("recovered: the interface is back")
	}
	l.log.Info("sockets open", "index", l.link.Index, "source", l.src)
	wasGone := l.gone
	l.gone = false
	for _, in := range l.instances {
		switch {
		case !in.joined():
			l.start(in, now)
		case wasGone:
			// The interface came back (perhaps with a new index): the
			// instance rejoins from Backup, from its current source,
			// with a new virtual MAC interface (the old went with it).
			l.setSource(in)
			l.openVMAC(in, now)
			l.retrack(in, now)
		}
	}
	l.reconcileAt = now.Add(reconcileEvery)
}

func (l *loop) openSockets() error {
	sys := l.d.sys
	link, err := sys.LinkByName(l.name)
	if err != nil {
		return err
	}
	if err := sys.PrepareInterface(l.name); err != nil {
		l.log.Warn("cannot set promote_secondaries; removing a VIP that became the primary address would remove the host's own address too", "err", err)
	}
	src, err := l.primary(link.Index)
	if err != nil {
		return err
	}
	listen, dial := sys.ListenIPv4, sys.DialARP
	if l.family == "ipv6" {
		listen, dial = sys.ListenIPv6, sys.DialNDP
	}
	conn, err := listen(link.Index)
	if err != nil {
		return err
	}
	ann, err := dial(link.Index)
	if err != nil {
		conn.Close()
		return err
	}
	l.link, l.src, l.conn, l.ann, l.open = link, src, conn, ann, true
	l.ifindex.Store(int32(link.Index))
	l.readSrc.Store(&src)
	l.readerDone = make(chan struct{})
	go l.read(conn, l.readerDone)
	return nil
}

// primary is the source of the family's adverts on the interface: its
// primary IPv4 address (not a VIP), or its link-local IPv6 address.
func (l *loop) primary(ifindex int) (netip.Addr, error) {
	if l.family == "ipv6" {
		return l.d.sys.LinkLocalIPv6(ifindex)
	}
	return l.d.sys.PrimaryIPv4(ifindex, l.vips())
}

// vips lists the VIPs of every instance on the loop.
func (l *loop) vips() []netip.Prefix {
	var out []netip.Prefix
	for _, in := range l.instances {
		out = append(out, in.cfg.VIPs...)
	}
	for _, in := range l.leaving {
		out = append(out, in.cfg.VIPs...)
	}
	return out
}

// retry runs what waits for the retry timer: opening the sockets, and
// starting instances that wait for an address.
func (l *loop) retry(now time.Time) {
	if !l.open {
		l.tryOpen(now)
		return
	}
	for _, in := range l.instances {
		switch {
		case !in.joined():
			l.start(in, now)
		case in.cfg.VirtualMAC && in.vmac == nil:
			if l.openVMAC(in, now) {
				l.retrack(in, now)
			}
		}
	}
}

// lost closes the sockets of an interface that is gone (deleted, or
// failing every send) and puts its instances in FAULT until it is back:
// neither status nor metrics claim Master for an instance that cannot
// advertise.
func (l *loop) lost(now time.Time, why string) {
	if !l.open {
		return
	}
	l.log.Warn("interface lost; its instances are in FAULT until it is back", "why", why)
	l.flush()
	l.closeSockets()
	l.gone = true
	for _, in := range l.instances {
		if in.joined() {
			in.closeVMAC() // the kernel deleted it with its parent
			l.retrack(in, now)
		}
	}
	for _, lv := range l.leaving {
		if lv.heapIdx >= 0 {
			l.heap.remove(lv)
		}
		lv.gone()
	}
	l.leaving = nil
	l.publish()
	l.retryAt = now.Add(retryEvery)
}

// linkEvent follows a link notification for the loop's interface.
func (l *loop) linkEvent(link netif.Link) {
	now := time.Now()
	switch {
	case link.Deleted:
		if l.open && link.Index == l.link.Index {
			l.lost(now, "deleted")
		}
	case l.open && link.Index != l.link.Index:
		// Deleted and created again between two notifications.
		l.lost(now, "re-created with a new index")
		l.tryOpen(now)
	case !l.open:
		l.tryOpen(now)
	}
}

// addrEvent follows an address notification for the loop's interface: a
// VIP that appeared or went is checked against what the instances need;
// any other address may change the advert source.
func (l *loop) addrEvent(u netif.AddrUpdate) {
	if u.Prefix.Addr().Is6() != (l.family == "ipv6") {
		return
	}
	if !l.open {
		// What the sockets wait for may have come: a link-local address
		// out of duplicate address detection, a primary address added.
		// Try now rather than at the next retry, at most every
		// openEvery (a burst of addresses elsewhere must not become a
		// burst of attempts).
		if now := time.Now(); l.retrying && now.Sub(l.tried) >= openEvery {
			l.tried = now
			l.tryOpen(now)
		}
		return
	}
	if u.Index != l.link.Index && !l.vmacIndex(u.Index) {
		return
	}
	if l.ownsVIP(u.Prefix) {
		// Once for a burst (a failover of many instances adds many VIPs):
		// the timer fires at once, after the messages already queued.
		l.reconcileAt = time.Now()
		return
	}
	l.refreshSource()
}

// refreshSource re-reads the primary address and, if it changed, makes it
// the source of the adverts that use it.
func (l *loop) refreshSource() {
	src, err := l.primary(l.link.Index)
	if err != nil || src == l.src {
		return
	}
	l.log.Info("primary address changed; adverts go from the new one", "from", l.src, "to", src)
	l.src = src
	l.readSrc.Store(&src)
	for _, in := range l.instances {
		if in.joined() {
			l.setSource(in)
		}
	}
}

// setSource gives in the loop's source, unless it has one of its own.
func (l *loop) setSource(in *instance) {
	if in.cfg.UnicastSource.IsValid() || (len(in.cfg.UnicastPeers) > 0 && in.cfg.Family == "ipv6") {
		return
	}
	if in.src == l.src {
		return
	}
	in.src = l.src
	in.resetAdverts()
	in.r.SetConfig(in.routerConfig())
}

func (l *loop) ownsVIP(p netip.Prefix) bool {
	for _, in := range l.instances {
		if hasVIP(in.cfg, p) {
			return true
		}
	}
	for _, in := range l.leaving {
		if hasVIP(in.cfg, p) {
			return true
		}
	}
	return false
}

// vmacIndex says whether idx is the virtual MAC interface of an instance
// of the loop.
func (l *loop) vmacIndex(idx int) bool {
	for _, in := range l.instances {
		if in.vmac != nil && in.vmac.Index() == idx {
			return true
		}
	}
	return false
}

// reconcile compares every VIP of the loop with the kernel's addresses:
// on the loop's interface, or on its instance's virtual MAC interface.
func (l *loop) reconcile(now time.Time) {
	l.reconcileAt = now.Add(reconcileEvery)
	if !l.open {
		return
	}
	ipv6 := l.family == "ipv6"
	have, err := l.d.sys.ListAddrs(l.link.Index, ipv6)
	if err != nil {
		l.log.Debug("listing addresses failed", "err", err)
		return
	}
	onVMAC := map[netip.Addr]*instance{}
	for _, in := range l.instances {
		if in.vmac == nil {
			continue
		}
		vhave, err := l.d.sys.ListAddrs(in.vmac.Index(), ipv6)
		if err != nil {
			in.log.Debug("listing addresses failed", "iface", in.cfg.VirtualMACInterface, "err", err)
			continue
		}
		for _, p := range in.cfg.VIPs {
			onVMAC[p.Addr()] = in
			l.reconcileVIP(now, p, vhave, in.vmac.Index())
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range l.vips() {
		if !seen[p] && onVMAC[p.Addr()] == nil {
			seen[p] = true
			l.reconcileVIP(now, p, have, l.link.Index)
		}
	}
}

// reconcileVIP makes the kernel agree with the instances about one VIP: on
// the interface while an instance holds it (Master, or handing over), off
// it otherwise. have is the interface's addresses.
func (l *loop) reconcileVIP(now time.Time, p netip.Prefix, have []netip.Prefix, idx int) {
	present := false
	for _, a := range have {
		if a.Addr() == p.Addr() {
			present = true
			break
		}
	}
	var holder, owner *instance
	for _, in := range l.instances {
		if hasVIP(in.cfg, p) {
			owner = in
			if in.joined() && in.r.Holding() {
				holder = in
			}
		}
	}
	for _, in := range l.leaving {
		if hasVIP(in.cfg, p) && in.r.Holding() {
			holder = in
		}
	}
	switch {
	case holder != nil && !present:
		holder.log.Warn("VIP missing from the interface; adding it again", "vip", p)
		holder.cell.added.Add(1)
		if err := l.d.sys.Add(idx, holder.vipPrefix(p), holder.cfg.VIPsAsSource); err != nil {
			holder.log.Error("adding VIP failed", "vip", p, "err", err)
			return
		}
		if !holder.stopping {
			l.step(holder, now, router.Event{Kind: router.Reannounce})
		}
	case holder == nil && present && owner != nil && owner.joined():
		owner.log.Warn("VIP present on a non-Master; removing it", "vip", p, "state", owner.r.State().String())
		owner.cell.removed.Add(1)
		if err := l.d.sys.Remove(idx, p); err != nil {
			owner.log.Error("removing VIP failed", "vip", p, "err", err)
		}
	}
}

// timerHeap orders instances by when their router must next be stepped.
type timerHeap []*instance

func (h timerHeap) less(i, j int) bool { return h[i].heapAt.Before(h[j].heapAt) }

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}

func (h *timerHeap) push(in *instance) {
	in.heapIdx = len(*h)
	*h = append(*h, in)
	h.up(in.heapIdx)
}

func (h *timerHeap) pop() *instance {
	in := (*h)[0]
	h.remove(in)
	return in
}

func (h *timerHeap) remove(in *instance) {
	i, n := in.heapIdx, len(*h)-1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	in.heapIdx = -1
	if i != n {
		h.fixAt(i)
	}
}

func (h timerHeap) fix(in *instance) { h.fixAt(in.heapIdx) }

func (h timerHeap) fixAt(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h timerHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
