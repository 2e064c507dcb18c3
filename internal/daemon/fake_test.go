package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/transport"
)

// segment is an in-memory Ethernet segment: what one host's conn sends
// reaches every other host's conn on it.
type segment struct {
	mu    sync.Mutex
	conns []*fakeConn
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

// host is a simulated machine with one interface, eth0, on a segment.
type host struct {
	seg  *segment
	addr netip.Addr

	mu        sync.Mutex
	vips      map[netip.Prefix]bool
	announced []netip.Addr
	conn      *fakeConn
	links     map[string]bool // name → up
	linkc     chan netif.Link
}

var _ System = (*host)(nil)

func newHost(seg *segment, addr string) *host {
	return &host{seg: seg, addr: netip.MustParseAddr(addr), vips: map[netip.Prefix]bool{},
		links: map[string]bool{"eth0": true, "eth1": true}, linkc: make(chan netif.Link, 16)}
}

func (h *host) LinkByName(name string) (netif.Link, error) {
	h.mu.Lock()
	up, ok := h.links[name]
	h.mu.Unlock()
	if !ok {
		return netif.Link{}, fmt.Errorf("link %s not found", name)
	}
	return netif.Link{Index: 2, Name: name, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, h.addr.As4()[3]}, Up: up}, nil
}

// setLink changes a link's state and notifies WatchLinks.
func (h *host) setLink(name string, up bool) {
	h.mu.Lock()
	h.links[name] = up
	h.mu.Unlock()
	h.linkc <- netif.Link{Name: name, Up: up}
}

func (h *host) WatchLinks(ctx context.Context, fn func(netif.Link)) error {
	h.mu.Lock()
	var existing []netif.Link
	for name, up := range h.links {
		existing = append(existing, netif.Link{Name: name, Up: up})
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

func (h *host) PrepareInterface(string) error { return nil }

func (h *host) PrimaryIPv4(int, []netip.Prefix) (netip.Addr, error) { return h.addr, nil }

func (h *host) ListenIPv4(int) (PacketConn, error) {
	c := &fakeConn{seg: h.seg, in: make(chan packet, 256), closed: make(chan struct{})}
	h.seg.mu.Lock()
	h.seg.conns = append(h.seg.conns, c)
	h.seg.mu.Unlock()
	h.mu.Lock()
	h.conn = c
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

func (h *host) Add(_ int, p netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vips[p] = true
	return nil
}

func (h *host) Remove(_ int, p netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.vips, p)
	return nil
}

func (h *host) has(p netip.Prefix) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.vips[p]
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
	seg       *segment
	in        chan packet
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *fakeConn) deliver(p packet) {
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

func (c *fakeConn) WriteTo(b []byte, src, dst netip.Addr) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	c.seg.mu.Lock()
	defer c.seg.mu.Unlock()
	for _, o := range c.seg.conns {
		if o != c {
			o.deliver(packet{b: append([]byte(nil), b...), src: src, dst: dst, ttl: 255})
		}
	}
	return nil
}

func (c *fakeConn) WriteBatch(ms []transport.Outgoing) (int, error) {
	for i, m := range ms {
		if err := c.WriteTo(m.B, m.Src, m.Dst); err != nil {
			return i, err
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
