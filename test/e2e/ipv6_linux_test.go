package e2e

import (
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// startThree6 starts vipd on three nodes of an IPv6 rig with priorities
// 150, 100 and 50, the lowest first, and waits until n1 alone holds the VIP
// and the client reaches it through n1.
func startThree6(r *rig) *lab.Prober {
	r.t.Helper()
	for i := 2; i >= 0; i-- {
		r.start(r.l.Nodes[i], vipdKind, r.inst(150-50*i))
	}
	n1 := r.l.Nodes[0]
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	return p
}

// TestIPv6CableCut: the IPv6 Master's cable is pulled; the next takes
// over, and its unsolicited neighbour advertisement moves the client's
// neighbour entry. When the cable is back, n1 preempts and the entry moves
// back.
func TestIPv6CableCut(t *testing.T) {
	r := newRig(t, 3, lab.VIP6)
	n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
	p := startThree6(r)

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n2 takes the VIP", includes(n2))
	r.waitNeigh(n2)
	r.waitReply(p)
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok, err := n3.Has(r.vip); err != nil || ok {
			t.Fatalf("n3 holds the VIP (%v) while n2 is master", err)
		}
	}

	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n1 alone holds the VIP again", lab.Only(n1))
	r.waitNeigh(n1)
	r.waitReply(p)
	r.holdSteady("n1 alone", 500*time.Millisecond, lab.Only(n1))
}

// TestIPv6GracefulStop: a stopped IPv6 Master hands over after Skew_Time,
// not Master_Down_Interval, and the client's neighbour entry follows.
func TestIPv6GracefulStop(t *testing.T) {
	r := newRig(t, 3, lab.VIP6)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	p := startThree6(r)
	time.Sleep(3 * interval) // the backups have heard n1's adverts

	p.ResetOutage()
	exit, err := n1.Stop()
	if err != nil {
		t.Errorf("vipd on n1 after SIGTERM: %v", err)
	}
	if exit > time.Second {
		t.Errorf("vipd on n1 exited %v after SIGTERM, want within 1s", exit)
	}
	r.waitHolders("n2 alone holds the VIP", lab.Only(n2))
	r.waitNeigh(n2)
	r.waitReply(p)
	s := p.Stats()
	mdi := lab.MasterDownInterval(100, interval)
	t.Logf("vipd on n1 exited %v after SIGTERM; the client lost the VIP for %v (Skew_Time %v, Master_Down_Interval %v)",
		exit.Round(time.Millisecond), s.Outage.Round(time.Millisecond), lab.SkewTime(100, interval), mdi)
	if bound := min(2*interval+100*time.Millisecond, mdi); s.Outage >= bound {
		t.Errorf("the client lost the VIP for %v, want < %v: the priority-0 advert should cut the wait to Skew_Time", s.Outage.Round(time.Millisecond), bound)
	}
}

// TestIPv4AndIPv6SameVRID runs one IPv4 and one IPv6 instance with the same
// VRID on the same nodes, with opposite priorities: each family elects its
// own Master, and a handover in one leaves the other alone (RFC 9568 §7.3:
// the families are separate virtual routers).
func TestIPv4AndIPv6SameVRID(t *testing.T) {
	r6 := newRig(t, 2, lab.VIP6)
	// The same lab, seen through its IPv4 VIP.
	r4 := &rig{t: t, l: r6.l, vip: lab.VIP}
	n1, n2 := r6.l.Nodes[0], r6.l.Nodes[1]
	both := func(prio4, prio6 int) []lab.Instance {
		v4, v6 := r4.inst(prio4), r6.inst(prio6)
		v4.Name, v6.Name = "api4", "api6"
		return []lab.Instance{v4, v6}
	}
	r6.start(n2, vipdKind, both(100, 150)...)
	r6.start(n1, vipdKind, both(150, 100)...)
	r4.waitHolders("n1 alone holds the IPv4 VIP", lab.Only(n1))
	r6.waitHolders("n2 alone holds the IPv6 VIP", lab.Only(n2))
	p4, p6 := r4.probe(), r6.probe()
	r4.waitReply(p4)
	r6.waitReply(p6)
	r4.waitNeigh(n1)
	r6.waitNeigh(n2)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		r4.holdSteady("n1 alone", 100*time.Millisecond, lab.Only(n1))
		r6.holdSteady("n2 alone", 100*time.Millisecond, lab.Only(n2))
	}

	// n2 stops: the IPv6 VIP moves to n1, the IPv4 one does not even
	// flicker.
	p4.ResetOutage()
	if _, err := n2.Stop(); err != nil {
		t.Errorf("vipd on n2 after SIGTERM: %v", err)
	}
	r6.waitHolders("n1 alone holds the IPv6 VIP", lab.Only(n1))
	r6.waitNeigh(n1)
	r6.waitReply(p6)
	r4.holdSteady("n1 alone", 500*time.Millisecond, lab.Only(n1))
	if s := p4.Stats(); s.Outage > 100*time.Millisecond {
		t.Errorf("the client lost the IPv4 VIP for %v while only the IPv6 one moved", s.Outage.Round(time.Millisecond))
	}
	changes, err := n1.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Instance == "api4" && c.From == "master" {
			t.Errorf("n1's IPv4 instance left Master: %+v", c)
		}
	}
	// Each family's adverts reached only its own instance.
	for _, n := range r6.l.Nodes {
		for _, d := range mustDrops(t, n) {
			if d.Reason != "own_address" {
				t.Errorf("%s dropped a packet from %s: %s", n.Name, d.From, d.Reason)
			}
		}
	}
}

func mustDrops(t *testing.T, n *lab.Node) []lab.Drop {
	t.Helper()
	d, err := n.Drops()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestIPv6TentativeLinkLocal starts vipd at once in a lab whose link-local
// addresses are still under duplicate address detection, as at boot: vipd
// waits for its source address instead of failing, the higher priority
// wins, and the other never becomes Master.
func TestIPv6TentativeLinkLocal(t *testing.T) {
	testenv.Privileged(t)
	l, err := lab.New(lab.Config{Nodes: 2, Dir: t.TempDir(), IPv6: true, DAD: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab %s, the nodes' logs end with:\n%s", l.Prefix, l.LogTails(40))
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	r := &rig{t: t, l: l, vip: lab.VIP6}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if _, err := n1.LinkLocal(); err == nil {
		t.Log("n1's link-local address is already usable; the test proves less")
	}
	r.start(n2, vipdKind, r.inst(100))
	r.start(n1, vipdKind, r.inst(150))
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	r.holdSteady("n1 alone", 500*time.Millisecond, lab.Only(n1))
	changes, err := n2.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.To == "master" {
			t.Errorf("n2 became Master at %s (%s) while n1 was starting", c.Time.Format(time.StampMicro), c.Reason)
		}
	}
}
