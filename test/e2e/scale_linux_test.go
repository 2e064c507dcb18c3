package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestManyInstances: 100 instances on one interface, their adverts batched
// by the Master's sender and, on the Backup, noted rather than queued. Every
// advert arrives, none is dropped, the Backup never takes over while the
// Master lives, and all 100 fail over and back.
func TestManyInstances(t *testing.T) {
	const count = 100
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ins := make([]lab.Instance, count)
	for i := range ins {
		vrid := i + 1
		ins[i] = lab.Instance{
			Name: "v" + strconv.Itoa(vrid), VRID: vrid, Priority: 100, AdvertInterval: interval, Preempt: true,
			VIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(vrid)}), 32)},
		}
	}
	startVipdMetrics(t, l, n2, ins...)
	for i := range ins {
		ins[i].Priority = 150
	}
	startVipdMetrics(t, l, n1, ins...)

	masters := func(n *lab.Node) int {
		m, err := scrapeNode(context.Background(), n)
		if err != nil {
			return -1
		}
		return int(m.sum("vipd_instance_state", "state", "master"))
	}
	waitMasters := func(what string, want map[*lab.Node]int) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for {
			got := map[*lab.Node]int{}
			ok := true
			for n, w := range want {
				got[n] = masters(n)
				ok = ok && got[n] == w
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Masters per node %v after %v, want %v", what, names(got), patience, names(want))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMasters("start", map[*lab.Node]int{n1: count, n2: 0})
	time.Sleep(time.Second) // the announcements end

	const window = 5 * time.Second
	before1, before2 := scrapeMetrics(t, n1), scrapeMetrics(t, n2)
	begin := time.Now()
	time.Sleep(window)
	after1, after2 := scrapeMetrics(t, n1), scrapeMetrics(t, n2)
	took := time.Since(begin)

	sent := after1.sum("vipd_adverts_sent_total") - before1.sum("vipd_adverts_sent_total")
	received := after2.sum("vipd_adverts_received_total") - before2.sum("vipd_adverts_received_total")
	// Each Master advertises every interval (a quarter early at most, when
	// batches merge); the scrapes themselves take a moment.
	least := 0.9 * count * float64(window/interval)
	most := 1.1 * count * float64(took) / float64(interval) * 4 / 3
	t.Logf("%v: n1 sent %.0f adverts, n2 received %.0f (%d instances at %v)", took.Round(time.Millisecond), sent, received, count, interval)
	if sent < least || sent > most {
		t.Errorf("n1 sent %.0f adverts in %v, want %.0f..%.0f", sent, took, least, most)
	}
	// The four scrapes are moments apart, and n1 sends its instances'
	// adverts in batches of up to count: a batch counted on one side of
	// a scrape and not yet on the other is reading skew, not loss (the
	// kernel's drops are checked below).
	if received < sent*0.99-count {
		t.Errorf("n2 received %.0f of the %.0f adverts n1 sent", received, sent)
	}
	if dropped := after2.byLabel("vipd_packets_dropped_total", "reason"); sumValues(dropped) != 0 {
		t.Errorf("n2 dropped packets: %v", dropped)
	}
	if changes := stateChangesTo(t, n2, "master", begin); len(changes) != 0 {
		t.Errorf("n2 became Master %d times while n1 advertised", len(changes))
	}

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	waitMasters("n1's link cut", map[*lab.Node]int{n2: count})
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	waitMasters("n1's link restored", map[*lab.Node]int{n1: count, n2: 0})
}

func names(m map[*lab.Node]int) string {
	s := ""
	for n, v := range m {
		s += fmt.Sprintf("%s=%d ", n.Name, v)
	}
	return s
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}
