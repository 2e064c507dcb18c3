package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

const (
	vrid     = 51
	interval = 100 * time.Millisecond
	// patience bounds every wait for the VRRP protocol to act: many
	// Master_Down_Intervals, as the machine may be busy.
	patience = 10 * time.Second
)

// newLab builds a lab for t with n router nodes and a client; it is removed
// when t ends, after the nodes' logs are printed if t failed.
func newLab(t *testing.T, n int) *lab.Lab {
	t.Helper()
	testenv.Privileged(t)
	l, err := lab.New(lab.Config{Nodes: n, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab %s, the nodes' logs end with:\n%s", l.Prefix, l.LogTails(40))
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

func instance(priority int, preempt bool) lab.Instance {
	return lab.Instance{
		VRID:           vrid,
		Priority:       priority,
		AdvertInterval: interval,
		Preempt:        preempt,
		VIPs:           []netip.Prefix{lab.VIP},
	}
}

func startVipd(t *testing.T, l *lab.Lab, n *lab.Node, in lab.Instance) {
	t.Helper()
	cfg := lab.VipdConfig(filepath.Join(l.Dir, n.Name+".sock"), in)
	if err := n.StartVipd(vipdBin, cfg); err != nil {
		t.Fatal(err)
	}
}

// waitHolders waits until ok accepts the VIP's holders; what says what the
// test is waiting for.
func waitHolders(t *testing.T, l *lab.Lab, what string, ok func([]*lab.Node) bool) []*lab.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	h, err := l.WaitHolders(ctx, lab.VIP, ok)
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
	return h
}

func includes(n *lab.Node) func([]*lab.Node) bool {
	return func(h []*lab.Node) bool { return slices.Contains(h, n) }
}

// holdSteady samples the holders every 20ms for d and fails at the first
// sample where want is not the only holder.
func holdSteady(t *testing.T, l *lab.Lab, want *lab.Node, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		h, err := l.Holders(lab.VIP)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0] != want {
			t.Fatalf("sample %d (%v before the end): holders %s, want only %s", i, time.Until(end).Round(time.Millisecond), lab.Names(h), want.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe starts pinging the VIP from the client every 2ms until t ends.
func probe(t *testing.T, l *lab.Lab) *lab.Prober {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s := p.Stop()
		cancel()
		t.Logf("prober: sent %d, received %d, longest outage %v, longest gap %v", s.Sent, s.Received,
			s.Outage.Round(100*time.Microsecond), s.MaxGap.Round(100*time.Microsecond))
	})
	return p
}

// waitReply waits until the client gets an echo reply from the VIP.
func waitReply(t *testing.T, p *lab.Prober) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// waitNeigh waits until the client's neighbour entry for the VIP is want's
// MAC address.
func waitNeigh(t *testing.T, l *lab.Lab, want *lab.Node) { waitNeighOf(t, l, lab.VIP.Addr(), want) }

// waitNeighOf is waitNeigh for the VIP ip (lab.WaitNeigh).
func waitNeighOf(t *testing.T, l *lab.Lab, ip netip.Addr, want *lab.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := l.WaitNeigh(ctx, ip, want, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// startThree starts vipd on three nodes with priorities 150, 100 and 50, the
// lowest first so that priority, not start order, decides, and waits until
// n1 is the only holder.
// startThree starts n3, n2 and n1 (priorities 50, 100, 150) and waits until
// n1 alone holds the VIP. Without preemption n1 must be first: a Backup that
// does not preempt never takes over from a Master it hears, and n2 (Master_
// Down_Interval 361 ms) started even 20 ms before n1 (341 ms) would be Master
// first and stay Master, as RFC 9568 §6.4.2 says it must.
func startThree(t *testing.T, l *lab.Lab, preempt bool) {
	t.Helper()
	n1 := l.Nodes[0]
	if !preempt {
		startVipd(t, l, n1, instance(150, false))
		waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	}
	for i := 2; i >= 1; i-- {
		startVipd(t, l, l.Nodes[i], instance(150-50*i, preempt))
	}
	if preempt {
		startVipd(t, l, n1, instance(150, true))
	}
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
}

func TestHighestPriorityWins(t *testing.T) {
	l := newLab(t, 3)
	n1 := l.Nodes[0]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)
	p.ResetOutage()
	holdSteady(t, l, n1, time.Second)
	// Lost echo requests in a steady state would mean the VIP moved, or
	// someone answered ARP for it, between two samples.
	if s := p.Stats(); s.Outage > 100*time.Millisecond {
		t.Errorf("the client lost the VIP for %v (from %v) while n1 held it", s.Outage, s.OutageStart.Format(time.StampMicro))
	}
	for _, n := range l.Nodes {
		if !n.Running() {
			t.Errorf("vipd on %s exited", n.Name)
		}
	}
}

func TestMasterCableCut(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n2 takes the VIP", includes(n2))
	waitNeigh(t, l, n2)
	waitReply(t, p)
	// n1 may keep the VIP on its isolated link; n3 must stay a backup.
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok, err := n3.Has(lab.VIP); err != nil || ok {
			t.Fatalf("n3 holds the VIP (%v) while n2 is master", err)
		}
	}
}

func TestGracefulStopHandsOverInSkewTime(t *testing.T) {
	l := newLab(t, 3)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	time.Sleep(3 * interval) // the backups have heard n1's adverts

	// Watch for n2 while n1 stops: Stop only returns once n1 has exited.
	taken := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := l.WaitHolders(ctx, lab.VIP, includes(n2)); err != nil {
			close(taken)
			return
		}
		taken <- time.Now()
	}()
	sigterm := time.Now()
	exit, err := n1.Stop()
	if err != nil {
		t.Errorf("vipd on n1 after SIGTERM: %v", err)
	}
	if exit > time.Second {
		t.Errorf("vipd on n1 exited %v after SIGTERM, want within 1s", exit)
	}
	at, ok := <-taken
	if !ok {
		t.Fatal("n2 did not take the VIP after n1 stopped")
	}
	handover := at.Sub(sigterm)
	mdi := lab.MasterDownInterval(100, interval)
	bound := min(2*interval+100*time.Millisecond, mdi)
	t.Logf("n1 exited %v after SIGTERM; n2 held the VIP %v after it (Skew_Time %v, Master_Down_Interval %v)",
		exit.Round(time.Millisecond), handover.Round(time.Millisecond), lab.SkewTime(100, interval), mdi)
	if handover >= bound {
		t.Errorf("n2 took over %v after SIGTERM, want < %v: the priority-0 advert should cut the wait to Skew_Time (%v), well under Master_Down_Interval (%v)",
			handover.Round(time.Millisecond), bound, lab.SkewTime(100, interval), mdi)
	}
	if has, err := n1.Has(lab.VIP); err != nil || has {
		t.Errorf("stopped n1 still has the VIP (%v)", err)
	}
	waitHolders(t, l, "n2 alone holds the VIP", lab.Only(n2))
	waitReply(t, p)
}

func TestPreempt(t *testing.T) {
	t.Run("cable", func(t *testing.T) {
		l := newLab(t, 3)
		n1, n2 := l.Nodes[0], l.Nodes[1]
		startThree(t, l, true)
		p := probe(t, l)
		waitReply(t, p)
		waitNeigh(t, l, n1)
		if err := n1.CutLink(); err != nil {
			t.Fatal(err)
		}
		waitHolders(t, l, "n2 takes the VIP", includes(n2))
		waitNeigh(t, l, n2)
		if err := n1.RestoreLink(); err != nil {
			t.Fatal(err)
		}
		waitHolders(t, l, "n1 alone holds the VIP again", lab.Only(n1))
		waitNeigh(t, l, n1)
		waitReply(t, p)
		holdSteady(t, l, n1, 500*time.Millisecond)
	})
	t.Run("restart", func(t *testing.T) {
		l := newLab(t, 3)
		n1, n2 := l.Nodes[0], l.Nodes[1]
		startThree(t, l, true)
		p := probe(t, l)
		waitReply(t, p)
		waitNeigh(t, l, n1)
		if _, err := n1.Stop(); err != nil {
			t.Fatal(err)
		}
		waitHolders(t, l, "n2 alone holds the VIP", lab.Only(n2))
		waitNeigh(t, l, n2)
		startVipd(t, l, n1, instance(150, true))
		waitHolders(t, l, "n1 alone holds the VIP again", lab.Only(n1))
		waitNeigh(t, l, n1)
		waitReply(t, p)
		holdSteady(t, l, n1, 500*time.Millisecond)
	})
}

func TestNoPreempt(t *testing.T) {
	l := newLab(t, 3)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	startThree(t, l, false)
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n2 alone holds the VIP", lab.Only(n2))
	startVipd(t, l, n1, instance(150, false))
	// Long enough for n1 to have preempted several times over if it were
	// going to (its Master_Down_Interval is 341ms).
	holdSteady(t, l, n2, 1500*time.Millisecond)
	changes, err := n1.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || changes[len(changes)-1].To != "backup" {
		t.Errorf("n1's last state change %+v, want to backup", changes)
	}
}

// TestEqualPriorityHigherAddressWins makes n2 and n3 (both priority 100) each
// master of its own piece of a VRRP split brain, then heals it: RFC 9568
// §6.4.3 has the master with the lower primary address (192.0.2.12) yield.
func TestEqualPriorityHigherAddressWins(t *testing.T) {
	l := newLab(t, 3)
	n2, n3 := l.Nodes[1], l.Nodes[2]
	if err := l.BlockVRRP(); err != nil {
		t.Fatal(err)
	}
	startVipd(t, l, n2, instance(100, true))
	startVipd(t, l, n3, instance(100, true))
	waitHolders(t, l, "n2 and n3 both hold the VIP while VRRP is blocked", func(h []*lab.Node) bool {
		return len(h) == 2 && slices.Contains(h, n2) && slices.Contains(h, n3)
	})
	if err := l.UnblockVRRP(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n3 alone holds the VIP", lab.Only(n3))
	holdSteady(t, l, n3, time.Second)
}

func TestStaleVIPRemovedAtStart(t *testing.T) {
	l := newLab(t, 3)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	startVipd(t, l, n1, instance(150, true))
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	// As if vipd had crashed on n2 while it was master.
	if _, err := n2.IP("addr", "add", lab.VIP.String(), "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if ok, err := n2.Has(lab.VIP); err != nil || !ok {
		t.Fatalf("n2 does not have the hand-added VIP (%v)", err)
	}
	startVipd(t, l, n2, instance(100, true))
	waitHolders(t, l, "n2's stale VIP is removed", lab.Only(n1))
	holdSteady(t, l, n1, 500*time.Millisecond)
}

// TestPausedBackupStaysQuiet freezes a backup for longer than its
// Master_Down_Interval (a paused VM, a starved CPU) and thaws it, several
// times. The master's adverts wait on the backup's socket, older than its
// expired timer: it must not become master, not even for a moment, and must
// not pull the client's traffic towards itself. keepalived passes this.
func TestPausedBackupStaysQuiet(t *testing.T) {
	l := newLab(t, 3)
	n1, n3 := l.Nodes[0], l.Nodes[2]
	startThree(t, l, true)
	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)
	time.Sleep(3 * interval)

	p.ResetOutage()
	// Several times: which of the expired timer and the queued adverts the
	// thawed daemon sees first may be down to chance.
	for range 6 {
		if err := n3.Pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // n3's Master_Down_Interval is 380ms
		if err := n3.Resume(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * interval)
	}
	time.Sleep(time.Second)
	holdSteady(t, l, n1, 200*time.Millisecond)
	changes, err := n3.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.To == "master" {
			t.Errorf("n3 became master at %s (%s) with n1's adverts waiting on its socket", c.Time.Format(time.StampMicro), c.Reason)
		}
	}
	if mac, err := l.Client.NeighMAC(lab.VIP.Addr()); err != nil || mac.String() != n1.MAC().String() {
		t.Errorf("client's neighbour entry for the VIP: %v %v, want n1's %s", mac, err, n1.MAC())
	}
	if s := p.Stats(); s.Outage > time.Second {
		ended := "still going on"
		if !s.OutageEnd.IsZero() {
			ended = "ended " + s.OutageEnd.Format(time.StampMicro)
		}
		t.Errorf("the client lost the VIP for %v from %s (%s)", s.Outage.Round(time.Millisecond), s.OutageStart.Format(time.StampMicro), ended)
	}
}
