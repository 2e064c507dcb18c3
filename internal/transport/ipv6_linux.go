package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// GroupIPv6 is the IPv6 multicast group of VRRP adverts (RFC 9568 §5.1.2.2).
var GroupIPv6 = netip.MustParseAddr("ff02::12")

// IPv6 socket invariants, asserted by the tests.
const (
	// hopLimit is both the unicast and the multicast hop limit: receivers
	// drop adverts with any other (RFC 9568 §5.1.2.3).
	hopLimit = 255
	// tclass marks adverts as network control (DSCP CS6), as tos does for
	// IPv4.
	tclass = 0xc0
)

// IPv6Conn is a raw IPv6 socket for VRRP bound to one interface.
//
// The kernel neither computes nor checks the VRRP checksum: IPV6_CHECKSUM
// stays off (RFC 3542 §3.1; the Linux default for protocols other than
// ICMPv6). The codec (pkg/vrrp) computes it over the IPv6 pseudo-header and
// checks it on receipt; were the kernel to check it, packets with a bad
// checksum would vanish in the kernel instead of being counted under a drop
// reason.
//
// ReadFrom is for one goroutine at a time (it reuses its buffers); WriteTo and
// Close may be called from any goroutine, concurrently with ReadFrom.
type IPv6Conn struct {
	ifindex int
	pc      *ipv6.PacketConn
	rc      syscall.RawConn

	// Reused by ReadFrom, which reads with a raw recvmsg into these (so
	// that nothing is allocated per packet). A raw IPv6 socket delivers no
	// IP header: the source comes from the socket address, the hop limit,
	// destination and interface from control messages.
	oob  []byte
	rerr error
	n    int
	from unix.RawSockaddrInet6
	iov  unix.Iovec
	msg  unix.Msghdr
	recv func(fd uintptr) bool

	batch batchSender
}

// ListenIPv6 opens a raw IPv6 socket for protocol 112 in the calling
// thread's network namespace, bound to the interface with index ifindex. It
// joins ff02::12 on that interface and sets, once and for the socket's
// life: unicast and multicast hop limit 255, multicast loopback off,
// multicast interface ifindex, IPV6_MULTICAST_ALL off, traffic class network
// control, and IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO for the hop limit,
// destination and receiving interface.
func ListenIPv6(ifindex int) (*IPv6Conn, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("transport: invalid interface index %d", ifindex)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) { err = bindIPv6(int(fd), ifindex) })
		return errors.Join(cerr, err)
	}}
	pconn, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip6:%d", Protocol), "::")
	if err != nil {
		return nil, fmt.Errorf("transport: raw IPv6 socket on interface index %d: %w", ifindex, err)
	}
	c := &IPv6Conn{ifindex: ifindex, pc: ipv6.NewPacketConn(pconn)}
	sc, ok := pconn.(syscall.Conn)
	if !ok { // net.ListenPacket("ip6:...") returns a *net.IPConn
		pconn.Close()
		return nil, fmt.Errorf("transport: raw IPv6 socket: %T is not a syscall.Conn", pconn)
	}
	if c.rc, err = sc.SyscallConn(); err == nil {
		err = c.setup()
	}
	if err != nil {
		pconn.Close()
		return nil, fmt.Errorf("transport: raw IPv6 socket on interface index %d: %w", ifindex, err)
	}
	c.oob = ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagDst | ipv6.FlagInterface)
	if len(c.oob) == 0 {
		c.oob = make([]byte, 128)
	}
	c.recv = c.recvmsg
	c.batch = batchSender{sockaddr: sockaddr6, control: func(src netip.Addr) []byte {
		// IPV6_PKTINFO's ipi6_addr sets the source address, ipi6_ifindex
		// the interface.
		return (&ipv6.ControlMessage{Src: src.WithZone("").AsSlice(), IfIndex: ifindex}).Marshal()
	}}
	if c.batch.fd, err = openSender(unix.AF_INET6, ifindex); err != nil {
		pconn.Close()
		return nil, fmt.Errorf("transport: raw IPv6 socket on interface index %d: %w", ifindex, err)
	}
	return c, nil
}

// bindIPv6 runs on the new socket before Go binds it; see bindIPv4.
func bindIPv6(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex); err != nil {
		return fmt.Errorf("SO_BINDTOIFINDEX %d: %w", ifindex, err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_ALL: %w", err)
	}
	setBuffers(fd)
	var b [1]byte
	for range 4096 { // bounded by the receive buffer anyway
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	return nil
}

func (c *IPv6Conn) setup() error {
	ifi := &net.Interface{Index: c.ifindex} // x/net only uses the index on Linux
	group := &net.IPAddr{IP: GroupIPv6.AsSlice()}
	for _, step := range []struct {
		what string
		err  func() error
	}{
		{"IPV6_UNICAST_HOPS", func() error { return c.pc.SetHopLimit(hopLimit) }},
		{"IPV6_MULTICAST_HOPS", func() error { return c.pc.SetMulticastHopLimit(hopLimit) }},
		{"IPV6_MULTICAST_LOOP", func() error { return c.pc.SetMulticastLoopback(false) }},
		{"IPV6_MULTICAST_IF", func() error { return c.pc.SetMulticastInterface(ifi) }},
		{"IPV6_TCLASS", func() error { return c.pc.SetTrafficClass(tclass) }},
		{"IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO", func() error {
			return c.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
		}},
		{"join " + GroupIPv6.String(), func() error { return c.pc.JoinGroup(ifi, group) }},
	} {
		if err := step.err(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	return nil
}

// recvmsg is the raw read ReadFrom hands to the runtime poller; it returns
// false to wait for the socket to become readable. Reading through the raw
// connection rather than x/net's ReadBatch keeps the source as a number: x/net
// would name a link-local source's zone by looking the interface index up in
// the reading thread's namespace, with a netlink dump when it is not found.
func (c *IPv6Conn) recvmsg(fd uintptr) bool {
	r, e := rawNonblocking(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&c.msg)), unix.MSG_DONTWAIT, 0)
	return readDone(r, e, &c.n, &c.rerr)
}

// ReadFrom blocks until a VRRP packet arrives and copies the VRRP message
// into b; a message longer than b is truncated. Meta.Src carries no zone
// (Meta.IfIndex says where the packet came from) and Meta.TTL is the hop
// limit; were the kernel ever to leave its control message out, TTL would be
// 0, which no valid advert has. It returns an error wrapping net.ErrClosed
// once Close was called.
func (c *IPv6Conn) ReadFrom(b []byte) (int, Meta, error) {
	c.rerr = nil
	c.from = unix.RawSockaddrInet6{}
	c.iov = unix.Iovec{}
	if len(b) > 0 {
		c.iov.Base = &b[0]
		c.iov.SetLen(len(b))
	}
	c.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&c.from)), Namelen: unix.SizeofSockaddrInet6, Iov: &c.iov}
	c.msg.SetIovlen(1)
	c.msg.Control = &c.oob[0]
	c.msg.SetControllen(len(c.oob))
	err := c.rc.Read(c.recv) // wraps net.ErrClosed or os.ErrDeadlineExceeded
	c.iov.Base = nil         // b is the caller's
	if err == nil && c.rerr != nil {
		err = os.NewSyscallError("recvmsg", c.rerr)
	}
	if err != nil {
		return 0, Meta{}, fmt.Errorf("transport: %w", err)
	}
	if c.from.Family != unix.AF_INET6 {
		return 0, Meta{}, fmt.Errorf("transport: packet from address family %d", c.from.Family)
	}
	meta := Meta{Src: netip.AddrFrom16(c.from.Addr)}
	if err := parseControl6(c.oob[:min(int(c.msg.Controllen), len(c.oob))], &meta); err != nil {
		return 0, Meta{}, fmt.Errorf("transport: control message: %w", err)
	}
	return min(c.n, len(b)), meta, nil
}

// parseControl6 reads the hop limit (IPV6_HOPLIMIT) and the destination and
// interface (IPV6_PKTINFO) from control messages into m.
func parseControl6(b []byte, m *Meta) error {
	return eachControl(b, func(level, typ int32, data []byte) {
		switch {
		case level != unix.IPPROTO_IPV6:
		case typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.TTL = int(*(*int32)(unsafe.Pointer(&data[0])))
		case typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			m.Dst, m.IfIndex = netip.AddrFrom16(pi.Addr), int(pi.Ifindex)
		}
	})
}

// WriteTo sends b, a marshalled VRRP message, to dst (ff02::12 or a unicast
// peer) from src, which must be a usable (not tentative) address of the
// interface: its link-local address for multicast (RFC 9568 §5.1.2.1). Hop
// limit is 255. Zones are ignored: the socket's interface is the zone.
func (c *IPv6Conn) WriteTo(b []byte, src, dst netip.Addr) error {
	_, err := c.WriteBatch([]Outgoing{{B: b, Src: src, Dst: dst}})
	return err
}

// WriteBatch sends ms in order, each as WriteTo would, in as few system
// calls as it can (sendmmsg). It stops at the first message that fails and returns
// how many were sent before it, and its error.
func (c *IPv6Conn) WriteBatch(ms []Outgoing) (int, error) {
	for _, m := range ms {
		if !ipv6Only(m.Src) || !ipv6Only(m.Dst) {
			return 0, fmt.Errorf("transport: IPv6 send from %v to %v: want two IPv6 addresses", m.Src, m.Dst)
		}
	}
	return c.batch.send(ms)
}

// ipv6Only reports whether a is an IPv6 address that is not an IPv4-mapped one.
func ipv6Only(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// Close closes the socket; a ReadFrom blocked on it returns.
func (c *IPv6Conn) Close() error { return errors.Join(c.pc.Close(), c.batch.close()) }
