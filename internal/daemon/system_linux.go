package daemon

import (
	"context"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/announce"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/transport"
)

// linuxSystem is System on Linux: netlink, raw IP and packet sockets.
type linuxSystem struct {
	*netif.Addrs
}

var _ System = (*linuxSystem)(nil)

// NewSystem returns the Linux System. Close releases its netlink handle.
func NewSystem() (System, func() error, error) {
	a, err := netif.NewAddrs()
	if err != nil {
		return nil, nil, err
	}
	return &linuxSystem{Addrs: a}, a.Close, nil
}

func (*linuxSystem) LinkByName(name string) (netif.Link, error) { return netif.LinkByName(name) }

func (s *linuxSystem) Add(ifindex int, p netip.Prefix, asSource bool) error {
	if asSource {
		return s.Addrs.Add(ifindex, p)
	}
	return s.Addrs.AddNonSource(ifindex, p)
}

func (*linuxSystem) PrepareInterface(name string) error { return netif.PromoteSecondaries(name) }

func (*linuxSystem) PrimaryIPv6(ifindex int, exclude []netip.Prefix) (netip.Addr, error) {
	return netif.PrimaryIPv6(ifindex, exclude)
}

func (*linuxSystem) PrimaryIPv4(ifindex int, exclude []netip.Prefix) (netip.Addr, error) {
	return netif.PrimaryIPv4(ifindex, exclude)
}

func (*linuxSystem) ListenIPv4(ifindex int) (PacketConn, error) {
	return transport.ListenIPv4(ifindex)
}

func (*linuxSystem) WatchLinks(ctx context.Context, fn func(netif.Link)) error {
	return netif.SubscribeLinks(ctx, fn)
}

func (*linuxSystem) WatchAddrs(ctx context.Context, fn func(netif.AddrUpdate)) error {
	return netif.SubscribeAddrs(ctx, fn)
}

func (*linuxSystem) ListAddrs(ifindex int, ipv6 bool) ([]netip.Prefix, error) {
	family := netlink.FAMILY_V4
	if ipv6 {
		family = netlink.FAMILY_V6
	}
	link, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(link, family)
	if err != nil {
		return nil, err
	}
	return netif.Prefixes(as), nil
}

func (*linuxSystem) DialARP(ifindex int) (Announcer, error) { return announce.DialARP(ifindex) }

func (*linuxSystem) DialNDP(ifindex int) (Announcer, error) { return announce.DialNDP(ifindex) }

func (*linuxSystem) ListenIPv6(ifindex int) (PacketConn, error) {
	return transport.ListenIPv6(ifindex)
}
