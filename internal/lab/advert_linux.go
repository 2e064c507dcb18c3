package lab

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/ipv4"
)

// vrrpGroup is the IPv4 multicast group VRRP adverts go to (RFC 9568 §5.1.1.2).
var vrrpGroup = &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}

// WaitAdvert waits until the client hears a VRRP advert (IP protocol 112 to
// 224.0.0.18) from node n, and returns when it arrived. Acting right after an
// advert pins a failure to the worst moment: the backups then wait a whole
// Master_Down_Interval, the figure RFC 9568 gives.
func (l *Lab) WaitAdvert(ctx context.Context, n *Node) (time.Time, error) {
	var c net.PacketConn
	err := inNS(l.Client.NS, func() error {
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
	buf := make([]byte, 1500)
	want := n.Addr.Addr().AsSlice()
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
	return time.Time{}, fmt.Errorf("waiting for an advert from %s: %w", n.Name, ctx.Err())
}
