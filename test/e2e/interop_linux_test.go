package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// The daemons a rig runs in its nodes.
const (
	vipdKind       = "vipd"
	keepalivedKind = "keepalived"
)

// rigMetrics is where vipd serves metrics inside each node's namespace when
// a rig asks for them.
const rigMetrics = "127.0.0.1:9405"

// rig is a lab for the tests of one VIP, IPv4 or IPv6, with vipd or
// keepalived in each node.
type rig struct {
	t   *testing.T
	l   *lab.Lab
	vip netip.Prefix
	// metrics has every vipd started serve metrics at rigMetrics.
	metrics bool
	// diag, if set, adds to the message of a failed wait what may explain
	// it.
	diag func() string
}

// fatalf fails the test with the rig's diagnosis appended.
func (r *rig) fatalf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if r.diag != nil {
		msg += "\n" + r.diag()
	}
	r.t.Fatal(msg)
}

// newRig builds a lab of n nodes for vip (an IPv6 one gets an IPv6 lab),
// removed when t ends after the nodes' logs are printed if t failed.
func newRig(t *testing.T, n int, vip netip.Prefix) *rig {
	t.Helper()
	return newRigOf(t, vip, lab.Config{Nodes: n, IPv6: vip.Addr().Is6()})
}

// newRigOf is newRig for a lab of cfg (its Dir is the test's).
func newRigOf(t *testing.T, vip netip.Prefix, cfg lab.Config) *rig {
	t.Helper()
	testenv.Privileged(t)
	cfg.Dir = t.TempDir()
	l, err := lab.New(cfg)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab %s, the nodes' logs end with:\n%s", l.Prefix, l.LogTails(40))
			if k := os.Getenv("KEEP"); k != "" {
				_ = exec.Command("cp", "-r", l.Dir, filepath.Join(k, strings.ReplaceAll(t.Name(), "/", "_"))).Run()
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return &rig{t: t, l: l, vip: vip}
}

// needKeepalived skips t without keepalived, or fails it in CI, where
// make test installs it.
func needKeepalived(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("keepalived not installed (make deps installs it): %v", err)
		}
		t.Skip("keepalived not installed")
	}
}

// inst is the rig's instance: the shared VRID and interval, preemption on,
// the rig's VIP.
func (r *rig) inst(priority int) lab.Instance {
	return lab.Instance{
		VRID:           vrid,
		Priority:       priority,
		AdvertInterval: interval,
		Preempt:        true,
		VIPs:           []netip.Prefix{r.vip},
	}
}

// start runs daemon kind in n with the instances.
func (r *rig) start(n *lab.Node, kind string, ins ...lab.Instance) {
	r.t.Helper()
	var err error
	switch kind {
	case vipdKind:
		f := lab.VipdFile{ControlSocket: filepath.Join(r.l.Dir, n.Name+".sock"), Instances: ins}
		if r.metrics {
			f.MetricsListen = rigMetrics
		}
		err = n.StartVipd(vipdBin, f.YAML())
	case keepalivedKind:
		err = n.StartKeepalived(lab.KeepalivedConfig(n.Name, ins...))
	default:
		err = fmt.Errorf("unknown daemon %q", kind)
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

// holders returns the nodes that hold the rig's VIP.
func (r *rig) holders() []*lab.Node {
	r.t.Helper()
	h, err := r.l.Holders(r.vip)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// waitHolders waits until ok accepts the holders of the rig's VIP.
func (r *rig) waitHolders(what string, ok func([]*lab.Node) bool) []*lab.Node {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	h, err := r.l.WaitHolders(ctx, r.vip, ok)
	if err != nil {
		r.fatalf("waiting until %s: %v", what, err)
	}
	return h
}

// holdSteady samples the holders every 20ms for d and fails at the first
// sample where ok rejects them.
func (r *rig) holdSteady(what string, d time.Duration, ok func([]*lab.Node) bool) {
	r.t.Helper()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		if h := r.holders(); !ok(h) {
			r.fatalf("sample %d (%v before the end): holders %s; want %s", i, time.Until(end).Round(time.Millisecond), lab.Names(h), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe starts pinging the rig's VIP from the client every 2ms until t
// ends.
func (r *rig) probe() *lab.Prober {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p, err := r.l.Probe(ctx, r.vip.Addr(), 2*time.Millisecond)
	if err != nil {
		cancel()
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		s := p.Stop()
		cancel()
		r.t.Logf("prober: sent %d, received %d, longest outage %v", s.Sent, s.Received, s.Outage.Round(100*time.Microsecond))
	})
	return p
}

// waitReply waits until the client gets an echo reply from the VIP.
func (r *rig) waitReply(p *lab.Prober) {
	r.t.Helper()
	waitReply(r.t, p)
}

// waitNeigh waits until the client's neighbour entry (ARP or NDP) for the
// VIP is want's MAC address.
func (r *rig) waitNeigh(want *lab.Node) {
	r.t.Helper()
	waitNeighOf(r.t, r.l, r.vip.Addr(), want)
}

// source is the address n's multicast adverts come from: its IPv4 address,
// or its link-local IPv6 one.
func (r *rig) source(n *lab.Node) string {
	r.t.Helper()
	if r.vip.Addr().Is4() {
		return n.Addr.Addr().String()
	}
	ll, err := n.LinkLocal()
	if err != nil {
		r.t.Fatal(err)
	}
	return ll.String()
}

// dropsFrom returns vipd's drop records in n's log for packets from src.
func dropsFrom(t *testing.T, n *lab.Node, src string) []lab.Drop {
	t.Helper()
	drops, err := n.Drops()
	if err != nil {
		t.Fatal(err)
	}
	var out []lab.Drop
	for _, d := range drops {
		if d.From == src {
			out = append(out, d)
		}
	}
	return out
}

// reasons counts drops by reason.
func reasons(drops []lab.Drop) map[string]int {
	m := map[string]int{}
	for _, d := range drops {
		m[d.Reason]++
	}
	return m
}

// onlyAmong is a holders condition: n is the only holder among members
// (others may hold the VIP too).
func onlyAmong(n *lab.Node, members ...*lab.Node) func([]*lab.Node) bool {
	return func(h []*lab.Node) bool {
		var in []*lab.Node
		for _, x := range h {
			if slices.Contains(members, x) {
				in = append(in, x)
			}
		}
		return len(in) == 1 && in[0] == n
	}
}

// An interopCase is one flavour of VRRP that keepalived and vipd must both
// speak.
type interopCase struct {
	name     string
	vip      netip.Prefix
	version  int
	pass     string
	interval time.Duration
	// unicast runs with unicast peers and sources, multicast VRRP
	// dropped by the switch.
	unicast bool
	// slow cases run in parallel with each other and skip the restart
	// step (preemption is already shown after the cable cut).
	slow bool
}

var interopCases = []interopCase{
	{name: "v3-ipv4", vip: lab.VIP, version: 3, interval: interval},
	{name: "v3-ipv6", vip: lab.VIP6, version: 3, interval: interval},
	{name: "v3-ipv4-unicast", vip: lab.VIP, version: 3, interval: interval, unicast: true},
	{name: "v3-ipv6-unicast", vip: lab.VIP6, version: 3, interval: interval, unicast: true},
	// VRRPv2 counts whole seconds: every step takes seconds.
	{name: "v2-password", vip: lab.VIP, version: 2, pass: "s3cret", interval: time.Second, slow: true},
}

// TestInterop runs mixed clusters of keepalived and vipd, in both orders,
// for VRRPv3 over IPv4 and IPv6 and for VRRPv2 with a password: the higher
// priority wins whichever daemon it runs; the other takes over on a cable
// cut and on a graceful stop; the higher one preempts when it comes back;
// and neither daemon drops or complains about the other's adverts.
func TestInterop(t *testing.T) {
	testenv.Privileged(t)
	needKeepalived(t)
	for _, c := range interopCases {
		for _, order := range [][2]string{{keepalivedKind, vipdKind}, {vipdKind, keepalivedKind}} {
			t.Run(fmt.Sprintf("%s/%s-master/%s-backup", c.name, order[0], order[1]), func(t *testing.T) {
				if c.slow {
					t.Parallel()
				}
				testInterop(t, c, order[0], order[1])
			})
		}
	}
}

func testInterop(t *testing.T, c interopCase, masterKind, backupKind string) {
	r := newRig(t, 2, c.vip)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	if c.unicast {
		if err := r.l.BlockMulticastVRRP(); err != nil {
			t.Fatal(err)
		}
	}
	in := func(n *lab.Node, priority int) lab.Instance {
		in := r.inst(priority)
		if c.unicast {
			// keepalived takes the other node's address as a peer
			// only with an explicit source of the same kind.
			in = r.unicastInst(n, priority, r.l.Nodes, true)
		}
		in.AdvertInterval = c.interval
		if c.version == 2 {
			in.Version, in.AuthPass = 2, c.pass
		}
		return in
	}
	kindOf := map[*lab.Node]string{n1: masterKind, n2: backupKind}
	vipdNode, kaNode := n1, n2
	if masterKind == keepalivedKind {
		vipdNode, kaNode = n2, n1
	}
	// Where keepalived's adverts come from, as vipd logs it.
	kaSource := func() string {
		if c.unicast {
			return r.addrOf(kaNode).String()
		}
		return r.source(kaNode)
	}
	r.diag = func() string {
		return fmt.Sprintf("vipd on %s dropped keepalived's adverts: %v", vipdNode.Name, reasons(dropsFrom(t, vipdNode, kaSource())))
	}
	steady := min(3*c.interval, time.Second)
	// The backup first: priority, not start order, decides.
	r.start(n2, backupKind, in(n2, 100))
	r.start(n1, masterKind, in(n1, 150))
	r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
	p := r.probe()
	r.waitReply(p)
	r.waitNeigh(n1)
	r.holdSteady("n1 alone", steady, lab.Only(n1))

	phase := func(format string, args ...any) {
		s := p.Stats()
		t.Logf("  (client outage in the last step: %v)", s.Outage.Round(time.Millisecond))
		p.ResetOutage()
		t.Logf(format, args...)
	}
	phase("crash: %s on n1 loses its cable", masterKind)
	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n2 takes the VIP", includes(n2))
	r.waitNeigh(n2)
	r.waitReply(p)

	phase("preemption: %s on n1 is back and takes over from %s", masterKind, backupKind)
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n1 alone holds the VIP again", lab.Only(n1))
	r.waitNeigh(n1)
	r.waitReply(p)
	r.holdSteady("n1 alone", steady, lab.Only(n1))

	phase("graceful stop of %s on n1", masterKind)
	stopped := time.Now()
	if _, err := n1.Stop(); err != nil {
		t.Errorf("stop %s on n1: %v", masterKind, err)
	}
	r.waitHolders("n2 takes the VIP", includes(n2))
	took := time.Since(stopped)
	r.waitReply(p)
	outage := p.Stats().Outage
	mdi := lab.MasterDownInterval(100, c.interval)
	t.Logf("n2 (%s) held the VIP %v after n1's SIGTERM; the client lost it for %v (Skew_Time %v, Master_Down_Interval %v)",
		backupKind, took.Round(time.Millisecond), outage.Round(time.Millisecond), lab.SkewTime(100, c.interval), mdi)
	// Generous, yet well under Master_Down_Interval: the priority-0
	// advert must have cut the wait short. (Not from SIGTERM: keepalived
	// takes about a second to send its priority-0 advert.)
	if bound := min(2*c.interval+100*time.Millisecond, mdi); outage >= bound {
		t.Errorf("the client lost the VIP for %v when %s on n1 stopped, want < %v: as if %s on n2 had not heard the priority-0 advert",
			outage.Round(time.Millisecond), masterKind, bound, backupKind)
	}
	r.waitHolders("n2 alone holds the VIP", lab.Only(n2))
	r.waitNeigh(n2)
	r.waitReply(p)

	if !c.slow {
		phase("preemption after a restart of %s on n1", masterKind)
		r.start(n1, masterKind, in(n1, 150))
		r.waitHolders("n1 alone holds the VIP again", lab.Only(n1))
		r.waitNeigh(n1)
		r.waitReply(p)
		r.holdSteady("n1 alone", steady, lab.Only(n1))
	}

	phase("stopping both")
	for _, n := range r.l.Nodes {
		if _, err := n.Stop(); err != nil && !errors.Is(err, lab.ErrNotRunning) {
			t.Errorf("stop %s on %s: %v", kindOf[n], n.Name, err)
		}
	}
	complaints, err := kaNode.KeepalivedComplaints()
	if err != nil {
		t.Fatal(err)
	}
	if len(complaints) > 0 {
		t.Errorf("keepalived on %s complained:\n%s", kaNode.Name, strings.Join(complaints, "\n"))
	}
	if d := dropsFrom(t, vipdNode, kaSource()); len(d) > 0 {
		t.Errorf("vipd on %s dropped %d of keepalived's adverts: %v", vipdNode.Name, len(d), reasons(d))
	}
}
