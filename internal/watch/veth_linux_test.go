package watch

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/testenv"
	"github.com/vipd/vipd/internal/transport"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// socket is a transport socket as the test uses it: read by a monitor,
// written by a sender.
type socket interface {
	Conn
	WriteTo(b []byte, src, dst netip.Addr) error
	Close() error
}

// listen opens transport's VRRP sockets on dev in ns, one per family as
// vipd watch does (IPv4, then IPv6), closed when the test ends, and returns
// them with dev's index.
func listen(t *testing.T, ns, dev string) (int, []socket) {
	t.Helper()
	var (
		ifindex int
		socks   []socket
		err     error
	)
	testenv.Do(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(dev); err != nil {
			return
		}
		ifindex = ifi.Index
		var c4 *transport.IPv4Conn
		if c4, err = transport.ListenIPv4(ifi.Index); err != nil {
			return
		}
		socks = append(socks, c4)
		var c6 *transport.IPv6Conn
		if c6, err = transport.ListenIPv6(ifi.Index); err != nil {
			return
		}
		socks = append(socks, c6)
	})
	for _, s := range socks {
		t.Cleanup(func() { s.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return ifindex, socks
}

// forwarder opens a raw VRRP socket of src's family on dev in ns that sends
// with TTL (hop limit) ttl, as a router that forwarded an advert would
// deliver it: transport's sockets always send with 255. It is closed when
// the test ends.
func forwarder(t *testing.T, ns string, ifindex int, src netip.Addr, ttl int) func(b []byte) error {
	t.Helper()
	var (
		pc  net.PacketConn
		err error
	)
	network := "ip4:112"
	if src.Is6() {
		network = "ip6:112"
	}
	testenv.Do(t, ns, func() { pc, err = net.ListenPacket(network, "") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst := &net.IPAddr{IP: groupOf(src).AsSlice()}
	if src.Is4() {
		c := ipv4.NewPacketConn(pc)
		if err := errors.Join(c.SetMulticastTTL(ttl), c.SetMulticastLoopback(false)); err != nil {
			t.Fatal(err)
		}
		return func(b []byte) error {
			_, err := c.WriteTo(b, &ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}, dst)
			return err
		}
	}
	c := ipv6.NewPacketConn(pc)
	if err := c.SetMulticastLoopback(false); err != nil {
		t.Fatal(err)
	}
	return func(b []byte) error {
		_, err := c.WriteTo(b, &ipv6.ControlMessage{HopLimit: ttl, Src: src.AsSlice(), IfIndex: ifindex}, dst)
		return err
	}
}

// TestSegmentVeth runs testSegment over a real link, for each family: ns1
// (192.0.2.1 and 192.0.2.3, fe80::1 and fe80::3) sends the two routers'
// adverts, a monitor reads them on transport's IPv4 and IPv6 sockets in ns2
// (192.0.2.2, fe80::2), as vipd watch does by default. A second monitor on
// ns1's sockets hears nothing: the monitor in ns2 sends nothing, and the
// sender's own adverts do not loop back.
func TestSegmentVeth(t *testing.T) {
	testenv.Privileged(t)
	for _, sd := range []sides{sides4, sides6} {
		t.Run(sd.fam.String(), func(t *testing.T) { testSegmentVeth(t, sd) })
	}
}

func testSegmentVeth(t *testing.T, sd sides) {
	ns1, ns2 := testenv.Netns(t, "watch1"), testenv.Netns(t, "watch2")
	for _, ns := range []string{ns1, ns2} {
		// The kernel's own link-local addresses would otherwise stay
		// tentative for a second.
		testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	testenv.IP(t, "link", "add", "v1", "netns", ns1, "type", "veth", "peer", "name", "v2", "netns", ns2)
	for _, a := range []string{"192.0.2.1/24", "192.0.2.3/24", "fe80::1/64", "fe80::3/64"} {
		testenv.IP(t, "-n", ns1, "addr", "add", a, "dev", "v1", "nodad")
	}
	for _, a := range []string{"192.0.2.2/24", "fe80::2/64"} {
		testenv.IP(t, "-n", ns2, "addr", "add", a, "dev", "v2", "nodad")
	}
	testenv.IP(t, "-n", ns1, "link", "set", "v1", "up")
	testenv.IP(t, "-n", ns2, "link", "set", "v2", "up")
	testenv.WaitLink(t, ns1, "v1", "UP")
	testenv.WaitLink(t, ns2, "v2", "UP")

	if1, senders := listen(t, ns1, "v1")
	sender := senders[0]
	if sd.fam == IPv6 {
		sender = senders[1]
	}
	forwarded := forwarder(t, ns1, if1, sd.a, 64)
	back := NewMonitor("v1", Config{}, nil)
	for _, s := range senders {
		runFeed(t, back, s)
	}

	clk := &fakeClock{now: t0}
	m := NewMonitor("v2", Config{}, clk.Now)
	_, socks := listen(t, ns2, "v2")
	for _, s := range socks {
		runFeed(t, m, s)
	}

	testSegment(t, segment{mon: m, clk: clk, send: func(b []byte, src netip.Addr, ttl int) error {
		if ttl != 255 {
			return forwarded(b)
		}
		return sender.WriteTo(b, src, groupOf(src))
	}}, sd)

	var text bytes.Buffer
	if err := WriteText(&text, m.Report()); err != nil {
		t.Fatal(err)
	}
	t.Logf("vipd watch --interface v2:\n%s", text.String())
	for _, want := range []string{sd.a.String(), sd.b.String(), "key 1", "bad packets: ttl 1, checksum 1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if r := back.Report(); r.Adverts != 0 || len(r.Drops) != 0 {
		t.Errorf("the sender's link heard %d adverts and drops %v: the monitor or a loop sent them", r.Adverts, r.Drops)
	}
}
