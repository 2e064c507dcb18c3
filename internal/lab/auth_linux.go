package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// SendMessage sends msg, a VRRP message made by the caller (a signed one,
// say, or one with a flaw of the test's choosing), from src to dst through
// the advertiser's sockets, with TTL 255. A zero src means Source(dst);
// another src must be an address of the node.
func (a *Advertiser) SendMessage(src, dst netip.Addr, msg []byte) error {
	dst = dst.Unmap()
	if !src.IsValid() {
		var err error
		if src, err = a.Source(dst); err != nil {
			return err
		}
	}
	if dst.Is4() {
		return a.c4.WriteTo(msg, src, dst)
	}
	if a.c6 == nil {
		return fmt.Errorf("%s: no IPv6 socket (Config.IPv6)", a.n.Name)
	}
	return a.c6.WriteTo(msg, src, dst)
}

// CaptureAdvert listens on the client for VRRP adverts to the multicast
// group of from's family (224.0.0.18 or ff02::12) and returns the first
// message from from that ok accepts (nil ok accepts any), as received:
// the VRRP message without its IP header. A test replays it, or parses it
// to see how a daemon signs.
func (l *Lab) CaptureAdvert(ctx context.Context, from netip.Addr, ok func(msg []byte) bool) ([]byte, error) {
	from = from.Unmap()
	network, laddr, group := "ip4:112", "0.0.0.0", vrrpGroup
	if from.Is6() {
		network, laddr, group = "ip6:112", "::", vrrpGroup6
	}
	var c net.PacketConn
	err := InNS(l.Client.NS, func() error {
		var err error
		if c, err = net.ListenPacket(network, laddr); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			if from.Is4() {
				err = ipv4.NewPacketConn(c).JoinGroup(ifi, group)
			} else {
				err = ipv6.NewPacketConn(c).JoinGroup(ifi, group)
			}
		}
		if err != nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("advert socket in %s: %w", l.Client.NS, err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	want := from.AsSlice()
	for ctx.Err() == nil {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			continue
		}
		if a, isIP := src.(*net.IPAddr); !isIP || !a.IP.Equal(want) {
			continue
		}
		if ok == nil || ok(buf[:n]) {
			return slices.Clone(buf[:n]), nil
		}
	}
	return nil, fmt.Errorf("capturing an advert from %s: %w", from, ctx.Err())
}
