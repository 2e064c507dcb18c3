package transport

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// openSender opens the socket adverts leave from: a second raw socket of
// protocol 112 on the interface, with the send invariants of the receiving
// one, that the runtime's poller does not watch. On a socket the poller
// watches, every packet that leaves the send buffer makes the kernel
// signal the socket writable (EPOLLOUT), which wakes a thread of the
// runtime for nothing after every send: at one advert every 10 ms that was
// a fifth of vipd's CPU. This socket receives nothing: a filter drops every
// packet before it is queued.
func openSender(family, ifindex int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return -1, fmt.Errorf("send socket: %w", err)
	}
	if err := senderOptions(fd, family, ifindex); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("send socket: %w", err)
	}
	return fd, nil
}

func senderOptions(fd, family, ifindex int) error {
	type opt struct {
		name       string
		level, opt int
		value      int
	}
	opts := []opt{{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex}}
	if family == unix.AF_INET6 {
		opts = append(opts,
			opt{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, hopLimit},
			opt{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hopLimit},
			opt{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			opt{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex},
			opt{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tclass},
		)
	} else {
		opts = append(opts,
			opt{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, ttl},
			opt{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl},
			opt{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			opt{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, tos},
		)
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	if family == unix.AF_INET {
		mreq := &unix.IPMreqn{Ifindex: int32(ifindex)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
			return fmt.Errorf("IP_MULTICAST_IF: %w", err)
		}
	}
	// BPF_RET|BPF_K 0: keep nothing of any packet.
	drop := unix.SockFprog{Len: 1, Filter: &[]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &drop); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	// It only sends: no receive buffer beyond the default.
	setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)
	return nil
}

// Sender sends adverts on one interface and receives nothing: the socket
// of an instance whose adverts leave from a virtual MAC interface while
// the loop's socket, on the parent, receives.
type Sender struct {
	batch batchSender
}

// DialSender opens a Sender on the interface with index ifindex, IPv6 or
// IPv4, with the socket invariants of ListenIPv4 and ListenIPv6.
func DialSender(ifindex int, v6 bool) (*Sender, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("transport: invalid interface index %d", ifindex)
	}
	s := &Sender{}
	family := unix.AF_INET
	s.batch = batchSender{sockaddr: sockaddr4, control: func(src netip.Addr) []byte {
		return (&ipv4.ControlMessage{Src: src.Unmap().AsSlice(), IfIndex: ifindex}).Marshal()
	}}
	if v6 {
		family = unix.AF_INET6
		s.batch = batchSender{sockaddr: sockaddr6, control: func(src netip.Addr) []byte {
			return (&ipv6.ControlMessage{Src: src.WithZone("").AsSlice(), IfIndex: ifindex}).Marshal()
		}}
	}
	var err error
	if s.batch.fd, err = openSender(family, ifindex); err != nil {
		return nil, fmt.Errorf("transport: sender on interface index %d: %w", ifindex, err)
	}
	return s, nil
}

// WriteBatch is IPv4Conn.WriteBatch.
func (s *Sender) WriteBatch(ms []Outgoing) (int, error) { return s.batch.send(ms) }

// Close closes the socket.
func (s *Sender) Close() error { return s.batch.close() }
