package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/pkg/vrrp"
)

// TestRoutineAdverts: a Backup's routine adverts, only noted by the receive
// loop, still hold its Master_Down_Timer off, the timer still runs from the
// last of them, and an advert that is not routine (priority 0) is stepped
// after them, in order.
func TestRoutineAdverts(t *testing.T) {
	seg := &segment{}
	h := newHost(seg, "192.0.2.11")
	startNode(t, h, 100) // 10 ms adverts: Master_Down_Interval 36.1 ms, Skew_Time 6.1 ms
	from := netip.MustParseAddr("192.0.2.99")
	advert := func(prio uint8) []byte {
		p := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: prio, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
		b, err := p.Marshal(from, vrrp.IPv4Group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	master := advert(150)
	// 400 ms of adverts every 10 ms: more than ten Master_Down_Intervals.
	var last time.Time
	for range 40 {
		seg.inject(master, from, vrrp.IPv4Group, 255)
		last = time.Now()
		time.Sleep(10 * time.Millisecond)
		if h.has(vip) {
			t.Fatal("the Backup took over while its Master advertised")
		}
	}
	waitFor(t, 2*time.Second, "the Backup to take over", func() bool { return h.has(vip) })
	if d := time.Since(last); d < 35*time.Millisecond {
		t.Errorf("took over %v after the last advert, before Master_Down_Interval (36.1 ms)", d)
	}

	// Routine adverts from the new Master's rival, then its priority 0: a
	// Backup again (the rival is higher), it takes over after Skew_Time.
	h2 := newHost(seg, "192.0.2.12")
	startNode(t, h2, 100)
	for range 20 {
		seg.inject(master, from, vrrp.IPv4Group, 255)
		time.Sleep(10 * time.Millisecond)
	}
	if h.has(vip) || h2.has(vip) {
		t.Fatal("a Backup holds the VIP while a higher Master advertises")
	}
	seg.inject(advert(0), from, vrrp.IPv4Group, 255)
	start := time.Now()
	waitFor(t, 2*time.Second, "a Backup to take over after priority 0", func() bool { return h.has(vip) || h2.has(vip) })
	if d := time.Since(start); d > 30*time.Millisecond {
		t.Errorf("took over %v after priority 0; Skew_Time is 6.1 ms and Master_Down_Interval 36.1 ms", d)
	}
}
