package watch

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/pkg/vrrp"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// groupOf is the group src sends adverts to: 224.0.0.18 or ff02::12.
func groupOf(src netip.Addr) netip.Addr {
	if src.Unmap().Is4() {
		return vrrp.IPv4Group
	}
	return vrrp.IPv6Group
}

// marshal returns p as src sends it to its family's group.
func marshal(t *testing.T, p *vrrp.Packet, src netip.Addr) []byte {
	t.Helper()
	b, err := p.Marshal(src, groupOf(src))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secret is an auth_hmac secret of the length keepalived expects.
var secret = []byte("0123456789abcdef0123456789abcdef")

// sign returns p signed with auth_hmac key id at now, as src sends it to its
// family's group.
func sign(t *testing.T, p *vrrp.Packet, id uint8, src netip.Addr, now time.Time) []byte {
	t.Helper()
	return signWith(t, p, id, secret, src, now)
}

// signWith is sign with another secret.
func signWith(t *testing.T, p *vrrp.Packet, id uint8, secret []byte, src netip.Addr, now time.Time) []byte {
	t.Helper()
	k, err := vrrp.NewKey(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Append(nil, p, src, groupOf(src), vrrp.ChecksumPseudoHeader, vrrp.SeqAt(now))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandle(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	good := marshal(t, adv(7, 100, 100, "192.0.2.50"), src)
	badSum := append([]byte(nil), good...)
	badSum[7] ^= 0xff
	v2 := marshal(t, &vrrp.Packet{Version: 2, Type: 1, VRID: 7, Priority: 100, Interval: 1, Addresses: addrs("192.0.2.50")}, src)
	v4 := append([]byte(nil), good...)
	v4[0] = 0x41
	signed := sign(t, adv(7, 100, 100, "192.0.2.50"), 1, src, t0)
	badTrailer := append([]byte(nil), signed...)
	badTrailer[len(badTrailer)-vrrp.AuthTrailerLen] ^= 0xff // ext_type
	badMAC := append([]byte(nil), signed...)
	badMAC[len(badMAC)-1] ^= 0xff

	// IPv6: from a link-local source to ff02::12 (RFC 9568 §5.1.2.1).
	src6 := netip.MustParseAddr("fe80::1")
	good6 := marshal(t, adv(7, 100, 100, "2001:db8::50"), src6)
	badSum6 := append([]byte(nil), good6...)
	badSum6[7] ^= 0xff
	signed6 := sign(t, adv(7, 100, 100, "2001:db8::50"), 3, src6, t0)
	// Over IPv6 the checksum covers the trailer: a forged MAC with a
	// valid checksum is one made with another secret.
	forged6 := signWith(t, adv(7, 100, 100, "2001:db8::50"), 3, []byte("fedcba9876543210fedcba9876543210"), src6, t0)
	g4, g6 := vrrp.IPv4Group, vrrp.IPv6Group
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		ttl      int
		want     drop.Reason
		keyID    uint8 // of a signed advert
	}{
		{"v3", good, src, g4, 255, drop.None, 0},
		{"v2", v2, src, g4, 255, drop.None, 0},
		{"mapped source", good, netip.MustParseAddr("::ffff:192.0.2.1"), g4, 255, drop.None, 0},
		{"signed", signed, src, g4, 255, drop.None, 1},
		// watch has no keys: it cannot tell a forged MAC.
		{"signed, MAC unchecked", badMAC, src, g4, 255, drop.None, 1},
		{"signed with a malformed trailer", badTrailer, src, g4, 255, drop.AuthMalformed, 0},
		{"forwarded", good, src, g4, 254, drop.TTL, 0},
		{"bad checksum", badSum, src, g4, 255, drop.Checksum, 0},
		{"checksum for another source", good, netip.MustParseAddr("192.0.2.3"), g4, 255, drop.Checksum, 0},
		{"version 4", v4, src, g4, 255, drop.Version, 0},
		{"truncated", good[:10], src, g4, 255, drop.Truncated, 0},
		{"trailing", append(append([]byte(nil), good...), 0), src, g4, 255, drop.Oversized, 0},
		{"empty", nil, src, g4, 255, drop.Truncated, 0},

		{"ipv6", good6, src6, g6, 255, drop.None, 0},
		{"ipv6 signed", signed6, src6, g6, 255, drop.None, 3},
		{"ipv6 signed, MAC unchecked", forged6, src6, g6, 255, drop.None, 3},
		// RFC 9568 §7.1: the hop limit, like the TTL, must be 255.
		{"ipv6 hop limit 64", good6, src6, g6, 64, drop.TTL, 0},
		{"ipv6 hop limit 254", good6, src6, g6, 254, drop.TTL, 0},
		// A raw IPv6 socket reports the hop limit in a control message;
		// without it Meta.TTL is 0.
		{"ipv6 no hop limit", good6, src6, g6, 0, drop.TTL, 0},
		// The kernel does not check the checksum (transport leaves
		// IPV6_CHECKSUM off): the ladder does, over the IPv6
		// pseudo-header.
		{"ipv6 bad checksum", badSum6, src6, g6, 255, drop.Checksum, 0},
		{"ipv6 checksum for another source", good6, netip.MustParseAddr("fe80::3"), g6, 255, drop.Checksum, 0},
		{"ipv6 checksum for another destination", good6, src6, netip.MustParseAddr("fe80::2"), 255, drop.Checksum, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMonitor("eth0", Config{}, (&fakeClock{now: t0}).Now)
			if got := m.Handle(tt.b, tt.src, tt.dst, tt.ttl); got != tt.want {
				t.Fatalf("Handle = %v, want %v", got, tt.want)
			}
			r := m.Report()
			if tt.want == drop.None {
				if r.Adverts != 1 || len(r.Routers) != 1 || r.Routers[0].Sender != tt.src.Unmap() || len(r.Drops) != 0 {
					t.Errorf("report after a good advert: %+v", r)
				} else if rt := r.Routers[0]; rt.Family != familyOf(tt.src.Unmap()) {
					t.Errorf("advert from %v in family %v", tt.src, rt.Family)
				} else if rt.Signed != (tt.keyID != 0) || rt.KeyID != tt.keyID {
					t.Errorf("advert signed %v with key id %d, want key id %d", rt.Signed, rt.KeyID, tt.keyID)
				}
				return
			}
			if diff := cmp.Diff([]DropCount{{tt.want, 1}}, r.Drops); diff != "" || r.Adverts != 0 || len(r.Routers) != 0 {
				t.Errorf("report after a drop: %+v; drops (-want +got):\n%s", r, diff)
			}
		})
	}
}

// TestHandleZone: a link-local sender is one router whether or not the
// socket named its zone, and the report shows it without one.
func TestHandleZone(t *testing.T) {
	m := NewMonitor("eth0", Config{}, (&fakeClock{now: t0}).Now)
	src := netip.MustParseAddr("fe80::1")
	b := marshal(t, adv(7, 100, 100, "2001:db8::50"), src)
	for _, s := range []netip.Addr{src, src.WithZone("eth0")} {
		if got := m.Handle(b, s, vrrp.IPv6Group, 255); got != drop.None {
			t.Fatalf("Handle from %v = %v", s, got)
		}
	}
	r := m.Report()
	if len(r.Routers) != 1 || r.Routers[0].Sender != src || r.Routers[0].Adverts != 2 {
		t.Errorf("two adverts from %v, one with a zone: %+v", src, r.Routers)
	}
}

func TestFamilies(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Family
	}{
		{"ipv4", []Family{IPv4}},
		{"ipv6", []Family{IPv6}},
		{"both", []Family{IPv4, IPv6}},
	} {
		if got, err := Families(tt.in); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Families(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "IPv4", "inet6", "4"} {
		if got, err := Families(in); err == nil {
			t.Errorf("Families(%q) = %v, want an error", in, got)
		}
	}
}

func TestReportForgets(t *testing.T) {
	clk := &fakeClock{now: t0}
	m := NewMonitor("eth0", Config{Forget: 3 * time.Second}, clk.Now)
	src := netip.MustParseAddr("192.0.2.1")
	m.Handle(marshal(t, adv(7, 100, 100, "192.0.2.50"), src), src, vrrp.IPv4Group, 255)
	clk.Advance(3 * time.Second)
	if r := m.Report(); len(r.Routers) != 1 || r.Interface != "eth0" || !r.Time.Equal(at(3*time.Second)) {
		t.Errorf("report at 3s: %+v", r)
	}
	clk.Advance(time.Millisecond)
	if r := m.Report(); len(r.Routers) != 0 || len(m.table.routers) != 0 || r.Adverts != 1 {
		t.Errorf("report past the forget period: %+v, %d senders kept", r, len(m.table.routers))
	}
}

func TestRefresh(t *testing.T) {
	m := NewMonitor("eth0", Config{}, (&fakeClock{now: t0}).Now)
	ticks := make(chan time.Time, 10)
	for range 5 {
		ticks <- t0
	}
	var n int
	render := func(Report) error { n++; return nil }
	if err := m.Refresh(context.Background(), ticks, 3, render); err != nil || n != 3 {
		t.Errorf("Refresh with count 3: %v after %d renders", err, n)
	}

	// Count 0 runs until the context is done. Unbuffered, each tick is
	// taken before the next is sent.
	ticks = make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	done := make(chan error)
	go func() { done <- m.Refresh(ctx, ticks, 0, render) }()
	for range 4 {
		ticks <- t0
	}
	cancel()
	select {
	case err := <-done:
		if err != nil || n != 4 {
			t.Errorf("Refresh until cancelled: %v after %d renders, want nil after 4", err, n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Refresh still running 5s after cancel")
	}

	// A render error stops it.
	boom := errors.New("boom")
	ticks = make(chan time.Time, 1)
	ticks <- t0
	if err := m.Refresh(context.Background(), ticks, 0, func(Report) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Refresh with a failing render: %v, want %v", err, boom)
	}
}
