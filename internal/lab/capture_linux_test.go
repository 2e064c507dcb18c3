package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/announce"
	"github.com/vipd/vipd/internal/testenv"
)

// arpFrame is an Ethernet frame carrying an ARP packet from mac.
func arpFrame(op uint16, mac net.HardwareAddr, spa, tpa netip.Addr) []byte {
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	b = binary.BigEndian.AppendUint16(b, 0x0806)
	b = append(b, 0, 1, 0x08, 0, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	s, t := spa.As4(), tpa.As4()
	b = append(b, mac...)
	b = append(b, s[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, t[:]...)
}

// naFrame is an Ethernet frame carrying a neighbour advertisement for
// target from mac to dst with the given flags byte.
func naFrame(mac net.HardwareAddr, dst, target netip.Addr, flags byte) []byte {
	b := append([]byte{0x33, 0x33, 0, 0, 0, 1}, mac...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	b = append(b, 0x60, 0, 0, 0, 0, 32, 58, 255)
	src := netip.MustParseAddr("fe80::1").As16()
	d, tg := dst.As16(), target.As16()
	b = append(b, src[:]...)
	b = append(b, d[:]...)
	b = append(b, 136, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, tg[:]...)
	return append(b, 2, 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
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
		{"garp request", arpFrame(1, mac, vip, vip), Announcement{Kind: KindGARP, From: mac, Addr: vip, Op: 1}, true},
		{"garp reply", arpFrame(2, mac, vip, vip), Announcement{Kind: KindGARP, From: mac, Addr: vip, Op: 2}, true},
		{"arp request", arpFrame(1, mac, ClientAddr.Addr(), vip), Announcement{}, false},
		{"unsolicited na", naFrame(mac, allNodes, vip6, 0x20), Announcement{Kind: KindNA, From: mac, Addr: vip6}, true},
		{"solicited na", naFrame(mac, allNodes, vip6, 0x60), Announcement{}, false},
		{"unicast na", naFrame(mac, ClientAddr6.Addr(), vip6, 0x20), Announcement{}, false},
		{"short", arpFrame(1, mac, vip, vip)[:30], Announcement{}, false},
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
