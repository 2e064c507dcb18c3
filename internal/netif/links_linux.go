package netif

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// SubscribeLinks calls fn with the state of every existing link, then with
// every change, until ctx is done. It listens to the kernel's link
// notifications (RTNLGRP_LINK) rather than polling. fn runs on one
// goroutine, in order; it must not block for long.
//
// It returns nil when ctx is done and an error when the subscription fails
// (the kernel dropped notifications, say): the caller's view of the links
// may then be stale, and subscribing again lists them afresh.
func SubscribeLinks(ctx context.Context, fn func(Link)) error {
	s, err := subscribeGroups(ctx, unix.RTMGRP_LINK)
	if err != nil {
		return fmt.Errorf("netif: subscribing to link changes: %w", err)
	}
	defer s.close()
	if err := s.dump(unix.RTM_GETLINK); err != nil {
		return fmt.Errorf("netif: listing links: %w", err)
	}
	err = s.follow(ctx, func(m syscall.NetlinkMessage) {
		if l, ok := linkOf(m); ok {
			fn(l)
		}
	})
	if err != nil {
		return fmt.Errorf("netif: link notifications: %w", err)
	}
	return nil
}

// linkOf is the Link an RTM_NEWLINK or RTM_DELLINK message describes,
// false for another message or one that does not parse.
func linkOf(m syscall.NetlinkMessage) (Link, bool) {
	if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK || len(m.Data) < unix.SizeofIfInfomsg {
		return Link{}, false
	}
	hdr := unix.NlMsghdr{Len: m.Header.Len, Type: m.Header.Type, Flags: m.Header.Flags, Seq: m.Header.Seq, Pid: m.Header.Pid}
	l, err := netlink.LinkDeserialize(&hdr, m.Data)
	if err != nil {
		return Link{}, false
	}
	a := l.Attrs()
	// A bridge sends RTM_DELLINK of family AF_BRIDGE when a port leaves it
	// (br_ifinfo_notify): the port is no longer a port, but it still exists.
	deleted := m.Header.Type == unix.RTM_DELLINK && m.Data[0] != unix.AF_BRIDGE
	return Link{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: a.HardwareAddr,
		Up:           a.Flags&net.FlagUp != 0 && a.Flags&net.FlagRunning != 0 && !deleted,
		Deleted:      deleted,
	}, true
}

// SubscribeAddrs calls fn with every existing address (IPv4 and IPv6) of
// every link, then with every address added or deleted, until ctx is done.
// It listens to the kernel's address notifications (RTNLGRP_IPV4_IFADDR and
// RTNLGRP_IPV6_IFADDR). fn runs on one goroutine, in order; it must not
// block for long.
//
// It returns nil when ctx is done and an error when the subscription fails,
// as SubscribeLinks does.
func SubscribeAddrs(ctx context.Context, fn func(AddrUpdate)) error {
	s, err := subscribeGroups(ctx, unix.RTMGRP_IPV4_IFADDR|unix.RTMGRP_IPV6_IFADDR)
	if err != nil {
		return fmt.Errorf("netif: subscribing to address changes: %w", err)
	}
	defer s.close()
	if err := s.dump(unix.RTM_GETADDR); err != nil {
		return fmt.Errorf("netif: listing addresses: %w", err)
	}
	err = s.follow(ctx, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
			return
		}
		if u, ok := addrUpdateOf(m.Data, m.Header.Type == unix.RTM_NEWADDR); ok {
			fn(u)
		}
	})
	if err != nil {
		return fmt.Errorf("netif: address notifications: %w", err)
	}
	return nil
}

// Prefixes returns the addresses as prefixes, IPv4 unmapped.
func Prefixes(as []netlink.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}

// addrUpdateOf is the AddrUpdate of an RTM_NEWADDR (added) or RTM_DELADDR
// message's body (struct ifaddrmsg and its attributes), false for one
// without a usable address. The address is IFA_LOCAL where there is one
// (IFA_ADDRESS is then the peer of a point-to-point address, and the
// local address has no prefix of its own), as iproute2 shows it.
func addrUpdateOf(b []byte, added bool) (AddrUpdate, bool) {
	if len(b) < unix.SizeofIfAddrmsg {
		return AddrUpdate{}, false
	}
	msg := nl.DeserializeIfAddrmsg(b)
	attrs, err := nl.ParseRouteAttr(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return AddrUpdate{}, false
	}
	var local, address []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			local = a.Value
		case unix.IFA_ADDRESS:
			address = a.Value
		}
	}
	ip, bits := address, int(msg.Prefixlen)
	if local != nil && (address == nil || string(local) != string(address)) {
		ip, bits = local, 8*len(local)
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || bits > addr.BitLen() {
		return AddrUpdate{}, false
	}
	if addr.Is4In6() {
		if bits < 96 {
			return AddrUpdate{}, false
		}
		addr, bits = addr.Unmap(), bits-96
	}
	return AddrUpdate{Index: int(msg.Index), Prefix: netip.PrefixFrom(addr, bits), New: added}, true
}

// Skipped says whether err, reported by a vishvananda/netlink
// subscription's ErrorCallback, is about a message the library then
// skipped (one from a sender other than the kernel) rather than the
// subscription failing: no reason to subscribe again.
func Skipped(err error) bool {
	return strings.HasPrefix(err.Error(), "Wrong sender portid")
}
