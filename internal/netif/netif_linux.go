package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkByName looks up the named interface in the calling thread's network
// namespace.
func LinkByName(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("netif: link %q: %w", name, err)
	}
	a := l.Attrs()
	return Link{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: a.HardwareAddr,
		Up:           a.Flags&net.FlagUp != 0 && a.Flags&net.FlagRunning != 0,
	}, nil
}

// oneShot is a handle without sockets of its own: each request opens a
// netlink socket in the calling thread's namespace and closes it.
var oneShot = &netlink.Handle{}

// dumpRetries bounds how often an address dump is retried when the kernel
// reports that the address list changed while it was being dumped.
const dumpRetries = 3

// addrList dumps the addresses of one family on ifindex, retrying an
// interrupted dump a bounded number of times.
func addrList(h *netlink.Handle, ifindex, family int) ([]netlink.Addr, error) {
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	var (
		as  []netlink.Addr
		err error
	)
	for range dumpRetries {
		as, err = h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return as, err
}

// PrimaryIPv4 returns the address vipd sends adverts from (RFC 9568 §5.1.1.1:
// the primary IPv4 address of the interface): the first IPv4 address on the
// link that is not one of exclude (our VIPs, compared by address, not by
// containment) and not a secondary (IFA_F_SECONDARY), preferring scope
// global.
//
// A secondary address is used only when nothing else is left. That happens
// when a VIP was added before the configured address of the same subnet
// (after a crash left the VIP behind, say): the kernel then made the VIP the
// primary and the configured address its secondary.
func PrimaryIPv4(ifindex int, exclude []netip.Prefix) (netip.Addr, error) {
	as, err := addrList(oneShot, ifindex, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: addresses of %s: %w", ifName(oneShot, ifindex), err)
	}
	var (
		best     netip.Addr
		bestRank = -1
	)
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !ip.Is4() || excluded(ip, exclude) {
			continue
		}
		// Higher is better; the first address of the best rank wins.
		rank := 0
		if a.Flags&unix.IFA_F_SECONDARY == 0 {
			rank += 2
		}
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			rank++
		}
		if rank > bestRank {
			best, bestRank = ip, rank
		}
	}
	if bestRank < 0 {
		return netip.Addr{}, fmt.Errorf("netif: no IPv4 address on %s other than the virtual addresses", ifName(oneShot, ifindex))
	}
	return best, nil
}

func excluded(ip netip.Addr, exclude []netip.Prefix) bool {
	for _, p := range exclude {
		if p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// ifName names ifindex for error messages, looked up through h so that it is
// the interface of h's namespace.
func ifName(h *netlink.Handle, ifindex int) string {
	if l, err := h.LinkByIndex(ifindex); err == nil {
		return fmt.Sprintf("%s (index %d)", l.Attrs().Name, ifindex)
	}
	return fmt.Sprintf("interface index %d", ifindex)
}

// requestTimeout bounds one netlink request, so that removing VIPs at
// shutdown cannot hang.
const requestTimeout = 5 * time.Second

// Addrs adds and removes virtual addresses. It holds one rtnetlink socket,
// opened in the network namespace of the thread that called NewAddrs, and is
// safe for concurrent use.
type Addrs struct {
	h *netlink.Handle

	// mu guards what AddNonSource remembers, so that a failover of
	// hundreds of VIPs does not list the interface's addresses once per
	// VIP: the prefix length each widened VIP went in with, and each
	// interface's subnets for a moment.
	mu      sync.Mutex
	widened map[ifAddr]int
	subnets map[int]subnets
}

type ifAddr struct {
	ifindex int
	addr    netip.Addr
}

// subnets are an interface's IPv4 addresses, as listed at a time.
type subnets struct {
	at    time.Time
	addrs []netip.Prefix
}

// subnetsFresh is how long a listing of an interface's subnets serves
// AddNonSource: a burst of adds, not a change of the host's addressing.
const subnetsFresh = time.Second

// NewAddrs opens an rtnetlink socket in the calling thread's network
// namespace.
func NewAddrs() (*Addrs, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netif: netlink: %w", err)
	}
	if err := h.SetSocketTimeout(requestTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("netif: netlink timeout: %w", err)
	}
	return &Addrs{h: h}, nil
}

// Close closes the netlink socket.
func (a *Addrs) Close() error {
	a.h.Close()
	return nil
}

// vip is the netlink form of a virtual address: permanent (no lifetimes,
// IFA_F_PERMANENT), scope global, no label, and for IPv6 IFA_F_NODAD so the
// address is usable at once instead of after duplicate address detection
// (the other router holding it is exactly what VRRP is arbitrating).
func vip(ifindex int, p netip.Prefix) (*netlink.Addr, error) {
	if !p.IsValid() {
		return nil, fmt.Errorf("netif: invalid prefix %v", p)
	}
	addr := p.Addr()
	if addr.Is4In6() || addr.Zone() != "" {
		return nil, fmt.Errorf("netif: %v: want a plain IPv4 or IPv6 address", p)
	}
	flags := unix.IFA_F_PERMANENT
	if addr.Is6() {
		flags |= unix.IFA_F_NODAD
	}
	return &netlink.Addr{
		IPNet: &net.IPNet{
			IP:   addr.AsSlice(),
			Mask: net.CIDRMask(p.Bits(), addr.BitLen()),
		},
		Flags:     flags,
		Scope:     unix.RT_SCOPE_UNIVERSE,
		LinkIndex: ifindex,
	}, nil
}

// Add adds p to the interface. Adding an address that is already present with
// the same prefix length is not an error.
func (a *Addrs) Add(ifindex int, p netip.Prefix) error {
	na, err := vip(ifindex, p)
	if err != nil {
		return err
	}
	err = a.h.AddrAdd(nil, na)
	if errors.Is(err, unix.EEXIST) {
		// IPv4 answers EEXIST only for the same address and prefix length,
		// IPv6 for the same address whatever its prefix length: check.
		if ok, herr := a.Has(ifindex, p); herr == nil && ok {
			return nil
		}
		return fmt.Errorf("netif: add %v to %s: present with another prefix length: %w", p, ifName(a.h, ifindex), err)
	}
	if err != nil {
		return fmt.Errorf("netif: add %v to %s: %w", p, ifName(a.h, ifindex), err)
	}
	return nil
}

// AddNonSource adds p so that the kernel never picks it as the source
// address of the host's own traffic (a node IP, an outgoing connection): an
// IPv4 host address (/32) inside a subnet already on the interface goes
// in as a secondary address of that subnet — the kernel chooses sources
// among primary addresses only — and an IPv6 address goes in deprecated
// (preferred lifetime 0, valid forever: RFC 6724 rule 3 avoids it). Either
// still answers for its address as before. Remove removes it.
func (a *Addrs) AddNonSource(ifindex int, p netip.Prefix) error {
	na, err := vip(ifindex, p)
	if err != nil {
		return err
	}
	if p.Addr().Is6() {
		na.PreferedLft, na.ValidLft = 0, infinite
	} else if p.IsSingleIP() {
		if bits, ok, err := a.subnetOf(ifindex, p.Addr()); err != nil {
			return err
		} else if ok {
			na.Mask = net.CIDRMask(bits, 32)
		}
	}
	err = a.h.AddrAdd(nil, na)
	if errors.Is(err, unix.EEXIST) {
		return nil // the address is there, however it was added: Remove finds it
	}
	if err != nil {
		return fmt.Errorf("netif: add %v to %s: %w", p, ifName(a.h, ifindex), err)
	}
	if bits, _ := na.Mask.Size(); bits != p.Bits() {
		a.mu.Lock()
		if a.widened == nil {
			a.widened = map[ifAddr]int{}
		}
		a.widened[ifAddr{ifindex, p.Addr()}] = bits
		a.mu.Unlock()
	}
	return nil
}

// infinite is the lifetime that never ends (INFINITY_LIFE_TIME).
const infinite = 0xffffffff

// subnetOf returns the prefix length of the first IPv4 address on the
// interface whose subnet holds ip, other than ip itself.
func (a *Addrs) subnetOf(ifindex int, ip netip.Addr) (int, bool, error) {
	a.mu.Lock()
	c, ok := a.subnets[ifindex]
	a.mu.Unlock()
	if !ok || time.Since(c.at) > subnetsFresh {
		as, err := addrList(a.h, ifindex, netlink.FAMILY_V4)
		if err != nil {
			return 0, false, fmt.Errorf("netif: addresses of %s: %w", ifName(a.h, ifindex), err)
		}
		c = subnets{at: time.Now(), addrs: Prefixes(as)}
		a.mu.Lock()
		if a.subnets == nil {
			a.subnets = map[int]subnets{}
		}
		a.subnets[ifindex] = c
		a.mu.Unlock()
	}
	for _, x := range c.addrs {
		if x.Addr() != ip && x.Bits() < 32 && x.Masked().Contains(ip) {
			return x.Bits(), true, nil
		}
	}
	return 0, false, nil
}

// Remove removes p's address from the interface, whatever prefix length it
// was added with (AddNonSource may widen it). Removing an absent address
// is not an error.
func (a *Addrs) Remove(ifindex int, p netip.Prefix) error {
	na, err := vip(ifindex, p)
	if err != nil {
		return err
	}
	k := ifAddr{ifindex, p.Addr()}
	a.mu.Lock()
	bits, widened := a.widened[k]
	delete(a.widened, k)
	a.mu.Unlock()
	if widened {
		na.Mask = net.CIDRMask(bits, p.Addr().BitLen())
	}
	err = a.h.AddrDel(nil, na)
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		// Not with that length: one added with another (a run before
		// this one widened it, or someone did by hand) is looked up.
		bits, ok, lerr := a.lengthOf(ifindex, p.Addr())
		if lerr != nil || !ok {
			return nil
		}
		na.Mask = net.CIDRMask(bits, p.Addr().BitLen())
		err = a.h.AddrDel(nil, na)
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("netif: remove %v from %s: %w", p, ifName(a.h, ifindex), err)
	}
	return nil
}

// lengthOf returns the prefix length ip is on the interface with.
func (a *Addrs) lengthOf(ifindex int, ip netip.Addr) (int, bool, error) {
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	as, err := addrList(a.h, ifindex, family)
	if err != nil {
		return 0, false, err
	}
	for _, x := range Prefixes(as) {
		if x.Addr() == ip {
			return x.Bits(), true, nil
		}
	}
	return 0, false, nil
}

// Has reports whether the interface has p: the same address with the same
// prefix length.
func (a *Addrs) Has(ifindex int, p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	as, err := addrList(a.h, ifindex, family)
	if err != nil {
		return false, fmt.Errorf("netif: addresses of %s: %w", ifName(a.h, ifindex), err)
	}
	for _, x := range as {
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			continue
		}
		bits, _ := x.Mask.Size()
		if ip.Unmap() == p.Addr() && bits == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

// PromoteSecondaries sets net.ipv4.conf.NAME.promote_secondaries to 1. With
// the kernel's default of 0, deleting an interface's primary IPv4 address
// deletes every secondary address in its subnet too: removing a VIP that a
// crashed run added before the host's own address would take the host's
// address with it.
func PromoteSecondaries(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("promote_secondaries: bad interface name %q", name)
	}
	p := filepath.Join("/proc/sys/net/ipv4/conf", name, "promote_secondaries")
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", p, err)
	}
	return nil
}
