package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/transport"
)

// segment is an in-memory Ethernet segment: what one host's conn sends
// reaches every other host's conn on it. Everything here uses channels and
// short mutexes only, so that the daemon's tests run it in a
// testing/synctest bubble, on fake time.
type segment struct {
	mu    sync.Mutex
	conns []*fakeConn
	// drop, if set, decides whether a packet from src is lost.
	drop func(src netip.Addr) bool
	// tap, if set, sees every advert the daemons send.
	tap  func(packet)
	sent int // adverts sent by the daemons
}

type packet struct {
	b        []byte
	src, dst netip.Addr
	ttl      int
}

// inject delivers a packet to every conn, as a stranger on the segment.
func (s *segment) inject(b []byte, src, dst netip.Addr, ttl int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.deliver(packet{b: append([]byte(nil), b...), src: src, dst: dst, ttl: ttl})
	}
}

// host is a simulated machine with interfaces eth0 (on the segment) and
// eth1, each of which can go down, be deleted and be created again.
type host struct {
	seg *segment

	mu        sync.Mutex
	addr      netip.Addr           // eth0's primary IPv4 address
	vips      map[netip.Prefix]int // the interface index each is on
	vmacs     map[int]*fakeVMAC    // by index
	vmacLog   []string             // "create NAME", "up NAME", "down NAME", "delete NAME"
	fromVMAC  int                  // adverts sent from a virtual MAC
	announced []netip.Addr
	conns     []*fakeConn
	links     map[string]*fakeLink
	nextIndex int
	linkc     chan netif.Link
	addrc     chan netif.AddrUpdate
	routes    fakeRoutes
	lb        fakeLB
	px        fakeProxies // proxy_test.go
}

type fakeLink struct {
	index   int
	up      bool
	deleted bool
}

var _ System = (*host)(nil)

// fakeRoutes is a host's routes manager: what each owner wants now.
type fakeRoutes struct {
	mu      sync.Mutex
	wants   map[string][]config.Route
	rules   map[string][]config.Rule
	running bool
}

func (r *fakeRoutes) Want(owner string, routes []config.Route, rules []config.Rule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wants == nil {
		r.wants, r.rules = map[string][]config.Route{}, map[string][]config.Rule{}
	}
	r.wants[owner], r.rules[owner] = routes, rules
}

func (r *fakeRoutes) Release(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.wants, owner)
	delete(r.rules, owner)
}

// Run removes every route at the end, as vroute.Manager does.
func (r *fakeRoutes) Run(ctx context.Context) error {
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
	clear(r.wants)
	clear(r.rules)
	return nil
}

// installed lists the routes wanted by anyone, as "to via".
func (r *fakeRoutes) installed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rs := range r.wants {
		for _, x := range rs {
			out = append(out, x.To.String()+" via "+x.Via.String())
		}
	}
	for _, rs := range r.rules {
		for _, x := range rs {
			out = append(out, "rule from "+x.From.String())
		}
	}
	slices.Sort(out)
	return out
}

func (r *fakeRoutes) Stats() metrics.RouteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rs := range r.wants {
		n += len(rs)
	}
	return metrics.RouteStats{Routes: n}
}

func (h *host) Routes() RouteSet { return &h.routes }

func (h *host) CleanupRoutes() error { return nil }

func newHost(seg *segment, addr string) *host {
	return &host{seg: seg, addr: netip.MustParseAddr(addr), vips: map[netip.Prefix]int{}, vmacs: map[int]*fakeVMAC{},
		links:     map[string]*fakeLink{"lo": {index: 1, up: true}, "eth0": {index: 2, up: true}, "eth1": {index: 3, up: true}},
		nextIndex: 4, linkc: make(chan netif.Link, 64), addrc: make(chan netif.AddrUpdate, 1024)}
}

func (h *host) LinkByName(name string) (netif.Link, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.links[name]
	if !ok || l.deleted {
		return netif.Link{}, fmt.Errorf("link %s not found", name)
	}
	return netif.Link{Index: l.index, Name: name, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, h.addr.As4()[3]}, Up: l.up}, nil
}

// setLink changes a link's state and notifies WatchLinks.
func (h *host) setLink(name string, up bool) {
	h.mu.Lock()
	l := h.links[name]
	l.up = up
	h.mu.Unlock()
	h.linkc <- netif.Link{Name: name, Index: l.index, Up: up}
}

// deleteLink deletes eth0: its addresses go, and its sockets fail to send.
func (h *host) deleteLink(name string) {
	h.mu.Lock()
	l := h.links[name]
	l.deleted, l.up = true, false
	clear(h.vips)
	for _, c := range h.conns {
		c.setGone()
	}
	h.mu.Unlock()
	h.linkc <- netif.Link{Name: name, Index: l.index, Deleted: true}
}

// recreateLink creates a deleted link again, with a new index, up.
func (h *host) recreateLink(name string) {
	h.mu.Lock()
	l := h.links[name]
	l.index, l.deleted, l.up = h.nextIndex, false, true
	h.nextIndex++
	h.mu.Unlock()
	h.linkc <- netif.Link{Name: name, Index: l.index, Up: true}
}

func (h *host) index(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.links[name].index
}

func (h *host) WatchLinks(ctx context.Context, fn func(netif.Link)) error {
	h.mu.Lock()
	var existing []netif.Link
	for name, l := range h.links {
		existing = append(existing, netif.Link{Name: name, Index: l.index, Up: l.up})
	}
	h.mu.Unlock()
	for _, l := range existing {
		fn(l)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-h.linkc:
			fn(l)
		}
	}
}

func (h *host) WatchAddrs(ctx context.Context, fn func(netif.AddrUpdate)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-h.addrc:
			fn(u)
		}
	}
}

func (h *host) ListAddrs(ifindex int, ipv6 bool) ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []netip.Prefix
	if !ipv6 {
		out = append(out, netip.PrefixFrom(h.addr, 24))
	}
	for p, idx := range h.vips {
		if p.Addr().Is6() == ipv6 && idx == ifindex {
			out = append(out, p)
		}
	}
	return out, nil
}

func (h *host) PrepareInterface(string) error { return nil }

func (h *host) PrimaryIPv4(int, []netip.Prefix) (netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr, nil
}

// setPrimary replaces eth0's primary address, as an operator would.
func (h *host) setPrimary(addr string) {
	h.mu.Lock()
	old := h.addr
	h.addr = netip.MustParseAddr(addr)
	idx := h.links["eth0"].index
	h.mu.Unlock()
	h.notifyAddr(netif.AddrUpdate{Index: idx, Prefix: netip.PrefixFrom(h.addr, 24), New: true})
	h.notifyAddr(netif.AddrUpdate{Index: idx, Prefix: netip.PrefixFrom(old, 24), New: false})
}

// notifyAddr sends an address notification; like the kernel's, it never
// blocks the sender and is lost when the listener's buffer is full.
func (h *host) notifyAddr(u netif.AddrUpdate) {
	select {
	case h.addrc <- u:
	default:
	}
}

func (h *host) ListenIPv4(int) (PacketConn, error) {
	c := &fakeConn{h: h, seg: h.seg, in: make(chan packet, 512), closed: make(chan struct{})}
	h.seg.mu.Lock()
	h.seg.conns = append(h.seg.conns, c)
	h.seg.mu.Unlock()
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c, nil
}

func (h *host) DialARP(int) (Announcer, error) { return (*fakeARP)(h), nil }

func (h *host) DialNDP(int) (Announcer, error) { return (*fakeARP)(h), nil }

func (h *host) LinkLocalIPv6(int) (netip.Addr, error) {
	a := h.addr.As4()
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: a[3]}), nil
}

func (h *host) PrimaryIPv6(int, []netip.Prefix) (netip.Addr, error) {
	a := h.addr.As4()
	return netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: a[3]}), nil
}

func (h *host) ListenIPv6(i int) (PacketConn, error) { return h.ListenIPv4(i) }

func (h *host) Add(ifindex int, p netip.Prefix, _ bool) error { return h.setVIP(ifindex, p, true) }

func (h *host) Remove(ifindex int, p netip.Prefix) error { return h.setVIP(ifindex, p, false) }

// setVIP adds or removes an address on eth0 (or lo) as the kernel does: once, with
// a notification.
func (h *host) setVIP(ifindex int, p netip.Prefix, on bool) error {
	h.mu.Lock()
	l := h.links["eth0"]
	if (l.deleted || l.index != ifindex) && h.vmacs[ifindex] == nil && ifindex != h.links["lo"].index {
		h.mu.Unlock()
		return fmt.Errorf("no interface with index %d", ifindex)
	}
	var changed bool
	if on {
		changed = h.vips[p] != ifindex
		h.vips[p] = ifindex
	} else {
		// By address, whatever the prefix length, as the kernel's.
		for q, idx := range h.vips {
			if q.Addr() == p.Addr() && idx == ifindex {
				delete(h.vips, q)
				changed = true
			}
		}
	}
	h.mu.Unlock()
	if changed {
		h.notifyAddr(netif.AddrUpdate{Index: ifindex, Prefix: p, New: on})
	}
	return nil
}

// drift adds or removes a VIP behind the daemon's back.
func (h *host) drift(p netip.Prefix, on bool) {
	if err := h.setVIP(h.index("eth0"), p, on); err != nil {
		panic(err)
	}
}

// has says whether p's address is on an interface of h (eth0 or a virtual
// MAC interface).
func (h *host) has(p netip.Prefix) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q := range h.vips {
		if q.Addr() == p.Addr() {
			return true
		}
	}
	return false
}

// hasOn says whether p's address is on the interface with index idx.
func (h *host) hasOn(p netip.Prefix, idx int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q, i := range h.vips {
		if q.Addr() == p.Addr() && i == idx {
			return true
		}
	}
	return false
}

// fakeVMAC is a virtual MAC interface of a host: what it sends reaches the
// segment, counted as from the virtual MAC.
type fakeVMAC struct {
	h     *host
	name  string
	index int
	up    bool
	conn  *fakeConn // for its sends; never on the segment's receivers
}

var _ VMAC = (*fakeVMAC)(nil)

func (h *host) OpenVMAC(s VMACSpec) (VMAC, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := &fakeVMAC{h: h, name: s.Name, index: h.nextIndex, conn: &fakeConn{h: h, seg: h.seg, closed: make(chan struct{})}}
	h.nextIndex++
	h.vmacs[v.index] = v
	h.vmacLog = append(h.vmacLog, "create "+s.Name)
	return v, nil
}

func (h *host) CleanupVMACs() error { return nil }

// vmacUp says whether the named virtual MAC interface exists and is up.
func (h *host) vmacUp(name string) (exists, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.vmacs {
		if v.name == name {
			return true, v.up
		}
	}
	return false, false
}

func (v *fakeVMAC) Index() int { return v.index }

func (v *fakeVMAC) SetUp(up bool) error {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	v.up = up
	word := "down "
	if up {
		word = "up "
	}
	v.h.vmacLog = append(v.h.vmacLog, word+v.name)
	return nil
}

func (v *fakeVMAC) AddLinkLocal(netip.Addr) error { return nil }

func (v *fakeVMAC) WriteBatch(ms []transport.Outgoing) (int, error) {
	v.h.mu.Lock()
	up := v.up
	if up {
		v.h.fromVMAC += len(ms)
	}
	v.h.mu.Unlock()
	if !up {
		return 0, &net.OpError{Op: "sendmmsg", Err: syscall.ENETDOWN}
	}
	return v.conn.WriteBatch(ms)
}

func (v *fakeVMAC) Announce(addr netip.Addr) error {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	if !v.up {
		return &net.OpError{Op: "sendto", Err: syscall.ENETDOWN}
	}
	v.h.announced = append(v.h.announced, addr)
	return nil
}

func (v *fakeVMAC) Close() error {
	v.h.mu.Lock()
	defer v.h.mu.Unlock()
	for q, i := range v.h.vips {
		if i == v.index {
			delete(v.h.vips, q)
		}
	}
	delete(v.h.vmacs, v.index)
	v.h.vmacLog = append(v.h.vmacLog, "delete "+v.name)
	return nil
}

func (h *host) announcements() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.announced)
}

type fakeARP host

func (a *fakeARP) Announce(addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announced = append(a.announced, addr)
	return nil
}

func (a *fakeARP) Close() error { return nil }

type fakeConn struct {
	h         *host
	seg       *segment
	in        chan packet
	closeOnce sync.Once
	closed    chan struct{}

	mu   sync.Mutex
	gone bool // the interface was deleted: sends fail
}

var _ PacketConn = (*fakeConn)(nil)

func (c *fakeConn) setGone() {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
}

func (c *fakeConn) deliver(p packet) {
	c.mu.Lock()
	gone := c.gone
	c.mu.Unlock()
	if gone {
		return
	}
	select {
	case <-c.closed:
	case c.in <- p:
	default: // a full socket buffer drops, as the kernel's does
	}
}

func (c *fakeConn) ReadFrom(b []byte) (int, transport.Meta, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), transport.Meta{Src: p.src, Dst: p.dst, TTL: p.ttl, IfIndex: 2}, nil
	case <-c.closed:
		return 0, transport.Meta{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteBatch(ms []transport.Outgoing) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	gone := c.gone
	c.mu.Unlock()
	if gone {
		return 0, &net.OpError{Op: "sendmmsg", Err: syscall.ENXIO}
	}
	c.seg.mu.Lock()
	defer c.seg.mu.Unlock()
	for _, m := range ms {
		c.seg.sent++
		if c.seg.tap != nil {
			c.seg.tap(packet{b: append([]byte(nil), m.B...), src: m.Src, dst: m.Dst, ttl: 255})
		}
		if c.seg.drop != nil && c.seg.drop(m.Src) {
			continue
		}
		for _, o := range c.seg.conns {
			if o != c {
				o.deliver(packet{b: append([]byte(nil), m.B...), src: m.Src, dst: m.Dst, ttl: 255})
			}
		}
	}
	return len(ms), nil
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.seg.mu.Lock()
		defer c.seg.mu.Unlock()
		for i, o := range c.seg.conns {
			if o == c {
				c.seg.conns = append(c.seg.conns[:i], c.seg.conns[i+1:]...)
				break
			}
		}
	})
	return nil
}

// fakeProbe is a health check's probe that a test turns up and down.
type fakeProbe struct {
	mu sync.Mutex
	up bool
}

func (p *fakeProbe) set(up bool) {
	p.mu.Lock()
	p.up = up
	p.mu.Unlock()
}

func (p *fakeProbe) Probe(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up {
		return fmt.Errorf("service down")
	}
	return nil
}
