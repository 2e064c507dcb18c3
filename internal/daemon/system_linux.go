package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/announce"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/internal/vroute"
)

// linuxSystem is System on Linux: netlink, raw IP and packet sockets.
type linuxSystem struct {
	*netif.Addrs
	nl     *vroute.Linux
	routes routes
}

// routes is the vroute.Manager with its stats as the metrics want them.
type routes struct{ *vroute.Manager }

func (r routes) Stats() metrics.RouteStats {
	s := r.Manager.Stats()
	return metrics.RouteStats{Routes: s.Routes, Rules: s.Rules, Pending: s.Pending, Conflicts: s.Conflicts, Repairs: s.Repairs, Failures: s.Failures}
}

var _ System = (*linuxSystem)(nil)

// NewSystem returns the Linux System; log is its routes manager's. Close
// releases its netlink handles.
func NewSystem(log *slog.Logger) (System, func() error, error) {
	a, err := netif.NewAddrs()
	if err != nil {
		return nil, nil, err
	}
	nl, err := vroute.NewLinux()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	s := &linuxSystem{Addrs: a, nl: nl, routes: routes{vroute.New(nl, log)}}
	return s, func() error { return errors.Join(nl.Close(), a.Close()) }, nil
}

func (s *linuxSystem) Routes() RouteSet { return s.routes }

func (s *linuxSystem) CleanupRoutes() error { return vroute.Cleanup(s.nl) }

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
