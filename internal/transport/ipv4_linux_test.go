package transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// end is one end of a veth: its namespace, interface and address.
type end struct {
	ns, name string
	ifindex  int
	addr     netip.Addr
}

// veth joins a (in a.ns, address a.addr/24) and b with a veth pair, up, and
// fills in both interface indexes.
func veth(t *testing.T, a, b *end) {
	t.Helper()
	testenv.IP(t, "link", "add", a.name, "netns", a.ns, "type", "veth", "peer", "name", b.name, "netns", b.ns)
	for _, e := range []*end{a, b} {
		testenv.IP(t, "-n", e.ns, "addr", "add", e.addr.String()+"/24", "dev", e.name)
		testenv.IP(t, "-n", e.ns, "link", "set", e.name, "up")
	}
	for _, e := range []*end{a, b} {
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
	}
}

// pair is ns1's v1 (192.0.2.1) and ns2's v2 (192.0.2.2) on one veth.
func pair(t *testing.T) (*end, *end) {
	t.Helper()
	testenv.Privileged(t)
	a := &end{ns: testenv.Netns(t, "vrrp1"), name: "v1", addr: netip.MustParseAddr("192.0.2.1")}
	b := &end{ns: testenv.Netns(t, "vrrp2"), name: "v2", addr: netip.MustParseAddr("192.0.2.2")}
	veth(t, a, b)
	return a, b
}

func listen(t *testing.T, e *end) *IPv4Conn {
	t.Helper()
	var (
		c   *IPv4Conn
		err error
	)
	testenv.Do(t, e.ns, func() { c, err = ListenIPv4(e.ifindex) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read reads one message, waiting at most d.
func read(t *testing.T, c *IPv4Conn, d time.Duration) ([]byte, Meta, error) {
	t.Helper()
	if err := c.pc.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	n, m, err := c.ReadFrom(b)
	return b[:n], m, err
}

// advert is a VRRPv3 advertisement for VRID 1 and 192.0.2.50 (the kernel
// does not look inside, so the checksum is left zero).
var advert = []byte{0x31, 0x01, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00, 192, 0, 2, 50}

func TestSocketOptions(t *testing.T) {
	a, _ := pair(t)
	c := listen(t, a)
	sc, ok := c.pc.PacketConn.(syscall.Conn)
	if !ok {
		t.Fatalf("%T is not a syscall.Conn", c.pc.PacketConn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, a.ifindex},
		{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 255},
		{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255},
		{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
		{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
		{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 0xc0},
		{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
		{"IP_HDRINCL", unix.IPPROTO_IP, unix.IP_HDRINCL, 0},
		// The kernel reports twice what was set (its bookkeeping share).
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * socketBuffer},
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * socketBuffer},
	}
	for _, tt := range tests {
		var (
			got  int
			gerr error
		)
		if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), tt.level, tt.opt) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil || got != tt.want {
			t.Errorf("getsockopt %s = %d, %v; want %d", tt.name, got, gerr, tt.want)
		}
	}
	// The group is joined on this interface.
	if out := testenv.IP(t, "-n", a.ns, "maddr", "show", "dev", a.name); !strings.Contains(out, "inet  224.0.0.18") {
		t.Errorf("ip maddr show dev %s lacks 224.0.0.18:\n%s", a.name, out)
	}
}

func TestMulticast(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
	if err := ca.WriteTo(advert, a.addr, GroupIPv4); err != nil {
		t.Fatal(err)
	}
	got, m, err := read(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Src: a.addr, Dst: GroupIPv4, TTL: 255, IfIndex: b.ifindex}
	if m != want || !bytes.Equal(got, advert) {
		t.Errorf("received %x %+v; want %x %+v", got, m, advert, want)
	}
}

func TestUnicast(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
	if err := ca.WriteTo(advert, a.addr, b.addr); err != nil {
		t.Fatal(err)
	}
	got, m, err := read(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Src: a.addr, Dst: b.addr, TTL: 255, IfIndex: b.ifindex}
	if m != want || !bytes.Equal(got, advert) {
		t.Errorf("received %x %+v; want %x %+v", got, m, advert, want)
	}
	for _, bad := range [][2]netip.Addr{
		{{}, b.addr},
		{a.addr, netip.MustParseAddr("2001:db8::1")},
	} {
		if err := ca.WriteTo(advert, bad[0], bad[1]); err == nil {
			t.Errorf("WriteTo from %v to %v succeeded, want an error", bad[0], bad[1])
		}
	}
}

// TestNoMulticastLoopback: the sender must not hear its own advert. The
// peer's unicast reply, sent after the peer got the multicast one, must be
// the first thing the sender reads.
func TestNoMulticastLoopback(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
	if err := ca.WriteTo(advert, a.addr, GroupIPv4); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read(t, cb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cb.WriteTo(advert, b.addr, a.addr); err != nil {
		t.Fatal(err)
	}
	_, m, err := read(t, ca, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Src != b.addr {
		t.Errorf("sender read a packet from %v first, want the peer %v: its own multicast looped back", m.Src, b.addr)
	}
}

// TestBoundToInterface: ns2 has two links; its socket on one must not read
// an advert that arrived on the other, though the other's socket did.
func TestBoundToInterface(t *testing.T) {
	a, b := pair(t)
	c := &end{ns: testenv.Netns(t, "vrrp3"), name: "w3", addr: netip.MustParseAddr("198.51.100.3")}
	b2 := &end{ns: b.ns, name: "w2", addr: netip.MustParseAddr("198.51.100.2")}
	veth(t, c, b2)
	ca, cb, cc, cb2 := listen(t, a), listen(t, b), listen(t, c), listen(t, b2)

	// Multicast and unicast: IP_MULTICAST_ALL off alone would keep the
	// former off the other socket, not the latter.
	for _, dst := range []netip.Addr{GroupIPv4, b2.addr} {
		if err := cc.WriteTo(advert, c.addr, dst); err != nil {
			t.Fatal(err)
		}
		if _, m, err := read(t, cb2, 2*time.Second); err != nil || m.Src != c.addr || m.Dst != dst || m.IfIndex != b2.ifindex {
			t.Fatalf("socket on %s: %+v, %v; want the advert from %v to %v", b2.name, m, err, c.addr, dst)
		}
	}
	if err := ca.WriteTo(advert, a.addr, GroupIPv4); err != nil {
		t.Fatal(err)
	}
	_, m, err := read(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Src != a.addr || m.IfIndex != b.ifindex {
		t.Errorf("socket on %s read %+v first, want the advert from %v on index %d", b.name, m, a.addr, b.ifindex)
	}
}

// TestIPOptionsStripped: a header longer than 20 bytes (here with Router
// Alert) is stripped whole.
func TestIPOptionsStripped(t *testing.T) {
	a, b := pair(t)
	cb := listen(t, b)
	var (
		rc  *ipv4.RawConn
		err error
	)
	testenv.Do(t, a.ns, func() {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
			return
		}
		rc, err = ipv4.NewRawConn(pc)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := &ipv4.Header{
		Version:  ipv4.Version,
		Len:      24,
		TotalLen: 24 + len(advert),
		TTL:      255,
		Protocol: Protocol,
		Src:      a.addr.AsSlice(),
		Dst:      b.addr.AsSlice(),
		Options:  []byte{0x94, 0x04, 0x00, 0x00}, // Router Alert
	}
	if err := rc.WriteTo(h, advert, &ipv4.ControlMessage{IfIndex: a.ifindex}); err != nil {
		t.Fatal(err)
	}
	got, m, err := read(t, cb, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Src: a.addr, Dst: b.addr, TTL: 255, IfIndex: b.ifindex}
	if m != want || !bytes.Equal(got, advert) {
		t.Errorf("received %x %+v; want %x %+v", got, m, advert, want)
	}
}

func TestReadFromTruncates(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
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

func TestCloseUnblocksReadFrom(t *testing.T) {
	a, _ := pair(t)
	c := listen(t, a)
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

func TestReadDeadlineIsTheOnlyTimeout(t *testing.T) {
	// Guards the helper above: with nothing sent, read times out.
	a, _ := pair(t)
	c := listen(t, a)
	if _, _, err := read(t, c, 50*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with nothing sent: %v, want a deadline error", err)
	}
}

// TestWriteBatch: a batch arrives whole and in order, each message from its
// own source to its own destination, as WriteTo would send it; a batch
// holding a message of the wrong family is refused before anything is sent.
func TestWriteBatch(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
	var ms []Outgoing
	var want []Meta
	for i := range 40 {
		dst := GroupIPv4
		if i%3 == 1 {
			dst = b.addr
		}
		m := bytes.Clone(advert)
		m[1] = byte(i + 1) // VRID: tells the messages apart
		ms = append(ms, Outgoing{B: m, Src: a.addr, Dst: dst})
		want = append(want, Meta{Src: a.addr, Dst: dst, TTL: 255, IfIndex: b.ifindex})
	}
	for round := range 2 { // the second round reuses the cached state
		if n, err := ca.WriteBatch(ms); n != len(ms) || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v; want %d, nil", round, n, err, len(ms))
		}
		for i := range ms {
			got, m, err := read(t, cb, 2*time.Second)
			if err != nil {
				t.Fatalf("round %d, message %d: %v", round, i, err)
			}
			if m != want[i] || !bytes.Equal(got, ms[i].B) {
				t.Fatalf("round %d, message %d: received %x %+v; want %x %+v", round, i, got, m, ms[i].B, want[i])
			}
		}
	}
	bad := []Outgoing{{B: advert, Src: a.addr, Dst: b.addr}, {B: advert, Src: a.addr, Dst: netip.MustParseAddr("2001:db8::1")}}
	if n, err := ca.WriteBatch(bad); n != 0 || err == nil {
		t.Errorf("WriteBatch with an IPv6 destination = %d, %v; want 0 and an error", n, err)
	}
	if _, _, err := read(t, cb, 200*time.Millisecond); err == nil {
		t.Error("a message of the refused batch arrived")
	}
}

// The receive path of every advert allocates nothing.
func TestReadFromAllocatesNothing(t *testing.T) {
	a, b := pair(t)
	ca, cb := listen(t, a), listen(t, b)
	for i := 0; i < 300; i++ {
		if err := cb.WriteTo(advert, b.addr, GroupIPv4); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := read(t, ca, 2*time.Second); err != nil { // and wait for the rest
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	if n := testing.AllocsPerRun(200, func() {
		if _, _, err := ca.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadFrom allocates %v times per packet", n)
	}
}
