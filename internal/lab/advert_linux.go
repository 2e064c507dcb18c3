package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// vrrpGroup is the IPv4 multicast group VRRP adverts go to (RFC 9568 §5.1.1.2).
var vrrpGroup = &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}

// vrrpGroup6 is the IPv6 one (RFC 9568 §5.1.2.2).
var vrrpGroup6 = &net.IPAddr{IP: net.ParseIP("ff02::12")}

// WaitAdvert waits until the client hears a VRRP advert (IP protocol 112 to
// 224.0.0.18) from node n, and returns when it arrived. Acting right after an
// advert pins a failure to the worst moment: the backups then wait a whole
// Master_Down_Interval, the figure RFC 9568 gives.
func (l *Lab) WaitAdvert(ctx context.Context, n *Node) (time.Time, error) {
	var c net.PacketConn
	err := InNS(l.Client.NS, func() error {
		var err error
		if c, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			c.Close()
			return err
		}
		if err := ipv4.NewPacketConn(c).JoinGroup(ifi, vrrpGroup); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("advert socket in %s: %w", l.Client.NS, err)
	}
	defer c.Close()
	return waitFrom(ctx, c, n.Addr.Addr(), n.Name)
}

// WaitAdvert6 is WaitAdvert for IPv6: it waits until the client hears an
// advert to ff02::12 from n's link-local address.
func (l *Lab) WaitAdvert6(ctx context.Context, n *Node) (time.Time, error) {
	src, err := n.LinkLocal()
	if err != nil {
		return time.Time{}, err
	}
	var c net.PacketConn
	err = InNS(l.Client.NS, func() error {
		var err error
		if c, err = net.ListenPacket("ip6:112", "::"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			c.Close()
			return err
		}
		if err := ipv6.NewPacketConn(c).JoinGroup(ifi, vrrpGroup6); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("IPv6 advert socket in %s: %w", l.Client.NS, err)
	}
	defer c.Close()
	return waitFrom(ctx, c, src, n.Name)
}

// waitFrom reads c until a packet from src arrives or ctx ends.
func waitFrom(ctx context.Context, c net.PacketConn, src netip.Addr, name string) (time.Time, error) {
	buf := make([]byte, 1500)
	want := src.AsSlice()
	for ctx.Err() == nil {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			continue
		}
		if a, ok := from.(*net.IPAddr); ok && a.IP.Equal(want) {
			return time.Now(), nil
		}
	}
	return time.Time{}, fmt.Errorf("waiting for an advert from %s (%s): %w", name, src, ctx.Err())
}

// An Advertiser sends crafted VRRP adverts from a node's eth0 (a router node
// that runs no daemon, or the client), as a stranger, a misconfigured router
// or an attacker on the segment would. It uses the daemon's own raw sockets
// (internal/transport), so the adverts have TTL 255 and pass every check but
// the ones a test means to exercise.
type Advertiser struct {
	n  *Node
	c4 *transport.IPv4Conn
	c6 *transport.IPv6Conn
}

// NewAdvertiser opens raw VRRP sockets (IPv4, and IPv6 in an IPv6 lab) in
// n's namespace. Close them when done.
func NewAdvertiser(n *Node) (*Advertiser, error) {
	link, err := n.link()
	if err != nil {
		return nil, err
	}
	idx := link.Attrs().Index
	a := &Advertiser{n: n}
	err = InNS(n.NS, func() error {
		var err error
		if a.c4, err = transport.ListenIPv4(idx); err != nil {
			return err
		}
		if n.Addr6.IsValid() {
			if a.c6, err = transport.ListenIPv6(idx); err != nil {
				a.c4.Close()
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: VRRP sockets: %w", n.Name, err)
	}
	return a, nil
}

// Source is the source address Send uses for dst when given none: the
// node's IPv4 address; for IPv6 its link-local address towards a multicast
// or link-local destination (as RFC 9568 §5.1.2.1 has it), else its global
// one.
func (a *Advertiser) Source(dst netip.Addr) (netip.Addr, error) {
	n := a.n
	switch {
	case dst.Is4():
		return n.Addr.Addr(), nil
	case !n.Addr6.IsValid():
		return netip.Addr{}, fmt.Errorf("%s: no IPv6 address (Config.IPv6)", n.Name)
	case dst.IsMulticast() || dst.IsLinkLocalUnicast():
		return n.LinkLocal()
	default:
		return n.Addr6.Addr(), nil
	}
}

// Send marshals pkt with the checksum its version defines (for a VRRPv3
// IPv4 packet with NoPseudoHeader set, the checksum without pseudo-header)
// and sends it from src to dst, a multicast group or a unicast address. A
// zero src means Source(dst).
func (a *Advertiser) Send(src, dst netip.Addr, pkt *vrrp.Packet) error {
	dst = dst.Unmap()
	if !src.IsValid() {
		var err error
		if src, err = a.Source(dst); err != nil {
			return err
		}
	}
	cs := vrrp.ChecksumPseudoHeader
	if pkt.Version == 2 || pkt.NoPseudoHeader {
		cs = vrrp.ChecksumNoPseudoHeader
	}
	b, err := pkt.Append(nil, src, dst, cs)
	if err != nil {
		return err
	}
	if dst.Is4() {
		return a.c4.WriteTo(b, src, dst)
	}
	if a.c6 == nil {
		return fmt.Errorf("%s: no IPv6 socket (Config.IPv6)", a.n.Name)
	}
	return a.c6.WriteTo(b, src, dst)
}

// Advertise sends pkt to dst every interval, count times at most, until ctx
// ends; it returns how many it sent. A zero src means Source(dst).
func (a *Advertiser) Advertise(ctx context.Context, src, dst netip.Addr, pkt *vrrp.Packet, interval time.Duration, count int) (int, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < count; i++ {
		if err := a.Send(src, dst, pkt); err != nil {
			return i, err
		}
		select {
		case <-ctx.Done():
			return i + 1, nil
		case <-t.C:
		}
	}
	return count, nil
}

// Close closes the sockets.
func (a *Advertiser) Close() error {
	var errs []error
	if a.c4 != nil {
		errs = append(errs, a.c4.Close())
	}
	if a.c6 != nil {
		errs = append(errs, a.c6.Close())
	}
	return errors.Join(errs...)
}

// SendAdvert sends one crafted advert from node from's eth0 to dst, from the
// node's address (see Advertiser.Source).
func SendAdvert(from *Node, dst netip.Addr, pkt *vrrp.Packet) error {
	a, err := NewAdvertiser(from)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Send(netip.Addr{}, dst, pkt)
}
