package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"github.com/vipd/vipd/pkg/vrrp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// end6 is one end of a veth for the IPv6 tests: its namespace, interface,
// link-local address and global (documentation) address.
type end6 struct {
	ns, name string
	ifindex  int
	ll, addr netip.Addr
}

// noDAD turns duplicate address detection off in ns for links created
// after it, so that their link-local addresses are usable at once.
func noDAD(t *testing.T, ns string) {
	t.Helper()
	testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
}

// veth6 joins a and b with a veth pair, up, with a.addr/64 and b.addr/64,
// and fills in both interface indexes and link-local addresses. DAD is off
// in both namespaces.
func veth6(t *testing.T, a, b *end6) {
	t.Helper()
	noDAD(t, a.ns)
	noDAD(t, b.ns)
	testenv.IP(t, "link", "add", a.name, "netns", a.ns, "type", "veth", "peer", "name", b.name, "netns", b.ns)
	for _, e := range []*end6{a, b} {
		testenv.IP(t, "-n", e.ns, "addr", "add", e.addr.String()+"/64", "dev", e.name, "nodad")
		testenv.IP(t, "-n", e.ns, "link", "set", e.name, "up")
	}
	for _, e := range []*end6{a, b} {
		testenv.WaitLink(t, e.ns, e.name, "UP")
		var (
			ifi *net.Interface
			err error
		)
		testenv.Do(t, e.ns, func() { ifi, err = net.InterfaceByName(e.name) })
		if err != nil {
			t.Fatal(err)
		}
		e.ifindex = ifi.Index
		e.ll = linkLocal(t, e.ns, e.name, false)
	}
}

// linkLocal polls ns's dev for up to 5s until it has a link-local address,
// tentative or not as asked, and returns it.
func linkLocal(t *testing.T, ns, dev string, tentative bool) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []struct {
			AddrInfo []struct {
				Local     string `json:"local"`
				Tentative bool   `json:"tentative"`
			} `json:"addr_info"`
		}
		out := testenv.IP(t, "-n", ns, "-j", "-6", "addr", "show", "dev", dev, "scope", "link")
		if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
			t.Fatalf("ip -j addr show: %v: %s", err, out)
		}
		for _, a := range links[0].AddrInfo {
			if a.Local != "" && a.Tentative == tentative {
				return netip.MustParseAddr(a.Local)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s: no link-local address with tentative=%v after 5s: %s", dev, ns, tentative, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pair6 is ns1's v1 (2001:db8::1) and ns2's v2 (2001:db8::2) on one veth.
func pair6(t *testing.T) (*end6, *end6) {
	t.Helper()
	testenv.Privileged(t)
	a := &end6{ns: testenv.Netns(t, "vrrp1"), name: "v1", addr: netip.MustParseAddr("2001:db8::1")}
	b := &end6{ns: testenv.Netns(t, "vrrp2"), name: "v2", addr: netip.MustParseAddr("2001:db8::2")}
	veth6(t, a, b)
	return a, b
}

func listen6(t *testing.T, e *end6) *IPv6Conn {
	t.Helper()
	var (
		c   *IPv6Conn
		err error
	)
	testenv.Do(t, e.ns, func() { c, err = ListenIPv6(e.ifindex) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read6 reads one message, waiting at most d.
func read6(t *testing.T, c *IPv6Conn, d time.Duration) ([]byte, Meta, error) {
	t.Helper()
	if err := c.pc.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	n, m, err := c.ReadFrom(b)
	return b[:n], m, err
}

// advert6 is a VRRPv3 advertisement for VRID 1 and 2001:db8::50 from src to
// dst, with its checksum.
func advert6(t *testing.T, src, dst netip.Addr) []byte {
	t.Helper()
	p := &vrrp.Packet{
		Version: 3, Type: vrrp.TypeAdvertisement, VRID: 1, Priority: 100, Interval: 100,
		Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::50")},
	}
	b, err := p.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sockopt(t *testing.T, rc syscall.RawConn, level, opt int) (int, error) {
	t.Helper()
	var (
		got  int
		gerr error
	)
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	return got, gerr
}

func TestIPv6SocketOptions(t *testing.T) {
	a, _ := pair6(t)
	c := listen6(t, a)
	tests := []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, a.ifindex},
		{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255},
		{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255},
		{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
		{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, a.ifindex},
		{"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * socketBuffer},
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * socketBuffer},
		{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0},
		{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
		{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
		// No kernel checksum: the codec checks it, and counts failures.
		{"IPV6_CHECKSUM", unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, -1},
	}
	for _, tt := range tests {
		if got, err := sockopt(t, c.rc, tt.level, tt.opt); err != nil || got != tt.want {
			t.Errorf("getsockopt %s = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if out := testenv.IP(t, "-n", a.ns, "maddr", "show", "dev", a.name); !strings.Contains(out, "inet6 ff02::12") {
		t.Errorf("ip maddr show dev %s lacks ff02::12:\n%s", a.name, out)
	}
}

func TestIPv6Multicast(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	advert := advert6(t, a.ll, GroupIPv6)
	if err := ca.WriteTo(advert, a.ll, GroupIPv6); err != nil {
		t.Fatal(err)
	}
	got, m, err := read6(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Src: a.ll, Dst: GroupIPv6, TTL: 255, IfIndex: b.ifindex}
	if m != want || !bytes.Equal(got, advert) {
		t.Errorf("received %x %+v; want %x %+v", got, m, advert, want)
	}
	// What arrives checks out against the addresses ReadFrom reports.
	if _, err := vrrp.Parse(got, m.Src, m.Dst); err != nil {
		t.Errorf("vrrp.Parse: %v", err)
	}
}

func TestIPv6Unicast(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	for _, tt := range []struct{ src, dst netip.Addr }{
		{a.addr, b.addr},
		{a.ll, b.ll},
		{a.ll.WithZone(a.name), b.ll.WithZone("ignored")}, // zones are ignored
	} {
		src, dst := tt.src.WithZone(""), tt.dst.WithZone("")
		advert := advert6(t, src, dst)
		if err := ca.WriteTo(advert, tt.src, tt.dst); err != nil {
			t.Fatal(err)
		}
		got, m, err := read6(t, cb, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := Meta{Src: src, Dst: dst, TTL: 255, IfIndex: b.ifindex}
		if m != want || !bytes.Equal(got, advert) {
			t.Errorf("%v to %v: received %x %+v; want %x %+v", tt.src, tt.dst, got, m, advert, want)
		}
	}
	for _, bad := range [][2]netip.Addr{
		{{}, b.addr},
		{a.addr, {}},
		{a.addr, netip.MustParseAddr("192.0.2.1")},
		{netip.MustParseAddr("::ffff:192.0.2.1"), b.addr},
	} {
		if err := ca.WriteTo([]byte{0}, bad[0], bad[1]); err == nil {
			t.Errorf("WriteTo from %v to %v succeeded, want an error", bad[0], bad[1])
		}
	}
}

// TestIPv6HopLimitReported: Meta.TTL is the hop limit the packet arrived
// with, not a constant.
func TestIPv6HopLimitReported(t *testing.T) {
	a, b := pair6(t)
	cb := listen6(t, b)
	var (
		pc  *ipv6.PacketConn
		err error
	)
	testenv.Do(t, a.ns, func() {
		var c net.PacketConn
		if c, err = net.ListenPacket("ip6:112", "::"); err != nil {
			return
		}
		pc = ipv6.NewPacketConn(c)
		if err = pc.SetHopLimit(64); err == nil {
			err = pc.SetMulticastHopLimit(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, tt := range []struct {
		dst  netip.Addr
		want int
	}{{b.addr, 64}, {GroupIPv6, 1}} {
		advert := advert6(t, a.addr, tt.dst)
		cm := &ipv6.ControlMessage{Src: a.addr.AsSlice(), IfIndex: a.ifindex}
		if _, err := pc.WriteTo(advert, cm, &net.IPAddr{IP: tt.dst.AsSlice()}); err != nil {
			t.Fatal(err)
		}
		_, m, err := read6(t, cb, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.TTL != tt.want || m.Dst != tt.dst {
			t.Errorf("to %v: received %+v; want hop limit %d", tt.dst, m, tt.want)
		}
	}
}

// TestIPv6ChecksumNotChecked: the kernel neither fixes nor checks the VRRP
// checksum, so an advert with a wrong one reaches the codec as sent (and
// the codec rejects it), instead of vanishing in the kernel.
func TestIPv6ChecksumNotChecked(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	for _, dst := range []netip.Addr{GroupIPv6, b.addr} {
		src := a.ll
		if dst == b.addr {
			src = a.addr
		}
		advert := advert6(t, src, dst)
		advert[6] ^= 0xff // checksum
		if err := ca.WriteTo(advert, src, dst); err != nil {
			t.Fatal(err)
		}
		got, m, err := read6(t, cb, 2*time.Second)
		if err != nil {
			t.Fatalf("to %v: the advert with a bad checksum did not arrive: %v", dst, err)
		}
		if !bytes.Equal(got, advert) {
			t.Errorf("to %v: received %x; want %x as sent", dst, got, advert)
		}
		if _, err := vrrp.Parse(got, m.Src, m.Dst); !errors.Is(err, vrrp.ErrChecksum) {
			t.Errorf("to %v: vrrp.Parse: %v; want ErrChecksum", dst, err)
		}
	}
}

// TestIPv6NoMulticastLoopback: the sender must not hear its own advert. The
// peer's unicast reply, sent after the peer got the multicast one, must be
// the first thing the sender reads.
func TestIPv6NoMulticastLoopback(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	if err := ca.WriteTo(advert6(t, a.ll, GroupIPv6), a.ll, GroupIPv6); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read6(t, cb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cb.WriteTo(advert6(t, b.ll, a.ll), b.ll, a.ll); err != nil {
		t.Fatal(err)
	}
	_, m, err := read6(t, ca, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Src != b.ll {
		t.Errorf("sender read a packet from %v first, want the peer %v: its own multicast looped back", m.Src, b.ll)
	}
}

// TestIPv6BoundToInterface: ns2 has two links; its socket on one must not
// read an advert that arrived on the other, though the other's socket did.
func TestIPv6BoundToInterface(t *testing.T) {
	a, b := pair6(t)
	c := &end6{ns: testenv.Netns(t, "vrrp3"), name: "w3", addr: netip.MustParseAddr("2001:db8:1::3")}
	b2 := &end6{ns: b.ns, name: "w2", addr: netip.MustParseAddr("2001:db8:1::2")}
	veth6(t, c, b2)
	ca, cb, cc, cb2 := listen6(t, a), listen6(t, b), listen6(t, c), listen6(t, b2)

	for _, tt := range []struct{ src, dst netip.Addr }{{c.ll, GroupIPv6}, {c.addr, b2.addr}} {
		if err := cc.WriteTo(advert6(t, tt.src, tt.dst), tt.src, tt.dst); err != nil {
			t.Fatal(err)
		}
		if _, m, err := read6(t, cb2, 2*time.Second); err != nil || m.Src != tt.src || m.Dst != tt.dst || m.IfIndex != b2.ifindex {
			t.Fatalf("socket on %s: %+v, %v; want the advert from %v to %v", b2.name, m, err, tt.src, tt.dst)
		}
	}
	if err := ca.WriteTo(advert6(t, a.ll, GroupIPv6), a.ll, GroupIPv6); err != nil {
		t.Fatal(err)
	}
	_, m, err := read6(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Src != a.ll || m.IfIndex != b.ifindex {
		t.Errorf("socket on %s read %+v first, want the advert from %v on index %d", b.name, m, a.ll, b.ifindex)
	}
}

func TestIPv6ReadFromTruncates(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	advert := advert6(t, a.addr, b.addr)
	if err := ca.WriteTo(advert, a.addr, b.addr); err != nil {
		t.Fatal(err)
	}
	if err := cb.pc.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 4)
	n, m, err := cb.ReadFrom(small)
	if err != nil || n != 4 || !bytes.Equal(small, advert[:4]) || m.Src != a.addr {
		t.Errorf("ReadFrom(4 bytes) = %d %x %+v, %v; want 4 %x from %v", n, small, m, err, advert[:4], a.addr)
	}
}

func TestIPv6CloseUnblocksReadFrom(t *testing.T) {
	a, _ := pair6(t)
	c := listen6(t, a)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 1500))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadFrom still blocked 2s after Close")
	}
}

func TestIPv6ReadDeadline(t *testing.T) {
	a, _ := pair6(t)
	c := listen6(t, a)
	if _, _, err := read6(t, c, 50*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with nothing sent: %v, want a deadline error", err)
	}
}

func TestListenIPv6BadIndex(t *testing.T) {
	for _, i := range []int{0, -1} {
		if c, err := ListenIPv6(i); err == nil {
			c.Close()
			t.Errorf("ListenIPv6(%d) succeeded, want an error", i)
		}
	}
}

// TestIPv6KernelChecksum: the codec's checksum is the one the kernel would
// compute, as a socket with IPV6_CHECKSUM at the VRRP checksum's offset
// accepts it; and such a socket silently drops an advert with a wrong one,
// which is why IPv6Conn leaves the option off.
func TestIPv6KernelChecksum(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	if err := cb.pc.SetChecksum(true, 6); err != nil {
		t.Fatal(err)
	}
	advert := advert6(t, a.addr, b.addr)
	if err := ca.WriteTo(advert, a.addr, b.addr); err != nil {
		t.Fatal(err)
	}
	if got, _, err := read6(t, cb, 2*time.Second); err != nil || !bytes.Equal(got, advert) {
		t.Fatalf("with kernel checksum checks: %x, %v; want the codec's advert %x", got, err, advert)
	}
	advert[6] ^= 0xff
	if err := ca.WriteTo(advert, a.addr, b.addr); err != nil {
		t.Fatal(err)
	}
	if got, _, err := read6(t, cb, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("with kernel checksum checks, a bad checksum: %x, %v; want it dropped", got, err)
	}
}

// TestIPv6TentativeSource: while the link-local address is tentative (DAD
// running, here for a minute) the socket opens, but the kernel refuses it
// as a source with EINVAL, which is why netif.LinkLocalIPv6 does not return
// it.
func TestIPv6TentativeSource(t *testing.T) {
	testenv.Privileged(t)
	a := &end6{ns: testenv.Netns(t, "vrrp1"), name: "v1"}
	b := &end6{ns: testenv.Netns(t, "vrrp2"), name: "v2"}
	testenv.IP(t, "link", "add", a.name, "netns", a.ns, "type", "veth", "peer", "name", b.name, "netns", b.ns)
	testenv.IP(t, "netns", "exec", a.ns, "sysctl", "-q", "-w", "net.ipv6.conf.v1.dad_transmits=60")
	for _, e := range []*end6{a, b} {
		testenv.IP(t, "-n", e.ns, "link", "set", e.name, "up")
	}
	testenv.WaitLink(t, a.ns, a.name, "UP")
	ll := linkLocal(t, a.ns, a.name, true)
	var (
		ifi *net.Interface
		err error
	)
	testenv.Do(t, a.ns, func() { ifi, err = net.InterfaceByName(a.name) })
	if err != nil {
		t.Fatal(err)
	}
	a.ifindex = ifi.Index
	c := listen6(t, a)
	for _, dst := range []netip.Addr{GroupIPv6, netip.MustParseAddr("fe80::1")} {
		if err := c.WriteTo(advert6(t, ll, dst), ll, dst); !errors.Is(err, unix.EINVAL) {
			t.Errorf("send from tentative %v to %v: %v; want EINVAL", ll, dst, err)
		}
	}
}

// TestIPv6WriteBatch: as TestWriteBatch, for IPv6: multicast from the
// link-local address and unicast from the global one, in order.
func TestIPv6WriteBatch(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	var ms []Outgoing
	var want []Meta
	for i := range 20 {
		src, dst := a.ll, GroupIPv6
		if i%2 == 1 {
			src, dst = a.addr, b.addr
		}
		ms = append(ms, Outgoing{B: advert6(t, src, dst), Src: src, Dst: dst})
		want = append(want, Meta{Src: src, Dst: dst, TTL: 255, IfIndex: b.ifindex})
	}
	if n, err := ca.WriteBatch(ms); n != len(ms) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(ms))
	}
	for i := range ms {
		got, m, err := read6(t, cb, 2*time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m != want[i] || !bytes.Equal(got, ms[i].B) {
			t.Fatalf("message %d: received %x %+v; want %x %+v", i, got, m, ms[i].B, want[i])
		}
	}
	bad := []Outgoing{{B: []byte{0}, Src: a.ll, Dst: b.ll}, {B: []byte{0}, Src: netip.MustParseAddr("::ffff:192.0.2.1"), Dst: b.addr}}
	if n, err := ca.WriteBatch(bad); n != 0 || err == nil {
		t.Errorf("WriteBatch with an IPv4-mapped source = %d, %v; want 0 and an error", n, err)
	}
}

// The receive path of every advert allocates nothing.
func TestReadFrom6AllocatesNothing(t *testing.T) {
	a, b := pair6(t)
	ca, cb := listen6(t, a), listen6(t, b)
	for i := 0; i < 300; i++ {
		if err := ca.WriteTo(advert, a.ll, GroupIPv6); err != nil {
			t.Fatal(err)
		}
	}
	if _, m, err := read6(t, cb, 2*time.Second); err != nil || m.Src != a.ll || m.Dst != GroupIPv6 || m.TTL != 255 || m.IfIndex != b.ifindex {
		t.Fatalf("first read: %+v, %v", m, err)
	}
	buf := make([]byte, 1500)
	if n := testing.AllocsPerRun(200, func() {
		if _, _, err := cb.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadFrom allocates %v times per packet", n)
	}
}
