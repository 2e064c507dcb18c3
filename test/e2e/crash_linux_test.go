package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestKillMasterAndRestart kills vipd on the Master with SIGKILL: n2 must
// take over (the VIP stays on n1's interface, nobody removes it). Restarting
// vipd on n1 must remove that stale VIP before n1 joins the election, so
// that from the restart on two nodes hold the VIP only during n1's
// preemption, for a few milliseconds, never for the whole wait before it.
func TestKillMasterAndRestart(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)
	time.Sleep(3 * interval)

	kill := time.Now()
	if err := n1.Kill(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n2 takes the VIP", includes(n2))
	takeover := time.Since(kill)
	if ok, err := n1.Has(lab.VIP); err != nil || !ok {
		t.Logf("n1 no longer has the VIP after SIGKILL (%v): nothing stale to remove", err)
	}
	waitNeigh(t, l, n2)
	waitReply(t, p)
	t.Logf("n2 held the VIP %v after SIGKILL of n1 (Master_Down_Interval %v)", takeover.Round(time.Millisecond), lab.MasterDownInterval(100, interval))

	const every = 3 * time.Millisecond
	sampler := sampleHolders(l, every, time.Minute)
	restart := time.Now()
	startVipd(t, l, n1, instance(150, true))
	waitHolders(t, l, "n1 alone holds the VIP again", lab.Only(n1))
	holdSteady(t, l, n1, 300*time.Millisecond)
	samples := sampler.stop(t)

	// n1 holds the VIP from the restart (stale) until vipd removes it, then
	// not while it is Backup, then again as Master.
	var cleaned, retaken time.Time
	for _, s := range samples {
		has := false
		for _, h := range s.holders {
			has = has || h == n1
		}
		switch {
		case cleaned.IsZero() && !has:
			cleaned = s.at
		case !cleaned.IsZero() && retaken.IsZero() && has:
			retaken = s.at
		}
	}
	if cleaned.IsZero() {
		t.Fatalf("n1 held the VIP in every one of %d samples from its restart on: the stale VIP was not removed before n1 took over", len(samples))
	}
	masters := stateChangesTo(t, n1, "master", restart)
	if len(masters) == 0 {
		t.Fatal("n1 logged no transition to master after the restart")
	}
	if !cleaned.Before(masters[0].Time) {
		t.Errorf("n1's stale VIP was first seen gone at %s, after n1 became master at %s",
			cleaned.Format(time.StampMicro), masters[0].Time.Format(time.StampMicro))
	}
	// Two holders after the cleanup: only the preemption's overlap (n1
	// adds the VIP, n2 removes it on n1's advert), milliseconds; the bound
	// is generous.
	var after []holderSample
	for _, s := range samples {
		if !s.at.Before(cleaned) {
			after = append(after, s)
		}
	}
	overlap, at, runs := longestRun(after, every, func(h []*lab.Node) bool { return len(h) > 1 })
	both := "never two holders after the cleanup"
	if runs > 0 {
		both = fmt.Sprintf("two holders after the cleanup in %d stretch(es), the longest %v from %s", runs, overlap, at.Format(time.StampMicro))
	}
	t.Logf("restart: stale VIP gone %v after the restart, n1 master %v after it, VIP back on n1 %v after it; %s (%d samples, every %v)",
		cleaned.Sub(restart).Round(time.Millisecond), masters[0].Time.Sub(restart).Round(time.Millisecond),
		retaken.Sub(restart).Round(time.Millisecond), both, len(samples), every)
	if bound := time.Second; overlap > bound {
		t.Errorf("two nodes held the VIP for %v from %s after n1's stale VIP was removed, want at most %v", overlap, at.Format(time.StampMicro), bound)
	}
	if stale := cleaned.Sub(restart); stale > 5*time.Second {
		t.Errorf("the restarted vipd removed the stale VIP only after %v", stale)
	}
	for _, c := range stateChangesTo(t, n3, "master", kill) {
		t.Errorf("n3 became master at %s (%s)", c.Time.Format(time.StampMicro), c.Reason)
	}
	waitNeigh(t, l, n1)
	waitReply(t, p)
}

// TestBackupRestartLoop kills and restarts vipd on the lowest-priority
// Backup over and over, at every stage of its start-up: the others must not
// notice. RFC 9568 gives a Backup that starts no reason to send anything
// before its Master_Down_Timer fires, and n1's adverts keep that from
// happening, so n1 and n2 must make no transition and the VIP must stay on n1
// throughout.
func TestBackupRestartLoop(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	time.Sleep(3 * interval)

	begin := time.Now()
	p.ResetOutage()
	sampler := sampleHolders(l, 10*time.Millisecond, time.Minute)
	// Kill at once, during the start-up, after the first Master_Down_Timer
	// would have fired, and in a steady Backup.
	lives := []time.Duration{0, 5, 20, 50, 120, 250, 400, 700, 30, 1000}
	for i, life := range lives {
		if err := n3.Kill(); err != nil && err != lab.ErrNotRunning {
			t.Fatal(err)
		}
		startVipd(t, l, n3, instance(50, true))
		time.Sleep(life * time.Millisecond)
		if !n3.Running() {
			t.Fatalf("round %d: vipd on n3 exited by itself", i)
		}
	}
	time.Sleep(500 * time.Millisecond)
	samples := sampler.stop(t)

	for _, n := range []*lab.Node{n1, n2} {
		if c := stateChangesTo(t, n, "", begin); len(c) != 0 {
			t.Errorf("%s changed state %d times while n3 restarted; first %+v", n.Name, len(c), c[0])
		}
		if !n.Running() {
			t.Errorf("vipd on %s exited", n.Name)
		}
	}
	for _, c := range stateChangesTo(t, n3, "master", begin) {
		t.Errorf("n3 became master at %s (%s) while n1 advertised", c.Time.Format(time.StampMicro), c.Reason)
	}
	for i, s := range samples {
		if len(s.holders) != 1 || s.holders[0] != n1 {
			t.Errorf("sample %d at %s: holders %s, want only n1", i, s.at.Format(time.StampMicro), lab.Names(s.holders))
			break
		}
	}
	st := p.Stats()
	t.Logf("%d restarts of n3 in %v: %d holder samples; client outage %v", len(lives), time.Since(begin).Round(time.Millisecond), len(samples), st.Outage)
	if st.Outage > 100*time.Millisecond {
		t.Errorf("the client lost the VIP for %v while n3 restarted", st.Outage)
	}
}
