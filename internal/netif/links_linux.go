package netif

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SubscribeLinks calls fn with the state of every existing link, then with
// every change, until ctx is done. It listens to the kernel's link
// notifications (RTNLGRP_LINK) rather than polling. fn runs on one
// goroutine, in order; it must not block for long.
func SubscribeLinks(ctx context.Context, fn func(Link)) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("netif: subscribing to link changes: %w", err)
	}
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("netif: link notifications: %w", err)
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("netif: link notifications closed")
			}
			a := u.Link.Attrs()
			fn(Link{
				Index:        a.Index,
				Name:         a.Name,
				HardwareAddr: a.HardwareAddr,
				Up:           a.Flags&net.FlagUp != 0 && a.Flags&net.FlagRunning != 0 && u.Header.Type != unix.RTM_DELLINK,
			})
		}
	}
}
