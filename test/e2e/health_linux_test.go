package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// svcService is a service on the master that a check probes and the test
// breaks and repairs.
type svcService struct {
	check  svcCheck
	fail   func(t *testing.T)
	repair func(t *testing.T)
}

// svcNewService starts a service of the given kind for n and returns it
// with the check that probes it.
func svcNewService(t *testing.T, n *lab.Node, kind string) svcService {
	t.Helper()
	switch kind {
	case "http":
		h := svcStartHealthHTTP(t, n.NS, "127.0.0.1:8080")
		return svcService{
			check:  svcCheck{Name: "svc", HTTP: h.URL},
			fail:   func(*testing.T) { h.set(svcHealthFail) },
			repair: func(*testing.T) { h.set(svcHealthOK) },
		}
	case "tcp":
		s := svcStartTCPService(t, n.NS, "127.0.0.1:6443")
		return svcService{
			check: svcCheck{Name: "svc", TCP: "127.0.0.1:6443"},
			fail:  func(*testing.T) { s.close() },
			repair: func(t *testing.T) {
				if err := s.open(); err != nil {
					t.Fatal(err)
				}
			},
		}
	case "exec":
		flag := filepath.Join(t.TempDir(), "healthy")
		if err := os.WriteFile(flag, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return svcService{
			check: svcCheck{Name: "svc", Exec: []string{"/bin/sh", "-c", "test -e " + flag}},
			fail: func(t *testing.T) {
				if err := os.Remove(flag); err != nil {
					t.Fatal(err)
				}
			},
			repair: func(t *testing.T) {
				if err := os.WriteFile(flag, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		}
	}
	t.Fatalf("unknown service kind %q", kind)
	return svcService{}
}

// svcStartPair starts n1 (priority 150, with cfg1's checks and tracking) and,
// once n1 holds the VIP, n2 (priority 100), and waits until n2 follows n1.
// n1 goes first so that the pair also works without preemption.
func svcStartPair(t *testing.T, l *lab.Lab, n1cfg svcConfig, preempt bool) {
	t.Helper()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	startSvc(t, l, n1, n1cfg)
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	startSvc(t, l, n2, svcConfig{Instances: []svcInstance{svcInst(100, preempt)}})
	st := svcWaitState(t, svcSocket(l, n2), "api", "backup")
	svcWaitFor(t, "n2 knows n1 as its master", patience, func() (bool, string) {
		st = svcStatus(t, svcSocket(l, n2), "api")
		return st.Master == svcAddr(n1.Addr), fmt.Sprintf("%+v", st)
	})
}

// TestHealthCheckMovesVIP breaks a service on the master that an HTTP, TCP or
// exec check probes. Weighted (-60 on 150 against 100): the effective
// priority drops to 90 and the backup preempts after its
// Master_Down_Interval; the VIP comes back when the service recovers
// (preempt). Fault-tracked: the master enters FAULT and sends priority 0, the
// backup takes over after Skew_Time; with preempt off the VIP stays on the
// backup after the service recovers.
func TestHealthCheckMovesVIP(t *testing.T) {
	for _, kind := range []string{"http", "tcp", "exec"} {
		for _, mode := range []string{"weighted", "fault"} {
			t.Run(kind+"/"+mode, func(t *testing.T) {
				testHealthCheckMovesVIP(t, kind, mode == "fault")
			})
		}
	}
}

func testHealthCheckMovesVIP(t *testing.T, kind string, fault bool) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	svc := svcNewService(t, n1, kind)
	weight := -60
	preempt := true
	if fault {
		weight, preempt = 0, false
	}
	in := svcInst(150, preempt)
	in.TrackChecks = []svcTrack{{Name: "svc", Weight: weight}}
	svcStartPair(t, l, svcConfig{Checks: []svcCheck{svc.check}, Instances: []svcInstance{in}}, preempt)
	sock1 := svcSocket(l, n1)
	if st := svcStatus(t, sock1, "api"); st.State != "master" || st.Priority != 150 {
		t.Fatalf("n1 before the failure: %+v, want master at 150", st)
	}
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)

	// Detection takes at most fall × interval; then a fault-tracked master
	// sends priority 0 and n2 waits Skew_Time, while a weighted one
	// advertises 90 and n2 waits out its Master_Down_Interval, counted from
	// the last advert at 150 (sent up to an interval before detection).
	detect := time.Duration(svcCheckFall) * svcCheckInterval
	ideal := detect + lab.SkewTime(100, interval)
	if !fault {
		ideal = detect + lab.MasterDownInterval(100, interval)
	}
	bound := ideal + 700*time.Millisecond // a busy machine

	failed := time.Now()
	svc.fail(t)
	waitHolders(t, l, "n2 takes the VIP", lab.Only(n2))
	moved := time.Since(failed)
	t.Logf("%s check failed: the VIP moved to n2 after %v (at most %v from the configuration)", kind, moved.Round(time.Millisecond), ideal)
	if moved > bound {
		t.Errorf("the VIP moved %v after the %s service failed, want within %v (%v + slack)", moved.Round(time.Millisecond), kind, bound, ideal)
	}
	waitNeigh(t, l, n2)
	waitReply(t, p)

	if fault {
		svcWantChange(t, n1, "api", "", "fault", "check failed")
		svcWantChange(t, n2, "api", "", "master", "priority 0 received")
		if st := svcStatus(t, sock1, "api"); st.State != "fault" {
			t.Errorf("n1's status while its check is down: %+v, want fault", st)
		}
	} else {
		svcWantChange(t, n1, "api", "", "backup", "higher priority seen")
		svcWantChange(t, n2, "api", "", "master", "master down timer")
		if st := svcStatus(t, sock1, "api"); st.State != "backup" || st.Priority != 90 || st.ConfiguredPriority != 150 {
			t.Errorf("n1's status while its check is down: %+v, want backup at 90/150", st)
		}
	}

	svc.repair(t)
	if preempt {
		waitHolders(t, l, "n1 takes the VIP back", lab.Only(n1))
		waitNeigh(t, l, n1)
		waitReply(t, p)
		if st := svcStatus(t, sock1, "api"); st.State != "master" || st.Priority != 150 {
			t.Errorf("n1 after the service recovered: %+v, want master at 150", st)
		}
		return
	}
	svcWaitState(t, sock1, "api", "backup")
	// n1's Master_Down_Interval is 341ms: it would have taken over several
	// times in this window if it were going to.
	holdSteady(t, l, n2, 1500*time.Millisecond)
	svcWantChange(t, n1, "api", "fault", "backup", "recovered")
	waitReply(t, p)
}

// TestTrackedInterfaceDown tracks a second interface of the master, eth1 (one
// end of a veth pair inside its namespace), without a weight: when its peer
// goes down eth1 loses carrier, the master enters FAULT and the VIP moves;
// when it comes back, the master preempts again.
func TestTrackedInterfaceDown(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	testenv.IP(t, "-n", n1.NS, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	testenv.IP(t, "-n", n1.NS, "link", "set", "eth1p", "up")
	testenv.IP(t, "-n", n1.NS, "link", "set", "eth1", "up")
	testenv.WaitLink(t, n1.NS, "eth1", "UP")

	in := svcInst(150, true)
	in.TrackInterfaces = []svcTrack{{Name: "eth1"}}
	svcStartPair(t, l, svcConfig{Instances: []svcInstance{in}}, true)
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)

	down := time.Now()
	testenv.IP(t, "-n", n1.NS, "link", "set", "eth1p", "down")
	waitHolders(t, l, "n2 takes the VIP", lab.Only(n2))
	moved := time.Since(down)
	ideal := lab.SkewTime(100, interval)
	t.Logf("eth1 lost carrier: the VIP moved to n2 after %v (Skew_Time %v)", moved.Round(time.Millisecond), ideal)
	if bound := ideal + 700*time.Millisecond; moved > bound {
		t.Errorf("the VIP moved %v after eth1 went down, want within %v", moved.Round(time.Millisecond), bound)
	}
	svcWantChange(t, n1, "api", "", "fault", "interface down")
	svcWantChange(t, n2, "api", "", "master", "priority 0 received")
	waitNeigh(t, l, n2)
	waitReply(t, p)

	testenv.IP(t, "-n", n1.NS, "link", "set", "eth1p", "up")
	waitHolders(t, l, "n1 takes the VIP back", lab.Only(n1))
	waitNeigh(t, l, n1)
	waitReply(t, p)
	cs := svcChanges(t, n1, "api")
	if len(cs) < 2 || cs[len(cs)-2].To != "backup" || cs[len(cs)-2].Reason != "recovered" || cs[len(cs)-1].To != "master" {
		t.Errorf("n1's state changes %+v, want ... to backup (recovered), to master", cs)
	}
}

// TestOwnInterfaceDown pulls the master's cable: its own interface is always
// tracked (docs/configuration.md), so it enters FAULT and releases the VIP
// rather than keeping it on a dead link; n2 takes over after its
// Master_Down_Interval (the priority-0 advert cannot reach it), and n1
// preempts again when the cable is back.
func TestOwnInterfaceDown(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	svcStartPair(t, l, svcConfig{Instances: []svcInstance{svcInst(150, true)}}, true)
	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n2 alone holds the VIP", lab.Only(n2))
	svcWantChange(t, n1, "api", "", "fault", "interface down")
	if st := svcStatus(t, svcSocket(l, n1), "api"); st.State != "fault" {
		t.Errorf("n1 without its cable: %+v, want fault", st)
	}
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n1 takes the VIP back", lab.Only(n1))
	cs := svcChanges(t, n1, "api")
	if len(cs) < 2 || cs[len(cs)-2].From != "fault" || cs[len(cs)-2].Reason != "recovered" || cs[len(cs)-1].To != "master" {
		t.Errorf("n1's state changes %+v, want ... fault to backup (recovered), to master", cs)
	}
}

// TestHangingCheckBoundedByTimeout makes the master's HTTP endpoint accept
// requests and never answer: each run must fail at the check's timeout, so
// the fault-tracked master still leaves in fall × interval + Skew_Time, and
// no run is recorded as longer than its timeout.
func TestHangingCheckBoundedByTimeout(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	h := svcStartHealthHTTP(t, n1.NS, "127.0.0.1:8080")
	in := svcInst(150, true)
	in.TrackChecks = []svcTrack{{Name: "svc"}}
	svcStartPair(t, l, svcConfig{
		Metrics:   svcMetricsAddr(0),
		Checks:    []svcCheck{{Name: "svc", HTTP: h.URL}},
		Instances: []svcInstance{in},
	}, true)

	hung := time.Now()
	h.set(svcHealthHang)
	waitHolders(t, l, "n2 takes the VIP", lab.Only(n2))
	moved := time.Since(hung)
	// A hanging run fails at its timeout, not at the end of its interval.
	ideal := svcCheckTimeout + time.Duration(svcCheckFall-1)*svcCheckInterval + svcCheckInterval + lab.SkewTime(100, interval)
	t.Logf("the endpoint hangs: the VIP moved to n2 after %v (at most %v from the configuration)", moved.Round(time.Millisecond), ideal)
	if bound := ideal + 700*time.Millisecond; moved > bound {
		t.Errorf("the VIP moved %v after the endpoint started hanging, want within %v", moved.Round(time.Millisecond), bound)
	}
	svcWantChange(t, n1, "api", "", "fault", "check failed")
	// The check keeps running on schedule while the endpoint hangs.
	before := h.hits.Load()
	time.Sleep(5 * svcCheckInterval)
	if runs := h.hits.Load() - before; runs < 2 {
		t.Errorf("%d check runs reached the hanging endpoint in %v, want about 5", runs, 5*svcCheckInterval)
	}

	ps := svcMustScrape(t, n1, svcMetricsAddr(0))
	total, err := ps.value("vipd_check_duration_seconds_count", "check", "svc")
	if err != nil {
		t.Fatal(err)
	}
	// The bucket above the timeout holds every run: none took longer.
	within, err := ps.value("vipd_check_duration_seconds_bucket", "check", "svc", "le", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || within != total {
		t.Errorf("vipd_check_duration_seconds: %v of %v runs within 250ms, want all (timeout %v)", within, total, svcCheckTimeout)
	}
	if v, err := ps.value("vipd_check_up", "check", "svc"); err != nil || v != 0 {
		t.Errorf("vipd_check_up{check=\"svc\"} = %v (%v), want 0", v, err)
	}
	var timedOut bool
	for _, r := range svcLogRecords(t, n1, "health check down") {
		if e, _ := r["err"].(string); strings.Contains(e, "timed out") {
			timedOut = true
		}
	}
	if !timedOut {
		t.Errorf("n1 logged no \"health check down\" with a timeout error")
	}

	h.set(svcHealthOK)
	waitHolders(t, l, "n1 takes the VIP back", lab.Only(n1))
}
