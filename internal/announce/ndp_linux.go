package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/mdlayher/ndp"
	"github.com/vipd/vipd/internal/netif"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ndHopLimit is required of every neighbour discovery message; receivers
// drop others (RFC 4861 §7.1.2).
const ndHopLimit = 255

// allNodes is the destination of unsolicited neighbour advertisements
// (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// unsolicitedNA returns the ICMPv6 message of an unsolicited neighbour
// advertisement (RFC 4861 §4.4, §7.2.6) for target, whose link-layer
// address is mac, as mdlayher/ndp builds it: Override set, so that
// receivers replace the link-layer address they hold; Solicited clear, as
// nobody asked; Router clear, as vipd is no router (a set flag would make
// hosts take this as their default router, §7.2.5). The checksum is left
// zero: for ICMPv6 raw sockets the kernel computes it (RFC 3542 §3.1).
func unsolicitedNA(target netip.Addr, mac net.HardwareAddr) ([]byte, error) {
	return ndp.MarshalMessage(&ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: target,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	})
}

// NDP sends unsolicited neighbour advertisements on one interface. It is
// safe for concurrent use.
type NDP struct {
	ifindex int
	pc      *ipv6.PacketConn
	mac     net.HardwareAddr
	// addrs looks up the source, the link-local address, in the socket's
	// network namespace.
	addrs *netif.Addrs
}

// DialNDP opens an ICMPv6 raw socket on the interface with index ifindex,
// in the calling thread's network namespace, with unicast and multicast hop
// limit 255 and multicast loopback off. It only sends: an ICMPv6 filter
// blocks every incoming type. Advertisements carry the interface's MAC
// address as it is now.
func DialNDP(ifindex int) (*NDP, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("announce: interface index %d: %w", ifindex, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce: %s has no Ethernet address (%q)", ifi.Name, ifi.HardwareAddr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) { err = sendOnlyICMPv6(int(fd), ifindex) })
		return errors.Join(cerr, err)
	}}
	pconn, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("announce: ICMPv6 socket on %s: %w", ifi.Name, err)
	}
	n := &NDP{ifindex: ifindex, pc: ipv6.NewPacketConn(pconn), mac: ifi.HardwareAddr}
	for _, step := range []struct {
		what string
		err  func() error
	}{
		{"IPV6_UNICAST_HOPS", func() error { return n.pc.SetHopLimit(ndHopLimit) }},
		{"IPV6_MULTICAST_HOPS", func() error { return n.pc.SetMulticastHopLimit(ndHopLimit) }},
		{"IPV6_MULTICAST_LOOP", func() error { return n.pc.SetMulticastLoopback(false) }},
		{"IPV6_MULTICAST_IF", func() error { return n.pc.SetMulticastInterface(ifi) }},
	} {
		if err := step.err(); err != nil {
			pconn.Close()
			return nil, fmt.Errorf("announce: ICMPv6 socket on %s: %s: %w", ifi.Name, step.what, err)
		}
	}
	if n.addrs, err = netif.NewAddrs(); err != nil {
		pconn.Close()
		return nil, fmt.Errorf("announce: %w", err)
	}
	return n, nil
}

// sendOnlyICMPv6 runs on the new socket before Go binds it: it binds it to
// the interface and blocks every ICMPv6 type, so that the neighbour
// discovery and MLD traffic of the link does not queue on a socket nobody
// reads; what queued before the filter was set is dropped.
func sendOnlyICMPv6(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex); err != nil {
		return fmt.Errorf("SO_BINDTOIFINDEX %d: %w", ifindex, err)
	}
	var blockAll unix.ICMPv6Filter // Linux: a set bit blocks its type
	for i := range blockAll.Data {
		blockAll.Data[i] = ^uint32(0)
	}
	if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &blockAll); err != nil {
		return fmt.Errorf("ICMPV6_FILTER: %w", err)
	}
	var b [1]byte
	for range 4096 { // bounded by the receive buffer anyway
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	return nil
}

// Announce sends one unsolicited neighbour advertisement for addr to
// ff02::1 from the interface's link-local address (see appendUnsolicitedNA).
// RFC 4861 §7.2.6 allows a few, spaced out; repeating is the caller's.
//
// The link-local address is looked up on every call, as it may change or
// finish duplicate address detection after DialNDP. While it is tentative
// the kernel would refuse it as a source: the error then wraps
// netif.ErrTentative, and a later call will succeed.
func (n *NDP) Announce(addr netip.Addr) error {
	if !addr.Is6() || addr.Is4In6() || addr.IsMulticast() || addr.IsUnspecified() {
		return fmt.Errorf("announce: neighbour advertisement for %v: not an IPv6 unicast address", addr)
	}
	addr = addr.WithZone("")
	src, err := n.addrs.LinkLocalIPv6(n.ifindex)
	if err != nil {
		return fmt.Errorf("announce: neighbour advertisement for %v: source: %w", addr, err)
	}
	b, err := unsolicitedNA(addr, n.mac)
	if err != nil {
		return fmt.Errorf("announce: neighbour advertisement for %v: %w", addr, err)
	}
	cm := &ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: n.ifindex}
	if _, err := n.pc.WriteTo(b, cm, &net.IPAddr{IP: allNodes.AsSlice()}); err != nil {
		return fmt.Errorf("announce: neighbour advertisement for %v from %v: %w", addr, src, err)
	}
	return nil
}

// Close closes the sockets.
func (n *NDP) Close() error {
	return errors.Join(n.pc.Close(), n.addrs.Close())
}
