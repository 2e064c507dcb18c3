package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
)

// TestReadUsage reads the test's own process around 300 ms of CPU spent
// spinning, as getrusage counts it: CPUTime agrees within a few ticks. The
// spin is measured in CPU time, not wall time, so that a busy machine
// (other tests, other jobs on the two cores) cannot starve it into a
// failure.
func TestReadUsage(t *testing.T) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	a, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	c0 := cpu()
	for start := time.Now(); cpu()-c0 < 300*time.Millisecond && time.Since(start) < 20*time.Second; {
	}
	b, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	spent := cpu() - c0
	if got := CPUTime(a, b); got < spent-50*time.Millisecond || got > spent+50*time.Millisecond {
		t.Errorf("CPUTime over %v of spinning = %v, getrusage says %v", b.At.Sub(a.At), got, spent)
	}
	if b.RSS == 0 || b.Anon == 0 || b.Anon > b.RSS {
		t.Errorf("RSS %d, RssAnon %d: want 0 < RssAnon <= RSS", b.RSS, b.Anon)
	}
}

// TestSegments builds a lab with three segments: every router node has eth1
// and eth2 at SegmentAddr on bridges of their own, and reaches the others
// there.
func TestSegments(t *testing.T) {
	testenv.Privileged(t)
	if _, err := New(Config{Nodes: 2, Segments: MaxSegments + 1}); err == nil {
		t.Errorf("New with %d segments: no error", MaxSegments+1)
	}
	l, err := New(Config{Nodes: 2, Dir: t.TempDir(), Segments: 3})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer l.Close()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if got, want := n2.Ifaces(), []string{"eth0", "eth1", "eth2"}; !slices.Equal(got, want) {
		t.Errorf("Ifaces = %q, want %q", got, want)
	}
	if got := l.Client.Ifaces(); !slices.Equal(got, []string{"eth0"}) {
		t.Errorf("the client's Ifaces = %q, want eth0 alone", got)
	}
	for k := 1; k < 3; k++ {
		iface := fmt.Sprintf("eth%d", k)
		addrs, err := n2.Addrs(iface)
		if err != nil {
			t.Fatal(err)
		}
		want := SegmentAddr(k, 2)
		if !containsPrefix(addrs, want) {
			t.Errorf("n2 %s has %v, want %s", iface, addrs, want)
		}
		// The only route to n2's address is the segment's own.
		var ln net.Listener
		if err := InNS(n2.NS, func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(want.Addr(), 0).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := n1.Dial(ctx, "tcp", ln.Addr().String())
		cancel()
		if err != nil {
			t.Errorf("n1 connects to n2 at %s over %s: %v", ln.Addr(), iface, err)
		} else {
			c.Close()
		}
		ln.Close()
	}
	if _, err := n1.Addrs("eth3"); err == nil {
		t.Error("n1 has an eth3 in a lab of 3 segments")
	}
	if got := SegmentAddr(0, 1); got != NodeAddr(1) {
		t.Errorf("SegmentAddr(0, 1) = %s, want NodeAddr(1) %s", got, NodeAddr(1))
	}
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// TestKeepalivedProcessesAndStats runs keepalived with two instances alone on
// a node: Processes finds its parent and VRRP child, ReadUsage their memory,
// and KeepalivedStats their adverts.
func TestKeepalivedProcessesAndStats(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed")
	}
	l := newLab(t, 1)
	n := l.Nodes[0]
	var ins []Instance
	for _, vrid := range []int{1, 2} {
		ins = append(ins, Instance{Name: "v" + string(rune('0'+vrid)), VRID: vrid, Priority: 150,
			AdvertInterval: 100 * time.Millisecond, Preempt: true,
			VIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(vrid)}), 32)}})
	}
	if err := n.StartKeepalived(KeepalivedConfig(n.Name, ins...)); err != nil {
		t.Fatal(err)
	}
	ps, err := n.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Role != "parent" || ps[1].Role != "vrrp" || ps[1].PID == ps[0].PID {
		t.Fatalf("Processes = %+v, want keepalived's parent and VRRP child", ps)
	}
	for _, p := range ps {
		u, err := ReadUsage(p.PID)
		if err != nil {
			t.Fatal(err)
		}
		if u.RSS == 0 || u.Anon == 0 || u.Anon > u.RSS {
			t.Errorf("%s: RSS %d, RssAnon %d", p.Role, u.RSS, u.Anon)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := l.WaitHolders(ctx, netip.MustParsePrefix("198.18.0.2/32"), Only(n)); err != nil {
		t.Fatal(err)
	}
	if sockets, drops, err := RawSockets(ps[1].PID, 112); err != nil || sockets == 0 || drops != 0 {
		t.Errorf("RawSockets = %d sockets, %d drops, %v; want keepalived's, none dropped", sockets, drops, err)
	}
	time.Sleep(500 * time.Millisecond)
	stats, at, err := n.KeepalivedStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(at) > 10*time.Second {
		t.Errorf("asked at %v", at)
	}
	if len(stats) != 2 {
		t.Fatalf("KeepalivedStats = %+v, want 2 instances", stats)
	}
	for i, s := range stats {
		if s.Instance != ins[i].Name || s.AdvertsSent < 3 || s.BecameMaster != 1 {
			t.Errorf("instance %d: %+v, want %s, master once, adverts sent", i, s, ins[i].Name)
		}
	}
	if _, err := os.Stat(keepalivedStatsFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", keepalivedStatsFile, err)
	}
	if _, err := n.Stop(); err != nil {
		t.Error(err)
	}
	if _, err := n.Processes(); err == nil || !strings.Contains(err.Error(), "no daemon") {
		t.Errorf("Processes of a stopped daemon: %v", err)
	}
}

func TestParseNetRaw(t *testing.T) {
	const raw = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   7: 00000000:0070 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81633 2 0000000000000000 12
  12: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81634 2 0000000000000000 99
  13: 0B0200C0:0070 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81635 2 0000000000000000 3
`
	sockets, drops, err := parseNetRaw([]byte(raw), 112)
	if err != nil || sockets != 2 || drops != 15 {
		t.Errorf("parseNetRaw = %d sockets, %d drops, %v; want 2, 15", sockets, drops, err)
	}
	if s, d, err := parseNetRaw([]byte("  sl  local_address rem_address\n"), 112); err != nil || s != 0 || d != 0 {
		t.Errorf("parseNetRaw of no socket = %d, %d, %v", s, d, err)
	}
}
