package watch

import (
	"context"
	"errors"
	"net/netip"
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

func marshal(t *testing.T, p *vrrp.Packet, src netip.Addr) []byte {
	t.Helper()
	b, err := p.Marshal(src, vrrp.IPv4Group)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secret is an auth_hmac secret of the length keepalived expects.
var secret = []byte("0123456789abcdef0123456789abcdef")

// sign returns p signed with auth_hmac key id at now, as src sends it to
// 224.0.0.18.
func sign(t *testing.T, p *vrrp.Packet, id uint8, src netip.Addr, now time.Time) []byte {
	t.Helper()
	k, err := vrrp.NewKey(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Append(nil, p, src, vrrp.IPv4Group, vrrp.ChecksumPseudoHeader, vrrp.SeqAt(now))
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
	tests := []struct {
		name  string
		b     []byte
		src   netip.Addr
		ttl   int
		want  drop.Reason
		keyID uint8 // of a signed advert
	}{
		{"v3", good, src, 255, drop.None, 0},
		{"v2", v2, src, 255, drop.None, 0},
		{"mapped source", good, netip.MustParseAddr("::ffff:192.0.2.1"), 255, drop.None, 0},
		{"signed", signed, src, 255, drop.None, 1},
		// watch has no keys: it cannot tell a forged MAC.
		{"signed, MAC unchecked", badMAC, src, 255, drop.None, 1},
		{"signed with a malformed trailer", badTrailer, src, 255, drop.AuthMalformed, 0},
		{"forwarded", good, src, 254, drop.TTL, 0},
		{"bad checksum", badSum, src, 255, drop.Checksum, 0},
		{"checksum for another source", good, netip.MustParseAddr("192.0.2.3"), 255, drop.Checksum, 0},
		{"version 4", v4, src, 255, drop.Version, 0},
		{"truncated", good[:10], src, 255, drop.Truncated, 0},
		{"trailing", append(append([]byte(nil), good...), 0), src, 255, drop.Oversized, 0},
		{"empty", nil, src, 255, drop.Truncated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMonitor("eth0", Config{}, (&fakeClock{now: t0}).Now)
			if got := m.Handle(tt.b, tt.src, vrrp.IPv4Group, tt.ttl); got != tt.want {
				t.Fatalf("Handle = %v, want %v", got, tt.want)
			}
			r := m.Report()
			if tt.want == drop.None {
				if r.Adverts != 1 || len(r.Routers) != 1 || r.Routers[0].Sender != src || len(r.Drops) != 0 {
					t.Errorf("report after a good advert: %+v", r)
				} else if rt := r.Routers[0]; rt.Signed != (tt.keyID != 0) || rt.KeyID != tt.keyID {
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
