package announce

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

func TestUnsolicitedNAGolden(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	got, err := unsolicitedNA(netip.MustParseAddr("2001:db8::50"), mac)
	if err != nil {
		t.Fatal(err)
	}
	want := "88" + "00" + "0000" + // type 136, code 0, checksum (the kernel's)
		"20000000" + // R 0, S 0, O 1, reserved
		"20010db8000000000000000000000050" + // target
		"02" + "01" + "020000000001" // target link-layer address option, 1×8 bytes
	if h := hex.EncodeToString(got); h != want {
		t.Errorf("unsolicitedNA =\n%s\nwant\n%s", h, want)
	}
}

func TestAnnounceNDPRejects(t *testing.T) {
	var n NDP // never reaches the socket
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "ff02::1", "::"} {
		if err := n.Announce(netip.MustParseAddr(s)); err == nil {
			t.Errorf("Announce(%s) succeeded, want an error", s)
		}
	}
	if err := n.Announce(netip.Addr{}); err == nil {
		t.Error("Announce(invalid) succeeded, want an error")
	}
}

const vip6 = "2001:db8::50"

// ndpPair is two namespaces joined by a veth: ns1's v1 (senderMAC, holding
// the VIP) and ns2's v2 (2001:db8::2/64).
type ndpPair struct {
	ns1, ns2 string
	if1, if2 int
}

// newNDPPair builds the pair. With dad false duplicate address detection is
// off in both namespaces and both link-local addresses are usable on
// return; with dad true ns1 keeps the kernel's defaults and its link-local
// address is tentative for a second or two.
func newNDPPair(t *testing.T, dad bool) ndpPair {
	t.Helper()
	testenv.Privileged(t)
	p := ndpPair{ns1: testenv.Netns(t, "ndp1"), ns2: testenv.Netns(t, "ndp2")}
	for _, ns := range []string{p.ns1, p.ns2} {
		if ns == p.ns1 && dad {
			continue
		}
		testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	testenv.IP(t, "link", "add", "v1", "netns", p.ns1, "address", senderMAC, "type", "veth", "peer", "name", "v2", "netns", p.ns2)
	testenv.IP(t, "-n", p.ns1, "addr", "add", vip6+"/64", "dev", "v1", "nodad")
	testenv.IP(t, "-n", p.ns2, "addr", "add", "2001:db8::2/64", "dev", "v2", "nodad")
	testenv.IP(t, "-n", p.ns2, "link", "set", "v2", "up")
	testenv.IP(t, "-n", p.ns1, "link", "set", "v1", "up")
	testenv.WaitLink(t, p.ns1, "v1", "UP")
	testenv.WaitLink(t, p.ns2, "v2", "UP")
	p.if1 = ifindex(t, p.ns1, "v1")
	p.if2 = ifindex(t, p.ns2, "v2")
	if !dad {
		p.linkLocal(t)
	}
	return p
}

// linkLocal waits up to 5s for ns1's link-local address and returns it.
func (p ndpPair) linkLocal(t *testing.T) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var (
			ll  netip.Addr
			err error
		)
		testenv.Do(t, p.ns1, func() { ll, err = netif.LinkLocalIPv6(p.if1) })
		if err == nil {
			return ll
		}
		if time.Now().After(deadline) {
			t.Fatalf("ns1's link-local address after 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p ndpPair) dial(t *testing.T) *NDP {
	t.Helper()
	var (
		n   *NDP
		err error
	)
	testenv.Do(t, p.ns1, func() { n, err = DialNDP(p.if1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// neigh returns ns2's neighbour entry for addr: its MAC and state.
func (p ndpPair) neigh(t *testing.T, addr string) (string, string) {
	t.Helper()
	var es []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	out := testenv.IP(t, "-n", p.ns2, "-j", "-6", "neigh", "show", addr, "dev", "v2")
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("ip neigh show: %v: %s", err, out)
	}
	if len(es) != 1 {
		return "", ""
	}
	return es[0].LLAddr, strings.Join(es[0].State, ",")
}

// waitNeigh polls ns2's entry for addr for up to 2s until it has mac.
func (p ndpPair) waitNeigh(t *testing.T, addr, mac string) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if got, _ := p.neigh(t, addr); got == mac {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setWrong gives ns2 an entry for addr with the wrong MAC in state.
func (p ndpPair) setWrong(t *testing.T, addr, state string) {
	t.Helper()
	testenv.IP(t, "-n", p.ns2, "-6", "neigh", "replace", addr, "lladdr", wrongMAC, "dev", "v2", "nud", state)
	if mac, st := p.neigh(t, addr); mac != wrongMAC {
		t.Fatalf("setup: entry is %s %s, want %s", mac, st, wrongMAC)
	}
}

func TestAnnounceNDPUpdatesNeighbour(t *testing.T) {
	p := newNDPPair(t, false)
	n := p.dial(t)
	for _, state := range []string{"stale", "reachable", "permanent"} {
		t.Run(state, func(t *testing.T) {
			p.setWrong(t, vip6, state)
			if err := n.Announce(netip.MustParseAddr(vip6)); err != nil {
				t.Fatal(err)
			}
			if state == "permanent" {
				// Administrative entries are not the protocol's to
				// change (neigh_update without NEIGH_UPDATE_F_ADMIN).
				// The next announcement bounds the wait.
				const marker = "2001:db8::51"
				p.setWrong(t, marker, "stale")
				if err := n.Announce(netip.MustParseAddr(marker)); err != nil {
					t.Fatal(err)
				}
				if !p.waitNeigh(t, marker, senderMAC) {
					t.Fatalf("marker %s not updated", marker)
				}
				if mac, st := p.neigh(t, vip6); mac != wrongMAC {
					t.Errorf("a permanent entry changed to %s %s", mac, st)
				}
				return
			}
			if !p.waitNeigh(t, vip6, senderMAC) {
				mac, st := p.neigh(t, vip6)
				t.Fatalf("after 2s ns2's entry for %s is %s %s, want %s", vip6, mac, st, senderMAC)
			}
		})
	}
}

// TestAnnounceNDPTentativeSource: on a fresh link, while the link-local
// address is still under DAD, Announce fails saying so; once DAD is done it
// succeeds.
func TestAnnounceNDPTentativeSource(t *testing.T) {
	p := newNDPPair(t, true)
	n := p.dial(t) // dialling does not need the link-local address
	p.setWrong(t, vip6, "stale")
	addr := netip.MustParseAddr(vip6)
	var (
		sawTentative bool
		err          error
	)
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if err = n.Announce(addr); err == nil {
			break
		}
		switch {
		case errors.Is(err, netif.ErrTentative):
			sawTentative = true
		case errors.Is(err, netif.ErrNoLinkLocal) && !sawTentative: // not created yet
		default:
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Announce still failing after 6s: %v", err)
	}
	if !sawTentative {
		t.Fatal("Announce never reported the link-local address tentative")
	}
	if !p.waitNeigh(t, vip6, senderMAC) {
		mac, st := p.neigh(t, vip6)
		t.Fatalf("after 2s ns2's entry for %s is %s %s, want %s", vip6, mac, st, senderMAC)
	}
}

func TestNDPSocketOptions(t *testing.T) {
	p := newNDPPair(t, false)
	n := p.dial(t)
	sc, ok := n.pc.PacketConn.(syscall.Conn)
	if !ok {
		t.Fatalf("%T is not a syscall.Conn", n.pc.PacketConn)
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
		{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, p.if1},
		{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255},
		{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255},
		{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
		{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, p.if1},
		// The kernel computes ICMPv6 checksums, at offset 2.
		{"IPV6_CHECKSUM", unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 2},
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
	var (
		f    *unix.ICMPv6Filter
		ferr error
	)
	if err := rc.Control(func(fd uintptr) {
		f, ferr = unix.GetsockoptICMPv6Filter(int(fd), unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER)
	}); err != nil {
		t.Fatal(err)
	}
	for i, w := range f.Data {
		if ferr != nil || w != ^uint32(0) {
			t.Fatalf("ICMPV6_FILTER word %d = %#x, %v; want every type blocked", i, w, ferr)
		}
	}
}

// naFrame is a captured neighbour advertisement, decoded by
// mdlayher/ethernet, x/net/ipv6 and mdlayher/ndp rather than by this
// package's reading of RFC 4861.
type naFrame struct {
	dst, src                    string
	etherType                   ethernet.EtherType
	version                     int
	nextHeader                  int
	hopLimit                    int
	ipSrc, ipDst                netip.Addr
	checksumOK                  bool
	router, solicited, override bool
	target                      netip.Addr
	optDirection                ndp.Direction
	optMAC                      string
	options                     int
	payloadLen, size            int
}

func decodeNA(b []byte) (naFrame, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeIPv6 {
		return naFrame{}, false
	}
	h, err := ipv6.ParseHeader(f.Payload)
	if err != nil || h.NextHeader != 58 || len(f.Payload) < ipv6.HeaderLen+h.PayloadLen {
		return naFrame{}, false
	}
	m := f.Payload[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen]
	msg, err := ndp.ParseMessage(m)
	if err != nil {
		return naFrame{}, false
	}
	na, ok := msg.(*ndp.NeighborAdvertisement)
	if !ok {
		return naFrame{}, false
	}
	src, _ := netip.AddrFromSlice(h.Src)
	dst, _ := netip.AddrFromSlice(h.Dst)
	out := naFrame{
		dst: f.Destination.String(), src: f.Source.String(), etherType: f.EtherType,
		version: h.Version, nextHeader: h.NextHeader, hopLimit: h.HopLimit, ipSrc: src, ipDst: dst,
		checksumOK: icmpv6Sum(src, dst, m) == 0xffff,
		router:     na.Router, solicited: na.Solicited, override: na.Override, target: na.TargetAddress,
		options: len(na.Options), payloadLen: h.PayloadLen, size: len(b),
	}
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok {
			out.optDirection, out.optMAC = lla.Direction, lla.Addr.String()
		}
	}
	return out, true
}

// icmpv6Sum is the one's-complement sum of an ICMPv6 message m with its
// pseudo-header (RFC 4443 §2.3): 0xffff when its checksum is right.
func icmpv6Sum(src, dst netip.Addr, m []byte) uint32 {
	var acc uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			acc += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			acc += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	acc += uint32(len(m)) + 58
	add(m)
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return acc
}

func TestAnnounceNDPOnTheWire(t *testing.T) {
	p := newNDPPair(t, false)
	n := p.dial(t)
	ll := p.linkLocal(t)
	var (
		capture *packet.Conn
		err     error
	)
	testenv.Do(t, p.ns2, func() {
		capture, err = packet.Listen(&net.Interface{Index: p.if2}, packet.Raw, unix.ETH_P_IPV6, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()

	addr := netip.MustParseAddr(vip6)
	if err := n.Announce(addr); err != nil {
		t.Fatal(err)
	}
	if err := capture.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []naFrame
	buf := make([]byte, 1500)
	for range 50 { // bounded: other IPv6 traffic on the link is skipped
		n, _, err := capture.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := decodeNA(buf[:n]); ok {
			got = append(got, f)
			break
		}
	}
	want := naFrame{
		dst: "33:33:00:00:00:01", src: senderMAC, etherType: ethernet.EtherTypeIPv6,
		version: 6, nextHeader: 58, hopLimit: 255, ipSrc: ll, ipDst: allNodes,
		checksumOK: true, override: true, target: addr,
		optDirection: ndp.Target, optMAC: senderMAC, options: 1,
		payloadLen: 32, size: 14 + 40 + 32,
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("captured %+v\nwant one %+v", got, want)
	}
}

// TestNDPSendOnly: the socket's filter keeps the link's ICMPv6 traffic off
// it, so nothing piles up unread.
func TestNDPSendOnly(t *testing.T) {
	p := newNDPPair(t, false)
	n := p.dial(t)
	// ns2 pings ns1's VIP: echo requests and neighbour solicitations reach
	// ns1.
	testenv.IP(t, "netns", "exec", p.ns2, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", vip6)
	if err := n.pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	if nr, _, src, err := n.pc.ReadFrom(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %x from %v, %v; want nothing queued", b[:nr], src, err)
	}
}
