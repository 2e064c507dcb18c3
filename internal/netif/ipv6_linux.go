package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Errors LinkLocalIPv6 wraps when it finds no usable address; test them with
// errors.Is.
var (
	// ErrTentative: the interface's link-local address is still being
	// checked by duplicate address detection (RFC 4862 §5.4); it becomes
	// usable within seconds, so callers retry.
	ErrTentative = errors.New("tentative: duplicate address detection in progress")
	// ErrNoLinkLocal: the interface has no usable link-local address: none
	// at all (IPv6 off, addr_gen_mode none, link without carrier) or only
	// one whose duplicate address detection failed, which needs an
	// administrator.
	ErrNoLinkLocal = errors.New("no usable link-local IPv6 address")
)

// usable reports whether an IPv6 address with IFA_F_* flags may be a source
// address. A tentative address may not, unless it is optimistic
// (RFC 4429 §3.1, which the kernel honours too); a dadfailed one stays
// tentative for good.
func usable(flags int) bool {
	if flags&unix.IFA_F_DADFAILED != 0 {
		return false
	}
	return flags&unix.IFA_F_TENTATIVE == 0 || flags&unix.IFA_F_OPTIMISTIC != 0
}

// LinkLocalIPv6 returns the link-local address of the interface with index
// ifindex, in the calling thread's network namespace: the source of VRRP
// IPv6 adverts (RFC 9568 §5.1.2.1) and of neighbour advertisements.
//
// An address still under duplicate address detection is not returned: the
// kernel refuses it as a source address. The error then wraps ErrTentative
// and callers retry. Without any usable one it wraps ErrNoLinkLocal, and
// says whether DAD failed. With several, the first usable one listed (the
// newest) is returned.
func LinkLocalIPv6(ifindex int) (netip.Addr, error) {
	return linkLocalIPv6(oneShot, ifindex)
}

// LinkLocalIPv6 is the package-level LinkLocalIPv6, asked in the network
// namespace a was opened in rather than the calling thread's.
func (a *Addrs) LinkLocalIPv6(ifindex int) (netip.Addr, error) {
	return linkLocalIPv6(a.h, ifindex)
}

func linkLocalIPv6(h *netlink.Handle, ifindex int) (netip.Addr, error) {
	as, err := addrList(h, ifindex, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: addresses of %s: %w", ifName(h, ifindex), err)
	}
	ip, err := pickLinkLocal(as)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: %s: %w", ifName(h, ifindex), err)
	}
	return ip, nil
}

// pickLinkLocal returns the first usable link-local address of as, or why
// there is none.
func pickLinkLocal(as []netlink.Addr) (netip.Addr, error) {
	var tentative, failed netip.Addr
	for _, a := range as {
		ip, ok := addr6(a)
		if !ok || !ip.IsLinkLocalUnicast() {
			continue
		}
		switch {
		case usable(a.Flags):
			return ip, nil
		case a.Flags&unix.IFA_F_DADFAILED != 0:
			failed = ip
		default:
			tentative = ip
		}
	}
	switch {
	case tentative.IsValid():
		return netip.Addr{}, fmt.Errorf("link-local %v: %w", tentative, ErrTentative)
	case failed.IsValid():
		return netip.Addr{}, fmt.Errorf("link-local %v: duplicate address detection failed: %w", failed, ErrNoLinkLocal)
	default:
		return netip.Addr{}, ErrNoLinkLocal
	}
}

// addr6 is a's address if it is a plain IPv6 one.
func addr6(a netlink.Addr) (netip.Addr, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok || !ip.Is6() || ip.Is4In6() {
		return netip.Addr{}, false
	}
	return ip, true
}

// PrimaryIPv6 returns the global-scope IPv6 address of the interface with
// index ifindex, in the calling thread's network namespace, that was added
// first among those that are not one of exclude (our VIPs, compared by
// address), usable as a source (not tentative, see LinkLocalIPv6), not
// deprecated (RFC 4862 §5.5.4: new communication should not start from it)
// and not temporary (RFC 8981: it changes, while peers name this address in
// their unicast_peer). It is the default unicast source of an IPv6 instance.
//
// IPv6 has no primary address; the oldest plays the part that the primary
// plays for IPv4 (PrimaryIPv4), and stays the same when addresses are added
// later. The kernel lists the addresses of one scope newest first, so the
// oldest is the last one listed.
func PrimaryIPv6(ifindex int, exclude []netip.Prefix) (netip.Addr, error) {
	as, err := addrList(oneShot, ifindex, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: addresses of %s: %w", ifName(oneShot, ifindex), err)
	}
	ip, ok := pickPrimaryIPv6(as, exclude)
	if !ok {
		return netip.Addr{}, fmt.Errorf("netif: no usable global IPv6 address on %s other than the virtual addresses", ifName(oneShot, ifindex))
	}
	return ip, nil
}

// pickPrimaryIPv6 returns the last address of as, in the kernel's order,
// that PrimaryIPv6 may return.
func pickPrimaryIPv6(as []netlink.Addr, exclude []netip.Prefix) (netip.Addr, bool) {
	for _, a := range slices.Backward(as) {
		ip, ok := addr6(a)
		if !ok || excluded(ip, exclude) || a.Scope != unix.RT_SCOPE_UNIVERSE || !usable(a.Flags) ||
			a.Flags&(unix.IFA_F_DEPRECATED|unix.IFA_F_TEMPORARY) != 0 {
			continue
		}
		return ip, true
	}
	return netip.Addr{}, false
}
