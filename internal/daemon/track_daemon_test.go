package daemon

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/router"
)

// withProbe makes the daemon's checks probe p.
func withProbe(p *fakeProbe) func(*Daemon) {
	return func(d *Daemon) {
		d.newProbe = func(health.Spec) (health.Probe, error) { return p, nil }
	}
}

func trackedConfig(prio uint8, weight int) *config.Config {
	ic := instanceConfig(prio)
	ic.TrackChecks = []config.TrackCheck{{Check: "svc", Weight: weight}}
	return &config.Config{
		File: "test.yaml",
		Checks: []config.Check{{Name: "svc", Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
			Fall: 2, Rise: 1, TCP: &config.TCPCheck{Address: "192.0.2.1:6443"}}},
		Instances: []config.Instance{ic},
	}
}

func state(n *node) router.State {
	st := n.d.Status()
	if len(st) != 1 {
		return router.Init
	}
	return st[0].State
}

func TestFaultTrackedCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		svc := &fakeProbe{up: true}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], trackedConfig(150, 0), withProbe(svc))
		startNode(t, hs[1], 100)
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		svc.set(false)
		waitFor(t, 2*time.Second, "host 1 to take over from the faulted host 0", only(1, hs...))
		if s := state(n0); s != router.Fault {
			t.Fatalf("host 0 is %v, want fault", s)
		}
		if st := n0.d.Status()[0]; len(st.FailingChecks) != 1 || st.FailingChecks[0] != "svc" {
			t.Errorf("failing checks %v, want [svc]", st.FailingChecks)
		}
		if got := testutil.ToFloat64(n0.m.CheckUp.WithLabelValues("svc")); got != 0 {
			t.Errorf("vipd_check_up = %v, want 0", got)
		}

		svc.set(true)
		waitFor(t, 3*time.Second, "host 0 to recover and preempt", only(0, hs...))
		if got := n0.value("vipd_transitions_total", "instance=api", "from=master", "to=fault"); got != 1 {
			t.Errorf("master→fault transitions %v, want 1", got)
		}
	})
}

func TestWeightedCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		svc := &fakeProbe{up: true}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], trackedConfig(150, -60), withProbe(svc))
		startNode(t, hs[1], 100)
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		svc.set(false)
		waitFor(t, 2*time.Second, "host 1 to preempt host 0 at priority 90", only(1, hs...))
		if s := state(n0); s != router.Backup {
			t.Fatalf("host 0 is %v, want backup", s)
		}
		if got := n0.value("vipd_instance_priority", "instance=api", "kind=effective"); got != 90 {
			t.Errorf("effective priority %v, want 90", got)
		}
		svc.set(true)
		waitFor(t, 3*time.Second, "host 0 to preempt back at 150", only(0, hs...))
	})
}

func TestTrackedInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ic := instanceConfig(150)
		ic.TrackInterfaces = []config.TrackInterface{{Interface: "eth1"}}
		n0 := startConfig(t, hs[0], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
		startNode(t, hs[1], 100)
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		hs[0].setLink("eth1", false)
		waitFor(t, 2*time.Second, "host 1 to take over", only(1, hs...))
		if s := state(n0); s != router.Fault {
			t.Fatalf("host 0 is %v, want fault", s)
		}
		hs[0].setLink("eth1", true)
		waitFor(t, 3*time.Second, "host 0 to come back", only(0, hs...))

		// The instance's own interface is always tracked.
		hs[0].setLink("eth0", false)
		waitFor(t, 2*time.Second, "host 0 to fault on its own link", func() bool { return state(n0) == router.Fault })
	})
}

// A check that is down at start keeps the instance out of the election.
func TestStartsInFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		svc := &fakeProbe{up: true}
		svc.set(false)
		h := newHost(seg, "192.0.2.11")
		n := startConfig(t, h, trackedConfig(150, 0), withProbe(svc))
		waitFor(t, time.Second, "fault", func() bool { return state(n) == router.Fault })
		time.Sleep(100 * time.Millisecond)
		if h.has(vip) {
			t.Fatal("a faulted instance took the VIP")
		}
		svc.set(true)
		waitFor(t, 2*time.Second, "the recovered instance to become master", func() bool { return h.has(vip) })
	})
}
