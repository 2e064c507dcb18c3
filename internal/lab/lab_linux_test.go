package lab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
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
// through again; so do a table of SwitchRules and DeleteSwitchTable.
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
		{"a table of the caller's", func() error {
			return l.SwitchRules("test table", `table bridge vipdtest {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ether type ip ip protocol 112 drop
	}
}
`)
		}, false},
		{"that table deleted", func() error { return l.DeleteSwitchTable("vipdtest") }, true},
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
		err := InNS(n.NS, func() error {
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
	err := InNS(from.NS, func() error {
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

func newLab6(t *testing.T, nodes int) *Lab {
	t.Helper()
	testenv.Privileged(t)
	l, err := New(Config{Nodes: nodes, Dir: t.TempDir(), IPv6: true})
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

// TestIPv6Lab checks an IPv6 lab: addresses, link-local addresses usable at
// once, the prober over ICMPv6, the client's NDP entry, Holders for an IPv6
// VIP; and that an IPv4 lab has no IPv6 at all.
func TestIPv6Lab(t *testing.T) {
	l := newLab6(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if got := n1.Addr6.String(); got != "2001:db8::11/64" {
		t.Errorf("n1 Addr6 %s", got)
	}
	if got := l.Client.Addr6.String(); got != "2001:db8::100/64" {
		t.Errorf("client Addr6 %s", got)
	}
	for _, n := range l.all() {
		ll, err := n.LinkLocal()
		if err != nil || !ll.IsLinkLocalUnicast() {
			t.Errorf("%s: link-local %v, %v", n.Name, ll, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := l.Probe(ctx, n1.Addr6.Addr(), 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	mac, err := l.Client.NeighMAC(n1.Addr6.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if l.NodeByMAC(mac) != n1 {
		t.Errorf("client's neighbour entry for n1's IPv6 address: %s, want %s", mac, n1.MAC())
	}

	// A VIP added by hand, without DAD as the daemons add it.
	if _, err := n2.IP("addr", "add", VIP6.String(), "dev", "eth0", "nodad"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitHolders(ctx, VIP6, Only(n2)); err != nil {
		t.Fatal(err)
	}
	pv, err := l.Probe(ctx, VIP6.Addr(), 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pv.Stop()
	if err := pv.WaitReply(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The first request or two may be refused while neighbour discovery
	// for the target is still under way (seen in CI once).
	if s := p.Stop(); s.Received < 1 || s.SendErrors > 2 {
		t.Errorf("IPv6 prober stats %+v", s)
	}

	l4 := newLab(t, 1)
	if _, err := l4.Probe(ctx, VIP6.Addr(), time.Millisecond); err == nil {
		t.Error("Probe of an IPv6 target in an IPv4 lab: no error")
	}
	if ll, err := l4.Nodes[0].LinkLocal(); err == nil {
		t.Errorf("IPv4 lab node has link-local %s", ll)
	}
}

// vrrpListener is a raw VRRP socket in a node, IPv4 or IPv6, that
// collects what arrives.
type vrrpListener struct {
	name string
	c4   *transport.IPv4Conn
	c6   *transport.IPv6Conn
}

func listenVRRP(t *testing.T, n *Node, ipv6 bool) *vrrpListener {
	t.Helper()
	link, err := n.link()
	if err != nil {
		t.Fatal(err)
	}
	v := &vrrpListener{name: n.Name}
	err = InNS(n.NS, func() error {
		var err error
		if ipv6 {
			v.c6, err = transport.ListenIPv6(link.Attrs().Index)
		} else {
			v.c4, err = transport.ListenIPv4(link.Attrs().Index)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.close() })
	return v
}

func (v *vrrpListener) close() {
	if v.c4 != nil {
		v.c4.Close()
	}
	if v.c6 != nil {
		v.c6.Close()
	}
}

// read returns the next packet within d, parsed, with its metadata.
func (v *vrrpListener) read(d time.Duration) (*vrrp.Packet, transport.Meta, error) {
	buf := make([]byte, 1500)
	type result struct {
		n    int
		meta transport.Meta
		err  error
	}
	rc := make(chan result, 1)
	go func() {
		var r result
		if v.c4 != nil {
			r.n, r.meta, r.err = v.c4.ReadFrom(buf)
		} else {
			r.n, r.meta, r.err = v.c6.ReadFrom(buf)
		}
		rc <- r
	}()
	select {
	case r := <-rc:
		if r.err != nil {
			return nil, r.meta, r.err
		}
		p, err := vrrp.Parse(buf[:r.n], r.meta.Src, r.meta.Dst)
		return p, r.meta, err
	case <-time.After(d):
		// Closing the socket ends the read; the listener is spent.
		v.close()
		<-rc
		return nil, transport.Meta{}, errors.New("nothing received")
	}
}

// TestAdvertiser sends crafted adverts of every kind from n3 and reads them
// on n2 through the daemon's own sockets and codec: checksums, TTL 255 and
// source addresses are right.
func TestAdvertiser(t *testing.T) {
	l := newLab6(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	a, err := NewAdvertiser(n3)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ll3, err := n3.LinkLocal()
	if err != nil {
		t.Fatal(err)
	}
	v2 := vrrp.Packet{Version: 2, Type: vrrp.TypeAdvertisement, VRID: 52, Priority: 200, Interval: 1, AuthType: 1,
		Addresses: []netip.Addr{VIP.Addr()}}
	copy(v2.AuthData[:], "s3cret")
	for _, tt := range []struct {
		name     string
		pkt      vrrp.Packet
		dst      netip.Addr
		wantSrc  netip.Addr
		wantNoPH bool
	}{
		{"v3 ipv4 multicast", vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 10, Addresses: []netip.Addr{VIP.Addr()}},
			vrrp.IPv4Group, n3.Addr.Addr(), false},
		{"v3 ipv4 unicast", vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 10, Addresses: []netip.Addr{VIP.Addr()}},
			n2.Addr.Addr(), n3.Addr.Addr(), false},
		{"v3 ipv4 no pseudo-header", vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 10, Addresses: []netip.Addr{VIP.Addr()}, NoPseudoHeader: true},
			vrrp.IPv4Group, n3.Addr.Addr(), true},
		{"v2 password", v2, vrrp.IPv4Group, n3.Addr.Addr(), false},
		{"v3 ipv6 multicast", vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 10, Addresses: []netip.Addr{VIP6.Addr()}},
			vrrp.IPv6Group, ll3, false},
		{"v3 ipv6 unicast", vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 10, Addresses: []netip.Addr{VIP6.Addr()}},
			n2.Addr6.Addr(), n3.Addr6.Addr(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := listenVRRP(t, n2, tt.dst.Is6())
			other := listenVRRP(t, n1, tt.dst.Is6())
			if err := a.Send(netip.Addr{}, tt.dst, &tt.pkt); err != nil {
				t.Fatal(err)
			}
			got, meta, err := v.read(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Src != tt.wantSrc || meta.Dst != tt.dst || meta.TTL != 255 {
				t.Errorf("meta %+v, want from %s to %s with TTL 255", meta, tt.wantSrc, tt.dst)
			}
			if got.VRID != tt.pkt.VRID || got.Priority != tt.pkt.Priority || got.Version != tt.pkt.Version ||
				got.Interval != tt.pkt.Interval || got.AuthData != tt.pkt.AuthData || got.NoPseudoHeader != tt.wantNoPH ||
				len(got.Addresses) != 1 || got.Addresses[0] != tt.pkt.Addresses[0] {
				t.Errorf("received %+v, sent %+v", got, tt.pkt)
			}
			// Unicast reaches its destination only.
			_, _, err = other.read(200 * time.Millisecond)
			if tt.dst.IsMulticast() != (err == nil) {
				t.Errorf("n1 received the advert to %s: %t", tt.dst, err == nil)
			}
		})
	}
	if err := SendAdvert(n1, vrrp.IPv4Group, &v2); err != nil {
		t.Errorf("SendAdvert: %v", err)
	}
}

// TestBlockMulticastVRRP: with multicast VRRP blocked on the switch, unicast
// VRRP still flows, for IPv4 and IPv6; unblocked, multicast flows again.
func TestBlockMulticastVRRP(t *testing.T) {
	l := newLab6(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	a, err := NewAdvertiser(n1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	send := func(dst netip.Addr) bool {
		t.Helper()
		v := listenVRRP(t, n2, dst.Is6())
		pkt := vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 100, Interval: 10, Addresses: []netip.Addr{VIP.Addr()}}
		if dst.Is6() {
			pkt.Addresses = []netip.Addr{VIP6.Addr()}
		}
		// A few copies: the first may race the listener's group join.
		for range 3 {
			if err := a.Send(netip.Addr{}, dst, &pkt); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := v.read(300 * time.Millisecond)
		return err == nil
	}
	if err := l.BlockMulticastVRRP(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dst  netip.Addr
		want bool
	}{
		{vrrp.IPv4Group, false}, {vrrp.IPv6Group, false},
		{n2.Addr.Addr(), true}, {n2.Addr6.Addr(), true},
	} {
		if got := send(tt.dst); got != tt.want {
			t.Errorf("multicast blocked: an advert to %s arrived: %t, want %t", tt.dst, got, tt.want)
		}
	}
	if n, err := l.MulticastVRRPDropped(); err != nil || n < 6 {
		t.Errorf("MulticastVRRPDropped = %d, %v; want at least 6", n, err)
	}
	if err := l.UnblockMulticastVRRP(); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{vrrp.IPv4Group, vrrp.IPv6Group} {
		if !send(dst) {
			t.Errorf("unblocked: an advert to %s did not arrive", dst)
		}
	}
	// BlockVRRP blocks both families, multicast or not.
	if err := l.BlockVRRP(); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{vrrp.IPv4Group, vrrp.IPv6Group, n2.Addr.Addr(), n2.Addr6.Addr()} {
		if send(dst) {
			t.Errorf("VRRP blocked: an advert to %s arrived", dst)
		}
	}
}

// TestKeepalivedConfigsAccepted has keepalived check the configurations the
// lab writes for IPv6, VRRPv2 with a password and unicast.
func TestKeepalivedConfigsAccepted(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed")
	}
	for name, in := range map[string]Instance{
		"ipv6": ipv6Instance, "v2": v2Instance, "unicast": unicastInstance, "unicast6": unicast6Instance,
	} {
		f := filepath.Join(t.TempDir(), "k.conf")
		conf := KeepalivedConfig("n1", in)
		if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("keepalived", "--config-test", "--use-file", f).CombinedOutput()
		if err != nil {
			t.Errorf("%s: keepalived --config-test: %v\n%s\n%s", name, err, out, conf)
		}
	}
}

// TestKeepalivedComplaints shows what keepalived's complaints look like and
// that KeepalivedComplaints finds them: a wrong password, and a VRRPv3
// checksum without the pseudo-header.
func TestKeepalivedComplaints(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed")
	}
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	v2 := v2Instance
	v3 := Instance{Name: "v3", VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.51/24")}}
	if err := n1.StartKeepalived(KeepalivedConfig("n1", v2, v3)); err != nil {
		t.Fatal(err)
	}
	a, err := NewAdvertiser(n2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wrong := vrrp.Packet{Version: 2, Type: 1, VRID: 52, Priority: 200, Interval: 1, AuthType: 1, Addresses: []netip.Addr{VIP.Addr()}}
	copy(wrong.AuthData[:], "wrong")
	noPH := vrrp.Packet{Version: 3, Type: 1, VRID: 51, Priority: 200, Interval: 10, Addresses: []netip.Addr{v3.VIPs[0].Addr()}, NoPseudoHeader: true}
	var complaints []string
	deadline := time.Now().Add(10 * time.Second)
	for len(complaints) < 2 && time.Now().Before(deadline) {
		for _, p := range []*vrrp.Packet{&wrong, &noPH} {
			if err := a.Send(netip.Addr{}, vrrp.IPv4Group, p); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if complaints, err = n1.KeepalivedComplaints(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("keepalived's complaints:\n%s", strings.Join(complaints, "\n"))
	all := strings.Join(complaints, "\n")
	for _, want := range []string{"invalid passwd", "Invalid VRRPv3 checksum"} {
		if !strings.Contains(all, want) {
			t.Errorf("no complaint with %q", want)
		}
	}
	if _, err := n1.Stop(); err != nil {
		t.Error(err)
	}
}
