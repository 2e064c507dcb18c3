package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"

	"github.com/vipd/vipd/internal/announce"
	"github.com/vipd/vipd/internal/testenv"
)

// arpFrame is an Ethernet frame carrying an ARP packet from mac.
func arpFrame(t *testing.T, op arp.Operation, mac net.HardwareAddr, spa, tpa netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, mac, spa, net.HardwareAddr{0, 0, 0, 0, 0, 0}, tpa)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return frame(t, ethernet.Broadcast, mac, ethernet.EtherTypeARP, pb)
}

// naFrame is an Ethernet frame carrying a neighbour advertisement for
// target from mac to dst.
func naFrame(t *testing.T, mac net.HardwareAddr, dst, target netip.Addr, solicited bool) []byte {
	t.Helper()
	m, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{
		Solicited: solicited, Override: true, TargetAddress: target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fixed IPv6 header (RFC 8200 §3): version 6, payload length,
	// next header ICMPv6, hop limit 255.
	h := []byte{0x60, 0, 0, 0, byte(len(m) >> 8), byte(len(m)), 58, 255}
	h = append(h, netip.MustParseAddr("fe80::1").AsSlice()...)
	h = append(h, dst.AsSlice()...)
	return frame(t, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, mac, ethernet.EtherTypeIPv6, append(h, m...))
}

func frame(t *testing.T, dst, src net.HardwareAddr, et ethernet.EtherType, payload []byte) []byte {
	t.Helper()
	b, err := (&ethernet.Frame{Destination: dst, Source: src, EtherType: et, Payload: payload}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAnnouncement(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0xc0, 0, 2, 0x0b}
	vip, vip6 := VIP.Addr(), VIP6.Addr()
	allNodes := netip.MustParseAddr("ff02::1")
	for _, tt := range []struct {
		name  string
		frame []byte
		want  Announcement
		ok    bool
	}{
		{"garp request", arpFrame(t, arp.OperationRequest, mac, vip, vip), Announcement{Kind: KindGARP, From: mac, Addr: vip, Op: 1}, true},
		{"garp reply", arpFrame(t, arp.OperationReply, mac, vip, vip), Announcement{Kind: KindGARP, From: mac, Addr: vip, Op: 2}, true},
		{"arp request", arpFrame(t, arp.OperationRequest, mac, ClientAddr.Addr(), vip), Announcement{}, false},
		{"unsolicited na", naFrame(t, mac, allNodes, vip6, false), Announcement{Kind: KindNA, From: mac, Addr: vip6}, true},
		{"solicited na", naFrame(t, mac, allNodes, vip6, true), Announcement{}, false},
		{"unicast na", naFrame(t, mac, ClientAddr6.Addr(), vip6, false), Announcement{}, false},
		{"short", arpFrame(t, arp.OperationRequest, mac, vip, vip)[:30], Announcement{}, false},
	} {
		got, ok := parseAnnouncement(tt.frame)
		if ok != tt.ok {
			t.Errorf("%s: ok %t, want %t", tt.name, ok, tt.ok)
			continue
		}
		if ok && (got.Kind != tt.want.Kind || got.From.String() != tt.want.From.String() || got.Addr != tt.want.Addr || got.Op != tt.want.Op) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestCaptureAnnouncements has n1 announce the VIPs with vipd's own senders
// and the client capture them.
func TestCaptureAnnouncements(t *testing.T) {
	testenv.Privileged(t)
	l, err := New(Config{Nodes: 1, Dir: t.TempDir(), IPv6: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer l.Close()
	n1 := l.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := l.Client.CaptureAnnouncements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := n1.link()
	if err != nil {
		t.Fatal(err)
	}
	err = InNS(n1.NS, func() error {
		arp, err := announce.DialARP(link.Attrs().Index)
		if err != nil {
			return err
		}
		defer arp.Close()
		ndp, err := announce.DialNDP(link.Attrs().Index)
		if err != nil {
			return err
		}
		defer ndp.Close()
		if err := arp.Announce(VIP.Addr()); err != nil {
			return err
		}
		return ndp.Announce(VIP6.Addr())
	})
	if err != nil {
		t.Fatalf("announcing from n1: %v", err)
	}
	// Ordinary neighbour traffic is no announcement: the client resolves
	// n1 (a request from the client, a reply from n1).
	p, err := l.Probe(ctx, n1.Addr.Addr(), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Seen()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Anything late would show in the count.
	time.Sleep(100 * time.Millisecond)
	seen, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"garp 1 " + VIP.Addr().String(): 1, "garp 2 " + VIP.Addr().String(): 1, "na 0 " + VIP6.Addr().String(): 1}
	got := map[string]int{}
	for _, a := range seen {
		if a.From.String() != n1.MAC().String() {
			t.Errorf("announcement from %s, want only n1's %s: %+v", a.From, n1.MAC(), a)
		}
		got[fmt.Sprintf("%s %d %s", a.Kind, a.Op, a.Addr)]++
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("captured %v, want %v", got, want)
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("captured %v, want %v", got, want)
	}
}
