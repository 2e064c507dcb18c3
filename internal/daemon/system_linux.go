package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"syscall"

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
	nl      *vroute.Linux
	routes  routes
	parents netif.ParentSysctls
	lb      linuxLB
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
	return s, func() error { return errors.Join(s.lb.close(), nl.Close(), a.Close()) }, nil
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

func (s *linuxSystem) OpenVMAC(spec VMACSpec) (VMAC, error) {
	v := &linuxVMAC{s: s}
	if !spec.IPv6 {
		if err := s.parents.Acquire(spec.Parent); err != nil {
			return nil, err
		}
		v.parent = spec.Parent
	}
	var err error
	if v.v, err = netif.OpenVMAC(spec.Name, spec.ParentIndex, netif.VirtualMAC(spec.VRID, spec.IPv6), spec.IPv6); err != nil {
		v.Close()
		return nil, err
	}
	if v.snd, err = transport.DialSender(v.v.Index, spec.IPv6); err != nil {
		v.Close()
		return nil, err
	}
	dial := s.DialARP
	if spec.IPv6 {
		dial = s.DialNDP
	}
	if v.ann, err = dial(v.v.Index); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

func (*linuxSystem) CleanupVMACs() error {
	_, err := netif.CleanupVMACs()
	return err
}

// linuxVMAC is VMAC on Linux: the macvlan, a socket and an announcer on it,
// and the parent's ARP sysctls (IPv4).
type linuxVMAC struct {
	s      *linuxSystem
	v      *netif.VMAC
	snd    *transport.Sender
	ann    Announcer
	parent string // the parent whose sysctls it holds; "" for none
}

var _ VMAC = (*linuxVMAC)(nil)

func (v *linuxVMAC) Index() int                                      { return v.v.Index }
func (v *linuxVMAC) SetUp(up bool) error                             { return v.v.SetUp(up) }
func (v *linuxVMAC) AddLinkLocal(ll netip.Addr) error                { return v.v.AddLinkLocal(ll) }
func (v *linuxVMAC) WriteBatch(ms []transport.Outgoing) (int, error) { return v.snd.WriteBatch(ms) }

// Announce sends from the virtual MAC. A packet socket bound while its
// interface was down holds ENETDOWN as a pending error, which the first
// send after the interface came up returns instead of sending: that one
// is sent again.
func (v *linuxVMAC) Announce(addr netip.Addr) error {
	err := v.ann.Announce(addr)
	if errors.Is(err, syscall.ENETDOWN) {
		err = v.ann.Announce(addr)
	}
	return err
}

func (v *linuxVMAC) Close() error {
	var errs []error
	if v.ann != nil {
		errs = append(errs, v.ann.Close())
	}
	if v.snd != nil {
		errs = append(errs, v.snd.Close())
	}
	if v.v != nil {
		errs = append(errs, v.v.Close())
	}
	if v.parent != "" {
		errs = append(errs, v.s.parents.Release(v.parent))
	}
	return errors.Join(errs...)
}

func (*linuxSystem) ListenIPv6(ifindex int) (PacketConn, error) {
	return transport.ListenIPv6(ifindex)
}
