package vroute

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Linux is the kernel's routing state over rtnetlink, in the network
// namespace NewLinux was called in.
type Linux struct {
	ns netns.NsHandle
	h  *netlink.Handle // requests and rule dumps
	// dump lists routes. It asks the kernel to filter the dump by protocol
	// (NETLINK_GET_STRICT_CHK, Linux 4.20), so that listing vipd's few
	// routes does not copy a full BGP table; where the kernel cannot, the
	// library filters instead. It is a socket of its own because the
	// library's rule dumps do not pass the strict check.
	dump *netlink.Handle
}

var _ Netlink = (*Linux)(nil)

// opTimeout bounds every netlink request, so that no call blocks for good.
const opTimeout = 5 * time.Second

// NewLinux opens rtnetlink sockets in the calling thread's network
// namespace. Close releases them.
//
// It opens them where it runs rather than by entering the namespace
// (setns), which needs CAP_SYS_ADMIN: vipd runs with CAP_NET_ADMIN and
// CAP_NET_RAW only.
func NewLinux() (*Linux, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("vroute: network namespace: %w", err)
	}
	l := &Linux{ns: ns}
	if l.h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err == nil {
		l.dump, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("vroute: netlink: %w", err)
	}
	for _, h := range []*netlink.Handle{l.h, l.dump} {
		if err := h.SetSocketTimeout(opTimeout); err != nil {
			l.Close()
			return nil, fmt.Errorf("vroute: netlink: %w", err)
		}
	}
	_ = l.dump.SetStrictCheck(true) // best effort, see dump
	return l, nil
}

// Close releases the sockets.
func (l *Linux) Close() error {
	if l.h != nil {
		l.h.Close()
	}
	if l.dump != nil {
		l.dump.Close()
	}
	return l.ns.Close()
}

// Route types by their config names.
var routeTypes = map[string]int{
	config.RouteUnicast:     unix.RTN_UNICAST,
	config.RouteBlackhole:   unix.RTN_BLACKHOLE,
	config.RouteUnreachable: unix.RTN_UNREACHABLE,
	config.RouteProhibit:    unix.RTN_PROHIBIT,
}

func typeName(t int) string {
	for name, n := range routeTypes {
		if n == t {
			return name
		}
	}
	return fmt.Sprintf("type%d", t)
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet, v6 bool) netip.Prefix {
	if n == nil {
		return anyOf(v6)
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return anyOf(v6)
	}
	ones, _ := n.Mask.Size()
	if a = a.Unmap(); a.Is6() != v6 {
		return anyOf(v6)
	}
	return netip.PrefixFrom(a, ones).Masked()
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// Routes lists vipd's routes of every table, IPv4 and IPv6.
func (l *Linux) Routes() ([]Route, error) {
	filter := &netlink.Route{Protocol: Protocol} // Table 0: every table
	mask := netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	names := map[int]string{}
	var out []Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var got []netlink.Route
		err := l.dump.RouteListFilteredIter(fam, filter, mask, func(r netlink.Route) bool {
			got = append(got, r)
			return true
		})
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			// The table changed while it was dumped; once more.
			got = got[:0]
			err = l.dump.RouteListFilteredIter(fam, filter, mask, func(r netlink.Route) bool {
				got = append(got, r)
				return true
			})
		}
		if err != nil {
			return nil, err
		}
		for _, r := range got {
			out = append(out, l.routeOf(r, names))
		}
	}
	return out, nil
}

// routeOf is the Route r is; names caches interface names.
func (l *Linux) routeOf(r netlink.Route, names map[int]string) Route {
	v6 := r.Family == netlink.FAMILY_V6
	out := Route{
		To:     prefixOf(r.Dst, v6),
		Table:  r.Table,
		Tos:    r.Tos,
		Metric: r.Priority,
		Type:   typeName(r.Type),
		Via:    addrOf(r.Gw),
		Src:    addrOf(r.Src),
	}
	if r.LinkIndex > 0 {
		name, ok := names[r.LinkIndex]
		if !ok {
			if link, err := l.h.LinkByIndex(r.LinkIndex); err == nil {
				name = link.Attrs().Name
			} else {
				name = fmt.Sprintf("if%d", r.LinkIndex)
			}
			names[r.LinkIndex] = name
		}
		out.Dev = name
	}
	return out
}

// nlRoute is r as the library sends it, with Protocol.
func (l *Linux) nlRoute(r Route) (*netlink.Route, error) {
	t, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("route type %q: %w", r.Type, unix.EINVAL)
	}
	nr := &netlink.Route{
		Dst:      ipnet(r.To),
		Table:    r.Table,
		Tos:      r.Tos,
		Priority: r.Metric,
		Protocol: Protocol,
		Type:     t,
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Dev != "" {
		link, err := l.h.LinkByName(r.Dev)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil, fmt.Errorf("%s: %w", r.Dev, unix.ENODEV)
			}
			return nil, err
		}
		nr.LinkIndex = link.Attrs().Index
	}
	// As ip-route(8): an IPv4 route to an interface without a gateway is
	// of link scope.
	if r.To.Addr().Is4() && t == unix.RTN_UNICAST && !r.Via.IsValid() {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr, nil
}

// AddRoute adds r, failing if a route with its key exists.
func (l *Linux) AddRoute(r Route) error {
	nr, err := l.nlRoute(r)
	if err != nil {
		return err
	}
	return l.h.RouteAdd(nr)
}

// ReplaceRoute sets the route with r's key to r.
func (l *Linux) ReplaceRoute(r Route) error {
	nr, err := l.nlRoute(r)
	if err != nil {
		return err
	}
	return l.h.RouteReplace(nr)
}

// DeleteRoute deletes vipd's route with r's key: the kernel matches the
// protocol, so no one else's route goes.
func (l *Linux) DeleteRoute(r Route) error {
	nr := &netlink.Route{
		Dst:      ipnet(r.To),
		Table:    r.Table,
		Tos:      r.Tos,
		Priority: r.Metric,
		Protocol: Protocol,
		Scope:    netlink.SCOPE_NOWHERE, // any scope
	}
	if t, ok := routeTypes[r.Type]; ok {
		nr.Type = t
	}
	return l.h.RouteDel(nr)
}

// Rules lists vipd's rules: those with FRA_PROTOCOL Protocol (Linux 4.17).
func (l *Linux) Rules() ([]Rule, error) {
	rs, err := l.h.RuleList(netlink.FAMILY_ALL)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		rs, err = l.h.RuleList(netlink.FAMILY_ALL)
	}
	if err != nil {
		return nil, err
	}
	var out []Rule
	for _, r := range rs {
		if r.Protocol != Protocol {
			continue
		}
		v6 := r.Family == netlink.FAMILY_V6
		out = append(out, Rule{From: prefixOf(r.Src, v6), To: prefixOf(r.Dst, v6), Table: r.Table, Priority: r.Priority})
	}
	return out, nil
}

// nlRule is r as the library sends it, with Protocol. A /0 selector is
// left out ("from all").
func nlRule(r Rule) *netlink.Rule {
	nr := netlink.NewRule() // its -1s leave out what vipd does not set
	nr.Family = netlink.FAMILY_V4
	if r.IPv6() {
		nr.Family = netlink.FAMILY_V6
	}
	if r.From.Bits() > 0 {
		nr.Src = ipnet(r.From)
	}
	if r.To.Bits() > 0 {
		nr.Dst = ipnet(r.To)
	}
	nr.Table = r.Table
	nr.Protocol = Protocol
	return nr
}

// AddRule adds r. A priority of 0 is not sent, and the kernel picks one:
// sent, 0 would put the rule before the local table's.
func (l *Linux) AddRule(r Rule) error {
	nr := nlRule(r)
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	return l.h.RuleAdd(nr)
}

// DeleteRule deletes vipd's rule equal to r, its priority included: the
// kernel matches the protocol, so no one else's rule goes.
func (l *Linux) DeleteRule(r Rule) error {
	nr := nlRule(r)
	nr.Priority = r.Priority
	return l.h.RuleDel(nr)
}

// otherNamespace returns l's namespace if the calling thread is in another
// one, else nil.
func (l *Linux) otherNamespace() *netns.NsHandle {
	cur, err := netns.Get()
	if err != nil {
		return &l.ns
	}
	defer cur.Close()
	if cur.Equal(l.ns) {
		return nil
	}
	ns := l.ns
	return &ns
}

// Watch follows route, link and address changes (RTNLGRP_IPV4_ROUTE,
// RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR).
// The library has no rule subscription; the manager lists rules
// periodically instead.
func (l *Linux) Watch(ctx context.Context) (<-chan Event, error) {
	done := make(chan struct{})
	errc := make(chan error, 1)
	fail := func(err error) {
		// A failed receive ends the subscription: it closes the
		// channel too.
		if netif.Skipped(err) {
			return
		}
		select {
		case errc <- err:
		default:
		}
	}
	const rcvbuf = 1 << 20 // room for a burst (a link down takes its routes)
	routes := make(chan netlink.RouteUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	// stop ends the subscriptions made: closing done closes their sockets,
	// and draining lets their goroutines, which may be blocked sending an
	// update, see that and exit.
	var drains []func()
	stop := func() {
		close(done)
		for _, d := range drains {
			go d()
		}
	}
	// The subscriptions enter l's namespace only if the calling thread is
	// in another one (a test's): entering needs CAP_SYS_ADMIN, even to
	// enter the namespace the thread is already in.
	ns := l.otherNamespace()
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, fmt.Errorf("vroute: subscribing to route changes: %w", err)
	}
	drains = append(drains, func() {
		for range routes {
		}
	})
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, fmt.Errorf("vroute: subscribing to link changes: %w", err)
	}
	drains = append(drains, func() {
		for range links {
		}
	})
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, fmt.Errorf("vroute: subscribing to address changes: %w", err)
	}
	drains = append(drains, func() {
		for range addrs {
		}
	})
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer stop()
		for {
			var ev Event
			select {
			case <-ctx.Done():
				return
			case <-errc:
				return
			case u, ok := <-routes:
				if !ok {
					return
				}
				ev = Event{
					Kind:    RouteChanged,
					Deleted: u.Type == unix.RTM_DELROUTE,
					Ours:    int(u.Route.Protocol) == Protocol,
					Route: Route{
						To:     prefixOf(u.Route.Dst, u.Route.Family == netlink.FAMILY_V6),
						Table:  u.Route.Table,
						Tos:    u.Route.Tos,
						Metric: u.Route.Priority,
						Type:   typeName(u.Route.Type),
					},
				}
			case u, ok := <-links:
				if !ok {
					return
				}
				ev = Event{Kind: LinkChanged, Deleted: u.Header.Type == unix.RTM_DELLINK}
			case u, ok := <-addrs:
				if !ok {
					return
				}
				ev = Event{Kind: AddrChanged, Deleted: !u.NewAddr}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
