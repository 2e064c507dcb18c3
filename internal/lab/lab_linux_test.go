package lab

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/net/ipv4"
)

func newLab(t *testing.T, nodes int) *Lab {
	t.Helper()
	testenv.Privileged(t)
	l, err := New(Config{Nodes: nodes, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", l.LogTails(30))
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func TestLabLifecycle(t *testing.T) {
	testenv.Privileged(t)
	l, err := New(Config{Nodes: 2})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	names := []string{l.Switch, l.Nodes[0].NS, l.Nodes[1].NS, l.Client.NS}
	for _, ns := range names {
		if !netnsExists(ns) {
			t.Errorf("netns %s missing", ns)
		}
		if len(ns) > 15 || !strings.HasPrefix(ns, l.Prefix) {
			t.Errorf("netns name %q: want a short name under prefix %q", ns, l.Prefix)
		}
	}
	dir := l.Dir
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, ns := range names {
		if netnsExists(ns) {
			t.Errorf("netns %s left after Close", ns)
			_, _ = run("ip", "netns", "del", ns)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("lab dir %s left after Close: %v", dir, err)
	}
}

func TestReachabilityHoldersAndCable(t *testing.T) {
	l := newLab(t, 3)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if got := n1.Addr.String(); got != "192.0.2.11/24" {
		t.Errorf("n1 address %s", got)
	}
	if got := n1.MAC().String(); got != "02:00:c0:00:02:0b" {
		t.Errorf("n1 MAC %s", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := l.Probe(ctx, n1.Addr.Addr(), 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	mac, err := l.Client.NeighMAC(n1.Addr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if l.NodeByMAC(mac) != n1 {
		t.Errorf("client's neighbour entry for n1: %s, want %s", mac, n1.MAC())
	}

	// A pulled cable stops the replies; plugging it back in brings them back.
	time.Sleep(50 * time.Millisecond)
	p.ResetOutage()
	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s := p.Stats(); s.Outage < 250*time.Millisecond || !s.OutageEnd.IsZero() {
		t.Errorf("300ms into a cable pull: outage %v, end %v; want an outage still going on", s.Outage, s.OutageEnd)
	}
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	s := p.Stop()
	if s.Outage < 250*time.Millisecond || s.Outage > 5*time.Second {
		t.Errorf("outage %v around a 300ms cable pull; stats %+v", s.Outage, s)
	}
	if s.Received < 2 || s.Sent < s.Received {
		t.Errorf("stats %+v", s)
	}

	if h, err := l.Holders(VIP); err != nil || len(h) != 0 {
		t.Fatalf("Holders before any VIP = %s, %v", Names(h), err)
	}
	if _, err := n2.IP("addr", "add", VIP.String(), "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	h, err := l.WaitHolders(ctx, VIP, Only(n2))
	if err != nil {
		t.Fatal(err)
	}
	if Names(h) != "n2" {
		t.Errorf("Holders = %s, want n2", Names(h))
	}
}

// TestMulticastFloods checks that VRRP adverts (IP protocol 112 to
// 224.0.0.18) from one node reach every other port of the bridge, with
// multicast snooping off as the lab sets it, and on as well: 224.0.0.0/24 is
// link-local and always flooded. BlockVRRP stops them, UnblockVRRP lets them
// through again.
func TestMulticastFloods(t *testing.T) {
	l := newLab(t, 3)
	receivers := append(append([]*Node(nil), l.Nodes[1:]...), l.Client)
	for _, tt := range []struct {
		name string
		prep func() error
		want bool
	}{
		{"snooping off", func() error { return nil }, true},
		{"snooping on", func() error {
			_, err := run("ip", "-n", l.Switch, "link", "set", "br0", "type", "bridge", "mcast_snooping", "1")
			return err
		}, true},
		{"blocked", l.BlockVRRP, false},
		{"unblocked", l.UnblockVRRP, true},
	} {
		if err := tt.prep(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := advertReach(t, l.Nodes[0], receivers, tt.name)
		for i, n := range receivers {
			if got[i] != tt.want {
				t.Errorf("%s: %s received n1's advert: %t, want %t", tt.name, n.Name, got[i], tt.want)
			}
		}
	}
}

// advertReach sends IP protocol 112 packets to 224.0.0.18 from one node and
// reports which receivers got one.
func advertReach(t *testing.T, from *Node, receivers []*Node, tag string) []bool {
	t.Helper()
	group := &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}
	var conns []*ipv4.PacketConn
	for _, n := range receivers {
		var c net.PacketConn
		err := inNS(n.NS, func() error {
			var err error
			if c, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
				return err
			}
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			return ipv4.NewPacketConn(c).JoinGroup(ifi, group)
		})
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		defer c.Close()
		conns = append(conns, ipv4.NewPacketConn(c))
	}
	var sender net.PacketConn
	err := inNS(from.NS, func() error {
		var err error
		if sender, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		pc := ipv4.NewPacketConn(sender)
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		return pc.SetMulticastTTL(255)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	payload := []byte("vipd-lab multicast " + tag)
	// A few copies: the first may race the receivers' joins on a busy
	// machine.
	for i := 0; i < 5; i++ {
		if _, err := sender.WriteTo(payload, group); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := make([]bool, len(conns))
	deadline := time.Now().Add(time.Second)
	for i, c := range conns {
		buf := make([]byte, 1500)
		for !got[i] && time.Now().Before(deadline) {
			_ = c.SetReadDeadline(deadline)
			n, _, src, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			got[i] = src.String() == from.Addr.Addr().String() && string(buf[:n]) == string(payload)
		}
	}
	return got
}

func TestKeepalivedConfigAccepted(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed")
	}
	f := filepath.Join(t.TempDir(), "k.conf")
	conf := KeepalivedConfig("n1", Instance{
		VRID: 51, Priority: 150, AdvertInterval: 10 * time.Millisecond, Preempt: true,
		PreemptDelay: time.Second, VIPs: []netip.Prefix{VIP},
	})
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("keepalived", "--config-test", "--use-file", f).CombinedOutput(); err != nil {
		t.Errorf("keepalived --config-test: %v\n%s\n%s", err, out, conf)
	}
}

// TestKeepalivedInLab runs the baseline daemon the benchmark compares vipd
// with: the highest priority takes the VIP, and a stopped master hands it to
// the next one.
func TestKeepalivedInLab(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed")
	}
	l := newLab(t, 2)
	for i, n := range l.Nodes {
		conf := KeepalivedConfig(n.Name, Instance{
			VRID: 51, Priority: 150 - 50*i, AdvertInterval: 100 * time.Millisecond, Preempt: true,
			VIPs: []netip.Prefix{VIP},
		})
		if err := n.StartKeepalived(conf); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := l.WaitHolders(ctx, VIP, Only(l.Nodes[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitAdvert(ctx, l.Nodes[0]); err != nil {
		t.Errorf("the client hears no advert from the master: %v", err)
	}
	took, err := l.Nodes[0].Stop()
	if err != nil {
		t.Errorf("stop keepalived: %v", err)
	}
	t.Logf("keepalived exited %v after SIGTERM", took)
	if _, err := l.WaitHolders(ctx, VIP, Only(l.Nodes[1])); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Nodes[0].Stop(); err != ErrNotRunning {
		t.Errorf("Stop of a stopped daemon: %v, want ErrNotRunning", err)
	}
}
