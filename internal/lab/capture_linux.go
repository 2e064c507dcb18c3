package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Kinds of Announcement, as vipd_announcements_sent_total labels them.
const (
	KindGARP = "garp" // a gratuitous ARP, request or reply form
	KindNA   = "na"   // an unsolicited neighbour advertisement
)

// Announcement is a gratuitous ARP (RFC 5227 §3: sender and target
// protocol address both the announced one) or an unsolicited neighbour
// advertisement (RFC 4861 §7.2.6: to ff02::1, Solicited clear) that a node
// heard on its eth0.
type Announcement struct {
	At   time.Time
	Kind string           // KindGARP or KindNA
	From net.HardwareAddr // the frame's Ethernet source
	Addr netip.Addr       // the address announced
	// Op is the ARP opcode, 1 (request) or 2 (reply); 0 for KindNA.
	Op int
}

// AnnouncementCapture records the announcements a node hears, from
// CaptureAnnouncements until Stop.
type AnnouncementCapture struct {
	c      *packet.Conn
	own    net.HardwareAddr
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	seen []Announcement
	err  error
}

// CaptureAnnouncements opens an AF_PACKET socket on n's eth0 (the client,
// say) and records every gratuitous ARP and unsolicited neighbour
// advertisement arriving there, until Stop, ctx's end or MaxProbe. Solicited
// neighbour advertisements and ordinary ARP requests and replies are not
// announcements and are left out.
func (n *Node) CaptureAnnouncements(ctx context.Context) (*AnnouncementCapture, error) {
	var c *packet.Conn
	err := InNS(n.NS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: capture socket on eth0: %w", n.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, MaxProbe)
	a := &AnnouncementCapture{c: c, own: n.mac, cancel: cancel, done: make(chan struct{})}
	go a.read(ctx)
	return a, nil
}

func (a *AnnouncementCapture) read(ctx context.Context) {
	defer close(a.done)
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		// A short deadline keeps the loop responsive to ctx.
		_ = a.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := a.c.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		ann, ok := parseAnnouncement(buf[:n])
		if !ok || slices.Equal(ann.From, a.own) {
			continue
		}
		ann.At = now
		a.mu.Lock()
		a.seen = append(a.seen, ann)
		a.mu.Unlock()
	}
}

// parseAnnouncement decodes an Ethernet frame with mdlayher/ethernet,
// mdlayher/arp, x/net/ipv6 and mdlayher/ndp; ok is false unless it is an
// announcement.
func parseAnnouncement(b []byte) (ann Announcement, ok bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		return ann, false
	}
	ann.From = slices.Clone(f.Source)
	switch f.EtherType {
	case ethernet.EtherTypeARP:
		var p arp.Packet
		// UnmarshalBinary refuses anything but Ethernet/IPv4.
		if err := p.UnmarshalBinary(f.Payload); err != nil || p.SenderIP != p.TargetIP {
			return ann, false
		}
		ann.Kind, ann.Addr, ann.Op = KindGARP, p.SenderIP, int(p.Operation)
		return ann, true
	case ethernet.EtherTypeIPv6:
		// Neighbour discovery has no extension headers.
		h, err := ipv6.ParseHeader(f.Payload)
		if err != nil || h.NextHeader != unix.IPPROTO_ICMPV6 || len(f.Payload) < ipv6.HeaderLen+h.PayloadLen {
			return ann, false
		}
		msg, err := ndp.ParseMessage(f.Payload[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen])
		if err != nil {
			return ann, false
		}
		na, isNA := msg.(*ndp.NeighborAdvertisement)
		if !isNA || na.Solicited || !h.Dst.Equal(net.IPv6linklocalallnodes) {
			return ann, false
		}
		ann.Kind, ann.Addr = KindNA, na.TargetAddress
		return ann, true
	}
	return ann, false
}

// Seen returns the announcements recorded so far, oldest first.
func (a *AnnouncementCapture) Seen() []Announcement {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// Stop ends the capture, closes its socket and returns what it recorded, and
// the error that ended it early if one did. Calling it again returns the
// same.
func (a *AnnouncementCapture) Stop() ([]Announcement, error) {
	a.cancel()
	<-a.done
	_ = a.c.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen), a.err
}
