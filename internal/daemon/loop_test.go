package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
)

// sampler checks a condition at every step of fake time until stopped and
// counts the samples where it failed.
type sampler struct {
	stop chan struct{}
	bad  chan int
}

func sample(every time.Duration, ok func() bool) *sampler {
	s := &sampler{stop: make(chan struct{}), bad: make(chan int, 1)}
	go func() {
		n := 0
		for {
			select {
			case <-s.stop:
				s.bad <- n
				return
			case <-time.After(every):
			}
			if !ok() {
				n++
			}
		}
	}()
	return s
}

func (s *sampler) done() int { close(s.stop); return <-s.bad }

// pair starts two hosts, priorities 150 and 100, and waits for host 0 to
// be Master.
func pair(t *testing.T) ([]*host, []*node) {
	t.Helper()
	seg := &segment{}
	hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
	ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100)}
	waitFor(t, time.Second, "host 0 alone holding the VIP", only(0, hs...))
	return hs, ns
}

// The VIPs of a Master that stops stay until the new Master's first advert
// is heard: at every instant some host holds them.
func TestHandoverMakeBeforeBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hs, ns := pair(t)
		s := sample(100*time.Microsecond, func() bool { return hs[0].has(vip) || hs[1].has(vip) })
		start := time.Now()
		ns[0].stop()
		stopped := time.Since(start)
		if lost := s.done(); lost != 0 {
			t.Errorf("no host held the VIP at %d samples during the handover", lost)
		}
		if !hs[1].has(vip) || hs[0].has(vip) {
			t.Fatalf("after the handover: host 0 %v, host 1 %v; want host 1 alone", hs[0].has(vip), hs[1].has(vip))
		}
		// Host 1 takes over after its Skew_Time (6.1 ms at 10 ms adverts),
		// and host 0 releases on hearing it.
		if skew := router.SkewTime(100, 10*time.Millisecond); stopped < skew || stopped > skew+2*time.Millisecond {
			t.Errorf("the stopping Master released the VIP after %v, want just after host 1's Skew_Time %v", stopped, skew)
		}
	})
}

// Someone removes the VIP from the Master, or adds it on the Backup: vipd
// puts the kernel back as the election says, at once, and counts it.
func TestVIPDriftIsRepaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hs, ns := pair(t)
		repairs := func(n *node, action string) float64 {
			return n.value("vipd_vip_repairs_total", "instance=api", "action="+action)
		}
		announced := hs[0].announcements()

		hs[0].drift(vip, false)
		synctest.Wait()
		if !hs[0].has(vip) {
			t.Fatal("the VIP removed from the Master was not put back")
		}
		if got := repairs(ns[0], "added"); got != 1 {
			t.Errorf("repairs{added} = %v, want 1", got)
		}
		if hs[0].announcements() <= announced {
			t.Error("the VIP put back was not announced again")
		}

		hs[1].drift(vip, true)
		synctest.Wait()
		if hs[1].has(vip) {
			t.Fatal("the VIP added on the Backup was not removed")
		}
		if got := repairs(ns[1], "removed"); got != 1 {
			t.Errorf("repairs{removed} = %v, want 1", got)
		}
		if !only(0, hs...)() || state(ns[0]) != router.Master {
			t.Errorf("the repairs moved the VIP: holders %v, host 0 %v", holders(hs...), state(ns[0]))
		}
		// Our own changes are no drift.
		settle(time.Second)
		if a, r := repairs(ns[0], "added")+repairs(ns[1], "added"), repairs(ns[0], "removed")+repairs(ns[1], "removed"); a != 1 || r != 1 {
			t.Errorf("repairs added %v removed %v after a second at rest, want 1 and 1", a, r)
		}
	})
}

// An interface that is deleted puts its instances in FAULT — never Master
// without a socket — and one created again (a new index) brings them back.
func TestInterfaceDeletedAndRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hs, ns := pair(t)

		hs[0].deleteLink("eth0")
		waitFor(t, time.Second, "host 0 in fault", func() bool { return state(ns[0]) == router.Fault })
		waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
		s := sample(time.Millisecond, func() bool {
			master := ns[0].value("vipd_instance_state", "instance=api", "state=master")
			return state(ns[0]) == router.Fault && master == 0
		})
		settle(3 * time.Second)
		if bad := s.done(); bad != 0 {
			t.Errorf("host 0 was not in fault, or its metrics said master, at %d of 3000 samples with its interface gone", bad)
		}

		hs[0].recreateLink("eth0")
		waitFor(t, 2*time.Second, "host 0 to rejoin and preempt", func() bool {
			return only(0, hs...)() && state(ns[0]) == router.Master && state(ns[1]) == router.Backup
		})
	})
}

// A new primary address becomes the source of the Master's adverts.
func TestPrimaryAddressChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{startNode(t, hs[0], 150), startNode(t, hs[1], 100)}
		waitFor(t, time.Second, "host 1 to follow host 0", func() bool {
			st := ns[1].d.Status()
			return len(st) == 1 && st[0].Master == hs[0].addr
		})
		hs[0].setPrimary("192.0.2.21")
		waitFor(t, 100*time.Millisecond, "host 1 to follow host 0's new address", func() bool {
			return ns[1].d.Status()[0].Master == netip.MustParseAddr("192.0.2.21")
		})
		if !only(0, hs...)() {
			t.Errorf("holders %v, want [0]", holders(hs...))
		}
	})
}

// manyConfig is n instances on eth0, VRIDs 1..n, one VIP each.
func manyConfig(n int, prio uint8, interval time.Duration) *config.Config {
	cfg := &config.Config{File: "test.yaml"}
	for i := 1; i <= n; i++ {
		ic := instanceConfig(prio)
		ic.Name, ic.VRID, ic.AdvertInterval = fmt.Sprintf("vi%d", i), uint8(i), interval
		ic.VIPs = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/24", i))}
		cfg.Instances = append(cfg.Instances, ic)
	}
	return cfg
}

// 255 instances on one interface: every advert arrives, no Backup takes
// over while its Master lives, and all fail over when the Master stops.
func TestManyInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 255
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ns := []*node{startConfig(t, hs[0], manyConfig(n, 150, 100*time.Millisecond)), startConfig(t, hs[1], manyConfig(n, 100, 100*time.Millisecond))}
		masters := func(k int) func() bool {
			return func() bool {
				for _, st := range ns[k].d.Status() {
					if st.State != router.Master {
						return false
					}
				}
				return true
			}
		}
		waitFor(t, 2*time.Second, "host 0 Master of all", masters(0))
		settle(time.Second)
		before := ns[1].d.Transitions()
		seg.mu.Lock()
		sent0 := seg.sent
		seg.mu.Unlock()
		recv0 := ns[1].value("vipd_adverts_received_total")
		settle(5 * time.Second)
		seg.mu.Lock()
		sent := seg.sent - sent0
		seg.mu.Unlock()
		recv := ns[1].value("vipd_adverts_received_total") - recv0
		// Each Master advertises every 0.75 to 1 interval.
		if sent < n*50 || sent > n*67 {
			t.Errorf("%d adverts sent in 5 s by %d Masters at 100 ms", sent, n)
		}
		if int(recv) != sent {
			t.Errorf("host 1 received %v of %d adverts", recv, sent)
		}
		if d := ns[1].value("vipd_packets_dropped_total"); d != 0 {
			t.Errorf("host 1 dropped %v packets", d)
		}
		if tr := ns[1].d.Transitions() - before; tr != 0 {
			t.Errorf("%d transitions on host 1 while host 0 lived", tr)
		}
		ns[0].stop()
		waitFor(t, time.Second, "host 1 Master of all", masters(1))
	})
}

// benchLoop is a loop on a simulated segment, its sockets open, with n
// instances at priority prio and 100 ms adverts on the host addr, and the
// time it was opened at; its timer is left to the benchmark.
func benchLoop(b *testing.B, n int, addr string, prio uint8) (*loop, time.Time) {
	h := newHost(&segment{}, addr)
	d := New(manyConfig(n, prio, 100*time.Millisecond), h, metrics.New(prometheus.NewRegistry(), "bench"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	l := newLoop(d, "eth0", "ipv4")
	l.timer = time.NewTimer(time.Hour)
	now := time.Now()
	l.tryOpen(now)
	b.Cleanup(l.closeSockets)
	for _, ic := range d.cfg.Instances {
		l.add(ic, &statusCell{})
	}
	return l, now
}

// BenchmarkLoopBackups steps 255 Backups through one advert interval of
// their Masters: one advert each, as the loop's reader hands them over.
func BenchmarkLoopBackups(b *testing.B) {
	const n = 255
	l, at := benchLoop(b, n, "192.0.2.12", 100)
	master := netip.MustParseAddr("192.0.2.11")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(100 * time.Millisecond)
		for v := 1; v <= n; v++ {
			l.receive(received{vrid: uint8(v), at: at, ev: router.Event{Kind: router.Advert, From: master, Priority: 150, Interval: 100 * time.Millisecond}})
		}
		l.flush()
	}
	b.StopTimer()
	for _, in := range l.instances {
		if in.r.State() != router.Backup {
			b.Fatalf("instance %s is %v, want backup", in.cfg.Name, in.r.State())
		}
	}
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		at = at.Add(100 * time.Millisecond)
		for v := 1; v <= n; v++ {
			l.receive(received{vrid: uint8(v), at: at, ev: router.Event{Kind: router.Advert, From: master, Priority: 150, Interval: 100 * time.Millisecond}})
		}
	}))/n, "allocs/advert")
}

// A Master restarted by a reload (its identity on the wire changed) hands
// over like a stopping one: its successor on the same host does not take
// the VIPs from under the handover.
func TestRestartedMasterHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hs, ns := pair(t)
		s := sample(100*time.Microsecond, func() bool { return hs[0].has(vip) || hs[1].has(vip) })
		ic := instanceConfig(150)
		ic.V3ChecksumAsV2 = true
		ns[0].d.Reload(&config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
		if !only(1, hs...)() {
			t.Errorf("once the reload returned: holders %v, want host 1 alone", holders(hs...))
		}
		// The restarted instance preempts host 1 again.
		waitFor(t, time.Second, "host 0 to preempt again", only(0, hs...))
		if lost := s.done(); lost != 0 {
			t.Errorf("no host held the VIP at %d samples during the restart", lost)
		}
		// Nor did it count on the reconcile to put them back.
		if got := ns[0].value("vipd_vip_repairs_total", "instance=api", "action=added"); got != 0 {
			t.Errorf("repairs{added} = %v during a restart, want 0", got)
		}
	})
}

// BenchmarkLoopMasters steps 255 Masters through one advert interval: each
// sends one advert, in batches as the timer finds them due.
func BenchmarkLoopMasters(b *testing.B) {
	const n = 255
	l, at := benchLoop(b, n, "192.0.2.11", 150)
	round := func() {
		end := at.Add(100 * time.Millisecond)
		for len(l.heap) > 0 && !l.heap[0].heapAt.After(end) {
			at = l.heap[0].heapAt
			l.fire(at)
			l.flush()
		}
		at = end
	}
	for range 50 {
		round()
	}
	for _, in := range l.instances {
		if in.r.State() != router.Master {
			b.Fatalf("instance %s is %v, want master", in.cfg.Name, in.r.State())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
	b.StopTimer()
	b.ReportMetric(testing.AllocsPerRun(1, round)/n, "allocs/advert")
}
