package netif

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
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
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ListExisting:  true,
		ErrorCallback: errorTo(errc),
	})
	if err != nil {
		return fmt.Errorf("netif: subscribing to link changes: %w", err)
	}
	defer stop(done, updates)
	return follow(ctx, "link", updates, errc, func(u netlink.LinkUpdate) { fn(linkOf(u)) })
}

// follow hands every update to each until ctx is done (nil) or the
// subscription fails.
func follow[U any](ctx context.Context, what string, updates <-chan U, errc <-chan error, each func(U)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("netif: %s notifications: %w", what, err)
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("netif: %s notifications closed", what)
			}
			each(u)
		}
	}
}

// linkOf is the Link a notification describes.
func linkOf(u netlink.LinkUpdate) Link {
	a := u.Link.Attrs()
	// A bridge sends RTM_DELLINK of family AF_BRIDGE when a port leaves it
	// (br_ifinfo_notify): the port is no longer a port, but it still exists.
	deleted := u.Header.Type == unix.RTM_DELLINK && u.IfInfomsg.Family != unix.AF_BRIDGE
	return Link{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: a.HardwareAddr,
		Up:           a.Flags&net.FlagUp != 0 && a.Flags&net.FlagRunning != 0 && !deleted,
		Deleted:      deleted,
	}
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
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	errc := make(chan error, 1)
	err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		ListExisting:  true,
		ErrorCallback: errorTo(errc),
	})
	if err != nil {
		return fmt.Errorf("netif: subscribing to address changes: %w", err)
	}
	defer stop(done, updates)
	return follow(ctx, "address", updates, errc, func(u netlink.AddrUpdate) {
		if au, ok := addrUpdateOf(u); ok {
			fn(au)
		}
	})
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

// addrUpdateOf is the AddrUpdate a notification describes, false for one
// without a usable address.
func addrUpdateOf(u netlink.AddrUpdate) (AddrUpdate, bool) {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return AddrUpdate{}, false
	}
	ip = ip.Unmap()
	ones, bits := u.LinkAddress.Mask.Size()
	if bits != ip.BitLen() {
		// The mask was built for the address's own length; a mapped IPv4
		// address comes with a 128-bit one.
		if bits != 128 || !ip.Is4() || ones < 96 {
			return AddrUpdate{}, false
		}
		ones -= 96
	}
	return AddrUpdate{Index: u.LinkIndex, Prefix: netip.PrefixFrom(ip, ones), New: u.NewAddr}, true
}

// errorTo is a subscription's error callback: it keeps the first error for
// the loop to return.
// Skipped says whether err, reported by a vishvananda/netlink
// subscription's ErrorCallback, is about a message the library then
// skipped (one from a sender other than the kernel) rather than the
// subscription failing: no reason to subscribe again.
func Skipped(err error) bool {
	return strings.HasPrefix(err.Error(), "Wrong sender portid")
}

func errorTo(errc chan<- error) func(error) {
	return func(err error) {
		if Skipped(err) {
			return
		}
		select {
		case errc <- err:
		default:
		}
	}
}

// stop ends a subscription: closing done closes its socket, and draining
// updates lets its receiving goroutine, which may be blocked sending one,
// see that and exit.
func stop[T any](done chan struct{}, updates <-chan T) {
	close(done)
	go func() {
		for range updates {
		}
	}()
}
