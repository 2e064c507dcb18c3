package announce

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestAppendGratuitousARPGolden(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	addr := netip.MustParseAddr("192.0.2.50")
	pad := strings.Repeat("00", 18)
	tests := []struct {
		name string
		op   arp.Operation
		want string
	}{
		{
			name: "request",
			op:   arp.OperationRequest,
			want: "ffffffffffff" + "020000000001" + "0806" + // Ethernet
				"0001" + "0800" + "06" + "04" + "0001" + // HTYPE, PTYPE, HLEN, PLEN, OP
				"020000000001" + "c0000232" + // SHA, SPA
				"000000000000" + "c0000232" + // THA zero, TPA = SPA
				pad,
		},
		{
			name: "reply",
			op:   arp.OperationReply,
			want: "ffffffffffff" + "020000000001" + "0806" +
				"0001" + "0800" + "06" + "04" + "0002" +
				"020000000001" + "c0000232" +
				"020000000001" + "c0000232" + // THA = SHA, TPA = SPA
				pad,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gratuitousARP(tt.op, mac, addr)
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got); h != tt.want {
				t.Errorf("gratuitousARP =\n%s\nwant\n%s", h, tt.want)
			}
			if len(got) != 60 {
				t.Errorf("frame is %d bytes, want 60, the minimum without FCS", len(got))
			}
		})
	}
}

func TestAnnounceRejectsIPv6(t *testing.T) {
	var a ARP // never reaches the socket
	if err := a.Announce(netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Fatal("Announce(IPv6) succeeded, want an error")
	}
}

const (
	vip       = "192.0.2.50"
	senderMAC = "02:00:00:00:00:01"
	wrongMAC  = "02:00:00:00:00:99"
)

// pair is two namespaces joined by a veth: ns1's v1 (senderMAC, 192.0.2.1/24
// and the VIP) and ns2's v2 (192.0.2.2/24).
type pair struct {
	ns1, ns2 string
	if1, if2 int // interface indexes, each in its own namespace
}

func newPair(t *testing.T) pair {
	t.Helper()
	testenv.Privileged(t)
	p := pair{ns1: testenv.Netns(t, "arp1"), ns2: testenv.Netns(t, "arp2")}
	testenv.IP(t, "link", "add", "v1", "netns", p.ns1, "type", "veth", "peer", "name", "v2", "netns", p.ns2)
	testenv.IP(t, "-n", p.ns1, "link", "set", "v1", "address", senderMAC, "up")
	testenv.IP(t, "-n", p.ns2, "link", "set", "v2", "up")
	testenv.IP(t, "-n", p.ns1, "addr", "add", "192.0.2.1/24", "dev", "v1")
	testenv.IP(t, "-n", p.ns1, "addr", "add", vip+"/24", "dev", "v1")
	testenv.IP(t, "-n", p.ns2, "addr", "add", "192.0.2.2/24", "dev", "v2")
	testenv.WaitLink(t, p.ns1, "v1", "UP")
	testenv.WaitLink(t, p.ns2, "v2", "UP")
	// A long locktime makes the kernel refuse to change a fresh entry's MAC
	// for any ARP that it does not classify as gratuitous, so the tests
	// below prove that ours are.
	testenv.IP(t, "-n", p.ns2, "ntable", "change", "name", "arp_cache", "dev", "v2", "locktime", "60000")
	p.if1 = ifindex(t, p.ns1, "v1")
	p.if2 = ifindex(t, p.ns2, "v2")
	return p
}

func ifindex(t *testing.T, ns, name string) int {
	t.Helper()
	var (
		ifi *net.Interface
		err error
	)
	testenv.Do(t, ns, func() { ifi, err = net.InterfaceByName(name) })
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

func (p pair) dial(t *testing.T) *ARP {
	t.Helper()
	var (
		a   *ARP
		err error
	)
	testenv.Do(t, p.ns1, func() { a, err = DialARP(p.if1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// neigh returns ns2's neighbour entry for addr: its MAC and state.
func (p pair) neigh(t *testing.T, addr string) (string, string) {
	t.Helper()
	var es []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	out := testenv.IP(t, "-n", p.ns2, "-j", "neigh", "show", addr, "dev", "v2")
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("ip neigh show: %v: %s", err, out)
	}
	if len(es) != 1 {
		return "", ""
	}
	return es[0].LLAddr, strings.Join(es[0].State, ",")
}

// waitNeigh polls ns2's entry for addr for up to 2s until it has mac.
func (p pair) waitNeigh(t *testing.T, addr, mac string) bool {
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

func TestAnnounceUpdatesNeighbour(t *testing.T) {
	p := newPair(t)
	a := p.dial(t)
	addr := netip.MustParseAddr(vip)
	sends := []struct {
		name string
		send func() error
	}{
		{"both", func() error { return a.Announce(addr) }},
		{"request only", func() error { return a.send(arp.OperationRequest, addr) }},
		{"reply only", func() error { return a.send(arp.OperationReply, addr) }},
	}
	for _, s := range sends {
		for _, state := range []string{"stale", "reachable"} {
			t.Run(s.name+"/"+state, func(t *testing.T) {
				testenv.IP(t, "-n", p.ns2, "neigh", "replace", vip, "lladdr", wrongMAC, "dev", "v2", "nud", state)
				if mac, st := p.neigh(t, vip); mac != wrongMAC {
					t.Fatalf("setup: entry is %s %s, want %s", mac, st, wrongMAC)
				}
				if err := s.send(); err != nil {
					t.Fatal(err)
				}
				if !p.waitNeigh(t, vip, senderMAC) {
					mac, st := p.neigh(t, vip)
					t.Fatalf("after 2s ns2's entry for %s is %s %s, want %s", vip, mac, st, senderMAC)
				}
			})
		}
	}
}

// TestReplyWithZeroTHAIsNotGratuitous documents why the reply form carries
// THA = SHA: with THA zero Linux does not take it as gratuitous and keeps
// the old MAC inside locktime.
func TestReplyWithZeroTHAIsNotGratuitous(t *testing.T) {
	p := newPair(t)
	a := p.dial(t)
	const marker = "192.0.2.51"
	testenv.IP(t, "-n", p.ns2, "neigh", "replace", vip, "lladdr", wrongMAC, "dev", "v2", "nud", "stale")
	testenv.IP(t, "-n", p.ns2, "neigh", "replace", marker, "lladdr", wrongMAC, "dev", "v2", "nud", "stale")

	pkt, err := arp.NewPacket(arp.OperationReply, a.mac, netip.MustParseAddr(vip), zeroMAC, netip.MustParseAddr(vip)) // THA = 0
	if err != nil {
		t.Fatal(err)
	}
	payload, err := pkt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&ethernet.Frame{Destination: broadcast, Source: a.mac, EtherType: ethernet.EtherTypeARP, Payload: payload}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.WriteTo(b, &packet.Addr{HardwareAddr: broadcast}); err != nil {
		t.Fatal(err)
	}
	// A proper announcement sent after it, once processed, bounds the wait.
	if err := a.Announce(netip.MustParseAddr(marker)); err != nil {
		t.Fatal(err)
	}
	if !p.waitNeigh(t, marker, senderMAC) {
		t.Fatalf("marker %s not updated", marker)
	}
	time.Sleep(100 * time.Millisecond)
	if mac, st := p.neigh(t, vip); mac != wrongMAC {
		t.Errorf("a reply with THA 0 changed the entry to %s %s; the kernel's rule changed", mac, st)
	}
}

// arpFrame is a received frame, decoded by mdlayher/ethernet and
// mdlayher/arp rather than by this package's reading of RFC 826.
type arpFrame struct {
	dst, src  string
	etherType ethernet.EtherType
	op        arp.Operation
	sha, tha  string
	spa, tpa  netip.Addr
	len       int
}

func decode(b []byte) (arpFrame, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return arpFrame{}, false
	}
	var p arp.Packet
	// UnmarshalBinary refuses anything but Ethernet/IPv4 hardware and
	// protocol types and lengths.
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return arpFrame{}, false
	}
	return arpFrame{
		dst: f.Destination.String(), src: f.Source.String(), etherType: f.EtherType,
		op: p.Operation, sha: p.SenderHardwareAddr.String(), spa: p.SenderIP,
		tha: p.TargetHardwareAddr.String(), tpa: p.TargetIP, len: len(b),
	}, true
}

func TestAnnounceFramesOnTheWire(t *testing.T) {
	p := newPair(t)
	a := p.dial(t)
	var (
		capture *packet.Conn
		err     error
	)
	testenv.Do(t, p.ns2, func() {
		capture, err = packet.Listen(&net.Interface{Index: p.if2}, packet.Raw, unix.ETH_P_ARP, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()

	addr := netip.MustParseAddr(vip)
	if err := a.Announce(addr); err != nil {
		t.Fatal(err)
	}
	if err := capture.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []arpFrame
	buf := make([]byte, 1500)
	for range 50 { // bounded: other ARP traffic on the link is skipped
		n, _, err := capture.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := decode(buf[:n]); ok && f.spa == addr {
			got = append(got, f)
		}
		if len(got) == 2 {
			break
		}
	}
	want := []arpFrame{
		{
			dst: "ff:ff:ff:ff:ff:ff", src: senderMAC, etherType: ethernet.EtherTypeARP, op: arp.OperationRequest,
			sha: senderMAC, spa: addr, tha: "00:00:00:00:00:00", tpa: addr, len: 60,
		},
		{
			dst: "ff:ff:ff:ff:ff:ff", src: senderMAC, etherType: ethernet.EtherTypeARP, op: arp.OperationReply,
			sha: senderMAC, spa: addr, tha: senderMAC, tpa: addr, len: 60,
		},
	}
	if len(got) != len(want) {
		t.Fatalf("captured %d gratuitous ARPs for %s, want %d: %+v", len(got), vip, len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
