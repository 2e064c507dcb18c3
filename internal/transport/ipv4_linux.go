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

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Protocol is VRRP's IP protocol number (RFC 9568 §5.1.1.3).
const Protocol = 112

// GroupIPv4 is the IPv4 multicast group of VRRP adverts (RFC 9568 §5.1.1.2).
var GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// Socket invariants, asserted by the tests.
const (
	// ttl is both the unicast and the multicast TTL: receivers drop adverts
	// with any other TTL (RFC 9568 §5.1.1.3), which keeps VRRP on the link.
	ttl = 255
	// tos marks adverts as network control (precedence 6, DSCP CS6), as
	// keepalived does, so that congested queues keep them.
	tos = 0xc0
)

// IPv4Conn is a raw IPv4 socket for VRRP bound to one interface.
//
// ReadFrom is for one goroutine at a time (it reuses its buffers); WriteTo and
// Close may be called from any goroutine, concurrently with ReadFrom.
type IPv4Conn struct {
	ifindex int
	pc      *ipv4.PacketConn

	// Reused by ReadFrom, which reads up to readBatch packets per system
	// call (recvmmsg, raw, into these buffers: x/net's ReadBatch allocates
	// its message headers at every call) and returns them one by one:
	// msgs[next:count] are still to be returned. A raw IPv4 socket always
	// delivers the IP header: it lands in hdr[i], the rest of the packet in
	// buf[i].
	rc          syscall.RawConn
	hdr         [readBatch][ipv4.HeaderLen]byte
	buf         [readBatch][]byte
	oob         [readBatch][]byte
	iovs        [readBatch][2]unix.Iovec
	msgs        [readBatch]mmsghdr
	next, count int
	rerr        error
	recv        func(fd uintptr) bool

	batch batchSender
}

// ListenIPv4 opens a raw IPv4 socket for protocol 112 in the calling thread's
// network namespace, bound to the interface with index ifindex. It joins
// 224.0.0.18 on that interface and sets, once and for the socket's life: TTL
// and multicast TTL 255, multicast loopback off, multicast interface ifindex,
// IP_MULTICAST_ALL off, TOS network control, and IP_PKTINFO for the
// receiving interface. TTL, source and destination come from the IP header
// that raw IPv4 sockets deliver anyway, so no IP_RECVTTL is asked for.
func ListenIPv4(ifindex int) (*IPv4Conn, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("transport: invalid interface index %d", ifindex)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) { err = bindIPv4(int(fd), ifindex) })
		return errors.Join(cerr, err)
	}}
	pconn, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip4:%d", Protocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("transport: raw IPv4 socket on interface index %d: %w", ifindex, err)
	}
	c := &IPv4Conn{ifindex: ifindex, pc: ipv4.NewPacketConn(pconn)}
	c.batch = batchSender{sockaddr: sockaddr4, control: func(src netip.Addr) []byte {
		// IP_PKTINFO's ipi_spec_dst sets the source address of a raw
		// socket's packet, ipi_ifindex its interface.
		return (&ipv4.ControlMessage{Src: src.Unmap().AsSlice(), IfIndex: ifindex}).Marshal()
	}}
	if c.batch.fd, err = openSender(unix.AF_INET, ifindex); err != nil {
		pconn.Close()
		return nil, fmt.Errorf("transport: raw IPv4 socket on interface index %d: %w", ifindex, err)
	}
	if err := c.setup(); err != nil {
		c.Close()
		return nil, fmt.Errorf("transport: raw IPv4 socket on interface index %d: %w", ifindex, err)
	}
	if sc, ok := pconn.(syscall.Conn); ok {
		c.rc, err = sc.SyscallConn()
	} else {
		err = fmt.Errorf("%T has no file descriptor", pconn)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("transport: raw IPv4 socket on interface index %d: %w", ifindex, err)
	}
	const flags = ipv4.FlagDst | ipv4.FlagInterface // both IP_PKTINFO on Linux
	for i := range c.msgs {
		c.oob[i] = ipv4.NewControlMessage(flags)
		c.buf[i] = make([]byte, maxPacket)
		c.iovs[i][0].Base, c.iovs[i][1].Base = &c.hdr[i][0], &c.buf[i][0]
		c.iovs[i][0].SetLen(ipv4.HeaderLen)
		c.iovs[i][1].SetLen(maxPacket)
	}
	c.recv = c.recvmmsg
	return c, nil
}

// readBatch is how many packets ReadFrom takes from the socket at once;
// maxPacket is the longest packet it reads whole (the VRRP message is
// truncated beyond it, as by a short buffer).
const (
	readBatch = 16
	maxPacket = 2048
)

// bindIPv4 runs on the new socket before Go binds it. A raw socket is hashed
// for its protocol as soon as it exists and so may already hold packets that
// arrived on other interfaces; after SO_BINDTOIFINDEX no more can come, so
// what is queued is dropped here.
func bindIPv4(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex); err != nil {
		return fmt.Errorf("SO_BINDTOIFINDEX %d: %w", ifindex, err)
	}
	// Only groups this socket joined, on its interface, reach it, not every
	// group any socket joined (the Linux default).
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fmt.Errorf("IP_MULTICAST_ALL: %w", err)
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

func (c *IPv4Conn) setup() error {
	ifi := &net.Interface{Index: c.ifindex} // x/net only uses the index on Linux
	group := &net.IPAddr{IP: GroupIPv4.AsSlice()}
	for _, step := range []struct {
		what string
		err  func() error
	}{
		{"IP_TTL", func() error { return c.pc.SetTTL(ttl) }},
		{"IP_MULTICAST_TTL", func() error { return c.pc.SetMulticastTTL(ttl) }},
		{"IP_MULTICAST_LOOP", func() error { return c.pc.SetMulticastLoopback(false) }},
		{"IP_MULTICAST_IF", func() error { return c.pc.SetMulticastInterface(ifi) }},
		{"IP_TOS", func() error { return c.pc.SetTOS(tos) }},
		{"IP_PKTINFO", func() error { return c.pc.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) }},
		{"join " + GroupIPv4.String(), func() error { return c.pc.JoinGroup(ifi, group) }},
	} {
		if err := step.err(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	return nil
}

// ReadFrom blocks until a VRRP packet arrives and copies the VRRP message,
// without the IP header, into b; a message longer than b is truncated. It
// takes up to readBatch packets from the socket at once and returns the
// rest from later calls. It returns an error wrapping net.ErrClosed once
// Close was called.
func (c *IPv4Conn) ReadFrom(b []byte) (int, Meta, error) {
	if c.next == c.count {
		for i := range c.msgs {
			h := &c.msgs[i]
			*h = mmsghdr{}
			h.hdr.Iov = &c.iovs[i][0]
			h.hdr.SetIovlen(2)
			h.hdr.Control = &c.oob[i][0]
			h.hdr.SetControllen(len(c.oob[i]))
		}
		c.count, c.rerr = 0, nil
		err := c.rc.Read(c.recv) // wraps net.ErrClosed or os.ErrDeadlineExceeded
		if err == nil && c.rerr != nil {
			err = os.NewSyscallError("recvmmsg", c.rerr)
		}
		if err != nil {
			return 0, Meta{}, fmt.Errorf("transport: %w", err)
		}
		if c.count <= 0 {
			return 0, Meta{}, errors.New("transport: recvmmsg returned no packet")
		}
		c.next = 0
	}
	i := c.next
	c.next++
	m, hdr := &c.msgs[i], c.hdr[i][:]
	n := int(m.len)
	hl := int(hdr[0]&0x0f) << 2
	if n < ipv4.HeaderLen || hl < ipv4.HeaderLen || n < hl {
		return 0, Meta{}, fmt.Errorf("transport: %d-byte packet with a %d-byte IPv4 header", n, hl)
	}
	// Options, if any, spilled into buf before the VRRP message.
	n = copy(b, c.buf[i][hl-ipv4.HeaderLen:n-ipv4.HeaderLen])
	meta := Meta{
		Src: netip.AddrFrom4([4]byte(hdr[12:16])),
		Dst: netip.AddrFrom4([4]byte(hdr[16:20])),
		TTL: int(hdr[8]),
	}
	ifindex, err := pktinfoIndex(c.oob[i][:min(int(m.hdr.Controllen), len(c.oob[i]))])
	if err != nil {
		return 0, Meta{}, fmt.Errorf("transport: control message: %w", err)
	}
	meta.IfIndex = ifindex
	return n, meta, nil
}

// pktinfoIndex returns the interface index of the IP_PKTINFO control
// message in b, 0 if there is none.
func pktinfoIndex(b []byte) (int, error) {
	index := 0
	err := eachControl(b, func(level, typ int32, data []byte) {
		if level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo {
			index = int((*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0])).Ifindex)
		}
	})
	return index, err
}

// recvmmsg is the raw read ReadFrom hands to the runtime poller; it returns
// false to wait for the socket to become readable.
func (c *IPv4Conn) recvmmsg(fd uintptr) bool {
	r, e := rawNonblocking(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.msgs[0])), readBatch, unix.MSG_DONTWAIT)
	return readDone(r, e, &c.count, &c.rerr)
}

// WriteTo sends b, a marshalled VRRP message, to dst (224.0.0.18 or a unicast
// peer) from src, which must be an address of the interface. TTL is 255.
func (c *IPv4Conn) WriteTo(b []byte, src, dst netip.Addr) error {
	_, err := c.WriteBatch([]Outgoing{{B: b, Src: src, Dst: dst}})
	return err
}

// WriteBatch sends ms in order, each as WriteTo would, in as few system
// calls as it can (sendmmsg). It stops at the first message that fails and returns
// how many were sent before it, and its error.
func (c *IPv4Conn) WriteBatch(ms []Outgoing) (int, error) {
	for _, m := range ms {
		if !m.Src.Unmap().Is4() || !m.Dst.Unmap().Is4() {
			return 0, fmt.Errorf("transport: IPv4 send from %v to %v: want two IPv4 addresses", m.Src, m.Dst)
		}
	}
	return c.batch.send(ms)
}

// Close closes the socket; a ReadFrom blocked on it returns.
func (c *IPv4Conn) Close() error { return errors.Join(c.pc.Close(), c.batch.close()) }
