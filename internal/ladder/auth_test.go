package ladder

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

func TestReplay(t *testing.T) {
	now := time.Unix(0x68000000, 0)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	seq := vrrp.SeqAt(now)
	steps := []struct {
		src    netip.Addr
		seq    uint64
		window time.Duration
		want   bool
	}{
		{a, seq, 0, true},        // first from a
		{a, seq, 0, false},       // the same again
		{a, seq - 1, 0, false},   // older
		{a, seq + 1, 0, true},    // the counter moved on
		{b, seq - 5, 0, true},    // b has its own mark
		{a, seq + 1, 0, false},   // a's is unchanged by b
		{c, seq, 0, true},        // a third sender evicts the least recently heard: b
		{b, seq - 10, 0, true},   // so b starts afresh, evicting a (c was heard last)
		{c, seq - 1, 0, false},   // c was kept
		{a, seq + 1, 0, true},    // a was not: afresh, evicting b
		{a, 1 << 63, 0, true},    // serial-number order: half the space ahead is after
		{a, seq + 2, 0, false},   // ... and seq+2 now behind it
		{a, ^uint64(0), 0, true}, // the wrap: still ahead of 1<<63
		{a, 5, 0, true},          // and past zero
		// time mode: a mark outside the window is forgotten.
		{a, seq, 5 * time.Second, true},
		{a, seq, 5 * time.Second, false},
	}
	r := NewReplay(2)
	for i, s := range steps {
		if got := r.accept(s.src, s.seq, now, s.window); got != s.want {
			t.Errorf("step %d: accept(%v, %#x, window %v) = %v, want %v", i, s.src, s.seq, s.window, got, s.want)
		}
	}
}

// A forged flood must cost no HMAC: a stale timestamp or unknown key is
// refused before it.
func BenchmarkCheckForged(b *testing.B) {
	group := vrrp.IPv4Group
	p := vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: vrHMAC, Priority: 254, Interval: 100, Addresses: []netip.Addr{vip4}}
	for _, bc := range []struct {
		name   string
		secret []byte
		at     time.Time
	}{
		{"bad hmac", secretOther, checkNow},
		{"stale", secret1, checkNow.Add(-time.Hour)},
	} {
		k, _ := vrrp.NewKey(1, bc.secret)
		msg, err := k.Append(nil, &p, stranger4, group, vrrp.ChecksumPseudoHeader, vrrp.SeqAt(bc.at))
		if err != nil {
			b.Fatal(err)
		}
		lookup := newLookup()
		m := metaOf(stranger4, group)
		b.Run(bc.name, func(b *testing.B) {
			var q vrrp.Packet
			b.ReportAllocs()
			for b.Loop() {
				Check(&q, msg, m, self4, checkNow, lookup)
			}
		})
	}
}

func metaOf(src, dst netip.Addr) transport.Meta {
	return transport.Meta{Src: src, Dst: dst, TTL: 255, IfIndex: 2}
}
