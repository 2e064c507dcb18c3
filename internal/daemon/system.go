package daemon

import (
	"context"
	"net/netip"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proxy"
	"github.com/vipd/vipd/internal/transport"
)

// System is the operating system as the daemon uses it: links, addresses and
// sockets. The Linux implementation is returned by NewSystem; tests use a
// simulated segment.
type System interface {
	LinkByName(name string) (netif.Link, error)
	// PrepareInterface sets the interface up for VIPs that come and go
	// (on Linux: promote_secondaries).
	PrepareInterface(name string) error
	PrimaryIPv4(ifindex int, exclude []netip.Prefix) (netip.Addr, error)
	// LinkLocalIPv6 fails while the address is tentative (DAD).
	LinkLocalIPv6(ifindex int) (netip.Addr, error)
	// PrimaryIPv6 is the oldest usable global IPv6 address not in exclude.
	PrimaryIPv6(ifindex int, exclude []netip.Prefix) (netip.Addr, error)
	ListenIPv4(ifindex int) (PacketConn, error)
	ListenIPv6(ifindex int) (PacketConn, error)
	DialARP(ifindex int) (Announcer, error)
	DialNDP(ifindex int) (Announcer, error)
	// WatchLinks calls fn with every link's state and then every change
	// (a deleted link with Deleted set), until ctx is done.
	WatchLinks(ctx context.Context, fn func(netif.Link)) error
	// WatchAddrs calls fn with every address and then every change, until
	// ctx is done.
	WatchAddrs(ctx context.Context, fn func(netif.AddrUpdate)) error
	// ListAddrs lists the interface's IPv4 or IPv6 addresses.
	ListAddrs(ifindex int, ipv6 bool) ([]netip.Prefix, error)
	AddrSet
	// Routes keeps the instances' virtual routes and rules in the kernel.
	Routes() RouteSet
	// CleanupRoutes removes every route and rule vipd added, for vipd
	// cleanup after a crash.
	CleanupRoutes() error
	// OpenVMAC creates an instance's virtual MAC interface, down, with
	// what sends from it.
	OpenVMAC(s VMACSpec) (VMAC, error)
	// CleanupVMACs removes every virtual MAC interface vipd made.
	CleanupVMACs() error
	// LB is the kernel's load-balancing table (lb.go).
	LB() LBTable
	// ListenProxy opens a proxy virtual server (proxy.go).
	ListenProxy(c proxy.Config) (VirtualProxy, error)
}

// VMACSpec describes an instance's virtual MAC interface: a macvlan named
// Name on the interface Parent (index ParentIndex) carrying the virtual
// router MAC of VRID for its family (RFC 9568 §7.3).
type VMACSpec struct {
	Name        string
	Parent      string
	ParentIndex int
	VRID        uint8
	IPv6        bool
}

// VMAC is a virtual MAC interface. It is up only while its instance holds
// the VIPs: a Backup sends nothing from the virtual MAC.
type VMAC interface {
	Index() int
	// SetUp sets it up or down; down, the kernel forgets its IPv6
	// addresses.
	SetUp(up bool) error
	// AddLinkLocal gives it an IPv6 link-local address (its parent's),
	// for adverts to leave from (RFC 9568 §5.1.2.1).
	AddLinkLocal(ll netip.Addr) error
	// WriteBatch sends adverts from it.
	WriteBatch(ms []transport.Outgoing) (int, error)
	// Announce sends a gratuitous ARP or unsolicited NA from it.
	Announce(addr netip.Addr) error
	// Close deletes it, and puts back what it changed on its parent.
	Close() error
}

// RouteSet keeps in the kernel the virtual routes and rules of the
// instances that hold their VIPs (vroute.Manager on Linux). Want and
// Release return at once; Run applies them until ctx is done, then removes
// what it added.
type RouteSet interface {
	Want(owner string, routes []config.Route, rules []config.Rule)
	Release(owner string)
	Run(ctx context.Context) error
	Stats() metrics.RouteStats
}

// PacketConn is a raw VRRP socket on one interface.
type PacketConn interface {
	ReadFrom(b []byte) (int, transport.Meta, error)
	// WriteBatch sends ms in order and stops at the first that fails,
	// returning how many were sent before it and its error.
	WriteBatch(ms []transport.Outgoing) (int, error)
	Close() error
}

// Announcer tells the segment that an address has moved: gratuitous ARP
// or unsolicited neighbour advertisements.
type Announcer interface {
	Announce(addr netip.Addr) error
	Close() error
}

// AddrSet adds and removes addresses on interfaces, idempotently.
type AddrSet interface {
	// Add adds p. Unless asSource, so that the kernel never picks it as
	// the source of the host's own traffic (netif.Addrs.AddNonSource):
	// the prefix length in the kernel may then differ from p's.
	Add(ifindex int, p netip.Prefix, asSource bool) error
	// Remove removes p's address, whatever its prefix length.
	Remove(ifindex int, p netip.Prefix) error
}
