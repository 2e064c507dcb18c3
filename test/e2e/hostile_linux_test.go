package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The hostile tests send every kind of bad VRRP packet the receive path has a
// reason for, from the client, to the group 224.0.0.18 (every node hears it)
// and to n1's own address, through raw sockets that write the IP header too
// (IP_HDRINCL), so the TTL is the test's to choose.
//
// Where each kind lands (RFC 9568 §7.1; vipd checks TTL, own address, then the
// codec: version, type, length against the address count, checksum,
// interval; then the VRID, then the instance's version):
//
//	ttl-1, ttl-64, ttl-254              ttl
//	truncated (4 bytes), header-7       truncated
//	count-above-length                  truncated
//	oversized (1000 trailing bytes)     oversized
//	count-below-length                  oversized
//	ipv6-address (count 1, 16 bytes)    oversized: the count, not the packet,
//	                                    says how long an address is, so an IPv6
//	                                    address in an IPv4 advert is a length
//	                                    mismatch; vipd's "family" reason can only
//	                                    come from the caller, never from the wire
//	jumbo (3000 bytes, fragmented)      oversized: read into a 2048-byte buffer
//	version-0, version-7                version (the codec)
//	version-2 (a valid VRRPv2 advert)   version (the instance speaks v3)
//	type-0, type-2, type-15             type
//	bad-checksum                        checksum
//	zero-interval                       interval
//	unknown-vrid (valid, priority 255)  unknown_vrid
//	garbage (random bytes)              whatever the first failing check says
//
// Accepted, as the RFC demands:
//
//	ipv6-address-as-4 (count 4, 16 bytes): four IPv4 addresses as far as
//	anyone can tell; a valid priority-1 advert for VRID 51. The Master
//	ignores it (it re-announces its VIPs, at most once a second), Backups
//	with preemption discard it.
//	stranger-priority-255 (TestHostileStrangerPriority255): a valid advert;
//	the Master steps down and nobody holds the VIP while the stranger
//	advertises, then for Master_Down_Interval computed from the stranger's
//	interval.
const (
	hostileVRID     = vrid
	hostileUnknown  = vrid + 1
	hostileMaxBurst = 30000 // packets in the flood, whatever the rate
)

// hostileKind is one kind of bad packet.
type hostileKind struct {
	name string
	// reason is the drop reason vipd counts it under, "" if vipd accepts
	// it, "?" if it depends on the bytes (garbage: see classifyHostile).
	reason string
	ttl    int
	jumbo  bool // sent through the kernel's fragmentation, not IP_HDRINCL
	build  func(rng *rand.Rand, src, dst netip.Addr) []byte
}

var vipAddr = lab.VIP.Addr()

// hostileAdvert is a valid VRRPv3 advert from src to dst with a priority of 1: if a
// kind that should be dropped were accepted, it would disturb no election.
func hostileAdvert(src, dst netip.Addr, vrid, prio uint8, addrs ...netip.Addr) []byte {
	if len(addrs) == 0 {
		addrs = []netip.Addr{vipAddr}
	}
	p := vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: prio, Interval: 10, Addresses: addrs}
	b, err := p.Marshal(src, dst)
	if err != nil {
		panic(err)
	}
	return b
}

// reChecksum writes the VRRPv3 IPv4 checksum (with pseudo-header, RFC 9568
// §5.2.8) of b into b, whatever b's count field says.
func reChecksum(b []byte, src, dst netip.Addr) []byte {
	b[6], b[7] = 0, 0
	var acc uint32
	add := func(p []byte) {
		for len(p) >= 2 {
			acc += uint32(p[0])<<8 | uint32(p[1])
			p = p[2:]
		}
		if len(p) == 1 {
			acc += uint32(p[0]) << 8
		}
	}
	s, d := src.As4(), dst.As4()
	add(s[:])
	add(d[:])
	acc += vrrp.ProtocolNumber + uint32(len(b))
	add(b)
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	binary.BigEndian.PutUint16(b[6:8], ^uint16(acc))
	return b
}

var v6Addr = netip.MustParseAddr("2001:db8::50")

func hostileKinds() []hostileKind {
	low := func(src, dst netip.Addr) []byte { return hostileAdvert(src, dst, hostileVRID, 1) }
	withTTL := func(name string, ttl int) hostileKind {
		return hostileKind{name: name, reason: drop.TTL.String(), ttl: ttl,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte { return low(s, d) }}
	}
	firstByte := func(name string, reason drop.Reason, b0 byte) hostileKind {
		return hostileKind{name: name, reason: reason.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := low(s, d)
				b[0] = b0
				return reChecksum(b, s, d)
			}}
	}
	v6 := v6Addr.As16()
	return []hostileKind{
		withTTL("ttl-1", 1),
		withTTL("ttl-64", 64),
		withTTL("ttl-254", 254),
		{name: "truncated", reason: drop.Truncated.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte { return low(s, d)[:4] }},
		{name: "header-7", reason: drop.Truncated.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte { return low(s, d)[:7] }},
		{name: "count-above-length", reason: drop.Truncated.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := low(s, d)
				b[3] = 3
				return reChecksum(b, s, d)
			}},
		{name: "oversized", reason: drop.Oversized.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				return reChecksum(append(low(s, d), make([]byte, 1000)...), s, d)
			}},
		{name: "count-below-length", reason: drop.Oversized.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := hostileAdvert(s, d, hostileVRID, 1, vipAddr, lab.NodeAddr(1).Addr(), lab.NodeAddr(2).Addr())
				b[3] = 1
				return reChecksum(b, s, d)
			}},
		{name: "ipv6-address", reason: drop.Oversized.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := append(low(s, d)[:8], v6[:]...)
				b[3] = 1
				return reChecksum(b, s, d)
			}},
		{name: "jumbo", reason: drop.Oversized.String(), ttl: 255, jumbo: true,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				return reChecksum(append(low(s, d), make([]byte, 3000)...), s, d)
			}},
		firstByte("version-0", drop.Version, 0x01),
		firstByte("version-7", drop.Version, 0x71),
		{name: "version-2", reason: drop.Version.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				p := vrrp.Packet{Version: 2, Type: vrrp.TypeAdvertisement, VRID: hostileVRID, Priority: 1, Interval: 1, Addresses: []netip.Addr{vipAddr}}
				b, err := p.Marshal(s, d)
				if err != nil {
					panic(err)
				}
				return b
			}},
		firstByte("type-0", drop.Type, 0x30),
		firstByte("type-2", drop.Type, 0x32),
		firstByte("type-15", drop.Type, 0x3f),
		{name: "bad-checksum", reason: drop.Checksum.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := low(s, d)
				b[7]++
				return b
			}},
		{name: "zero-interval", reason: drop.Interval.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := low(s, d)
				b[4], b[5] = 0, 0
				return reChecksum(b, s, d)
			}},
		{name: "unknown-vrid", reason: drop.UnknownVRID.String(), ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte { return hostileAdvert(s, d, hostileUnknown, 255) }},
		{name: "garbage", reason: "?", ttl: 255,
			build: func(rng *rand.Rand, s, d netip.Addr) []byte {
				b := make([]byte, 1+rng.IntN(200))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				return b
			}},
		{name: "ipv6-address-as-4", reason: "", ttl: 255,
			build: func(_ *rand.Rand, s, d netip.Addr) []byte {
				b := append(low(s, d)[:8], v6[:]...)
				b[3] = 4
				return reChecksum(b, s, d)
			}},
	}
}

// classifyHostile is what vipd should do with b, following RFC 9568 §7.1 in vipd's
// order: the drop reason, or "" if the advert is accepted by the instance
// on VRID 51 (a v3 instance).
func classifyHostile(b []byte, ttl int, src, dst netip.Addr) string {
	if ttl != 255 {
		return drop.TTL.String()
	}
	p, err := vrrp.Parse(b, src, dst)
	switch {
	case errors.Is(err, vrrp.ErrTruncated):
		return drop.Truncated.String()
	case errors.Is(err, vrrp.ErrTrailing):
		return drop.Oversized.String()
	case errors.Is(err, vrrp.ErrVersion):
		return drop.Version.String()
	case errors.Is(err, vrrp.ErrType):
		return drop.Type.String()
	case errors.Is(err, vrrp.ErrChecksum):
		return drop.Checksum.String()
	case errors.Is(err, vrrp.ErrInterval):
		return drop.Interval.String()
	case errors.Is(err, vrrp.ErrFamily):
		return drop.Family.String()
	case err != nil:
		return drop.Malformed.String()
	case p.VRID != hostileVRID:
		return drop.UnknownVRID.String()
	case p.Version != 3:
		return drop.Version.String()
	}
	return ""
}

// rawSender writes VRRP packets with an IP header of its own making.
type rawSender struct {
	src     netip.Addr
	ifindex int
	rc      *ipv4.RawConn
	// frag is a plain raw socket (no IP_HDRINCL) for packets longer than
	// the MTU, which the kernel fragments.
	frag *ipv4.PacketConn
}

func newRawSender(t *testing.T, n *lab.Node) *rawSender {
	t.Helper()
	s := &rawSender{src: n.Addr.Addr()}
	err := lab.InNS(n.NS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		s.ifindex = ifi.Index
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		if s.rc, err = ipv4.NewRawConn(c); err != nil {
			c.Close()
			return err
		}
		if err := s.rc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		// Nothing is read from these sockets: keep their receive queues
		// from holding the lab's adverts.
		if err := shrinkRecv(c); err != nil {
			return err
		}
		fc, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		s.frag = ipv4.NewPacketConn(fc)
		for _, f := range []func() error{
			func() error { return s.frag.SetTTL(255) },
			func() error { return s.frag.SetMulticastTTL(255) },
			func() error { return s.frag.SetMulticastInterface(ifi) },
			func() error { return shrinkRecv(fc) },
			func() error { return dontFragmentOff(fc) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw VRRP sockets in %s: %v", n.NS, err)
	}
	t.Cleanup(func() {
		s.rc.Close()
		s.frag.Close()
	})
	return s
}

// shrinkRecv makes c's receive buffer as small as the kernel allows:
// nothing is read from the sender's sockets.
func shrinkRecv(c net.PacketConn) error {
	return setsockopt(c, unix.SOL_SOCKET, unix.SO_RCVBUF, 1024)
}

// dontFragmentOff lets the kernel fragment what c sends (raw sockets
// default to path MTU discovery, which refuses packets over the MTU).
func dontFragmentOff(c net.PacketConn) error {
	return setsockopt(c, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
}

func setsockopt(c net.PacketConn, level, opt, value int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T is not a syscall.Conn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, value) }); err != nil {
		return err
	}
	return serr
}

// send writes payload to dst with the given TTL.
func (s *rawSender) send(dst netip.Addr, ttl int, jumbo bool, payload []byte) error {
	if jumbo {
		_, err := s.frag.WriteTo(payload, nil, &net.IPAddr{IP: dst.AsSlice()})
		return err
	}
	h := &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      0xc0,
		TotalLen: ipv4.HeaderLen + len(payload),
		TTL:      ttl,
		Protocol: vrrp.ProtocolNumber,
		Src:      s.src.AsSlice(),
		Dst:      dst.AsSlice(),
	}
	return s.rc.WriteTo(h, payload, &ipv4.ControlMessage{IfIndex: s.ifindex})
}

// hostileTally counts, per node, the packets expected under each reason ("" for
// accepted adverts).
type hostileTally map[*lab.Node]map[string]int

func (t hostileTally) add(n *lab.Node, reason string) {
	if t[n] == nil {
		t[n] = map[string]int{}
	}
	t[n][reason]++
}

// blastHostile sends the kinds round robin, alternately to the group and to
// target's address, count packets in all at about rate per second, for at
// most limit, and returns what each node should have counted.
func blastHostile(t *testing.T, l *lab.Lab, s *rawSender, rng *rand.Rand, kinds []hostileKind, target *lab.Node, count, rate int, limit time.Duration) (hostileTally, int) {
	t.Helper()
	want := hostileTally{}
	group := vrrp.IPv4Group
	start := time.Now()
	sent := 0
	for i := 0; i < count && time.Since(start) < limit; i++ {
		k := kinds[i%len(kinds)]
		dst := group
		if (i/len(kinds))%2 == 1 {
			dst = target.Addr.Addr()
		}
		b := k.build(rng, s.src, dst)
		if err := s.send(dst, k.ttl, k.jumbo, b); err != nil {
			t.Fatalf("send %s to %s: %v", k.name, dst, err)
		}
		sent++
		reason := k.reason
		if reason == "?" {
			reason = classifyHostile(b, k.ttl, s.src, dst)
		}
		if dst == group {
			for _, n := range l.Nodes {
				want.add(n, reason)
			}
		} else {
			want.add(target, reason)
		}
		// Pace: sleep whenever ahead of schedule, in steps of 25 packets.
		if i%25 == 24 {
			if ahead := time.Duration(i+1)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return want, sent
}

// hostileCounters is what the hostile test reads from a node's metrics.
type hostileCounters struct {
	drops         map[string]float64
	received      float64
	transitions   float64
	announcements float64
	splitBrain    float64
}

func readCounters(t *testing.T, n *lab.Node) hostileCounters {
	t.Helper()
	m := scrapeMetrics(t, n)
	return hostileCounters{
		drops:         m.byLabel("vipd_packets_dropped_total", "reason"),
		received:      m.sum("vipd_adverts_received_total"),
		transitions:   m.sum("vipd_transitions_total"),
		announcements: m.sum("vipd_announcements_sent_total"),
		splitBrain:    m.sum("vipd_split_brain"),
	}
}

// countDelta returns after − before per reason, "" standing for accepted adverts.
// Accepted adverts are only counted for the Master (n1): the Backups also
// accept its adverts.
func countDelta(n *lab.Node, before, after hostileCounters) map[string]int {
	d := map[string]int{}
	for r, v := range after.drops {
		if x := int(v - before.drops[r]); x != 0 {
			d[r] = x
		}
	}
	if x := int(after.received - before.received); x != 0 && n.Name == "n1" {
		d[""] = x
	}
	return d
}

// onMaster drops the accepted adverts from want for the Backups, which
// cannot tell them from the Master's (see countDelta).
func onMaster(n *lab.Node, want map[string]int) map[string]int {
	if n.Name == "n1" {
		return want
	}
	out := map[string]int{}
	for r, v := range want {
		if r != "" {
			out[r] = v
		}
	}
	return out
}

// settleCounters scrapes n until its hostileCounters stop moving (the receive loop
// has caught up), at most a few seconds.
func settleCounters(t *testing.T, n *lab.Node, before hostileCounters, want map[string]int) hostileCounters {
	t.Helper()
	total := 0
	for _, v := range want {
		total += v
	}
	var last hostileCounters
	lastSum := -1
	for range 40 {
		c := readCounters(t, n)
		sum := 0
		for _, v := range countDelta(n, before, c) {
			sum += v
		}
		if sum >= total || sum == lastSum {
			return c
		}
		last, lastSum = c, sum
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// checkCounted compares what n counted with what it was sent: every reason
// sent must have been counted (at least half of the packets: a socket
// buffer may overflow at this rate), none that was not sent, and never more
// than was sent.
func checkCounted(t *testing.T, what string, n *lab.Node, want map[string]int, got map[string]int) {
	t.Helper()
	for r, w := range want {
		label := r
		if label == "" {
			label = "accepted"
		}
		g := got[r]
		if g > w || g*2 < w {
			t.Errorf("%s: %s counted %d under %s, sent %d of that kind", what, n.Name, g, label, w)
		}
	}
	for r, g := range got {
		if _, ok := want[r]; !ok {
			label := r
			if label == "" {
				label = "accepted"
			}
			t.Errorf("%s: %s counted %d under %s, sent none of that kind", what, n.Name, g, label)
		}
	}
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		label := k
		if label == "" {
			label = "accepted"
		}
		fmt.Fprintf(&b, " %s=%d", label, m[k])
	}
	return strings.TrimSpace(b.String())
}

// hostileLab starts vipd with metrics on three nodes (150, 100, 50) and
// waits until n1 holds the VIP and the backups have heard it.
func hostileLab(t *testing.T) *lab.Lab {
	t.Helper()
	l := newLab(t, 3)
	for i := 2; i >= 0; i-- {
		startVipdMetrics(t, l, l.Nodes[i], instance(150-50*i, true))
	}
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(l.Nodes[0]))
	time.Sleep(3 * interval)
	return l
}

// TestHostilePackets sends each kind of bad packet on its own and checks
// the reason it is counted under on every node, then floods the segment
// with all of them for a few seconds: vipd stays up, no node changes state,
// the VIP stays on n1 and vipd's memory does not grow.
func TestHostilePackets(t *testing.T) {
	l := hostileLab(t)
	n1 := l.Nodes[0]
	s := newRawSender(t, l.Client)
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := hostileKinds()
	start := time.Now()

	t.Run("each kind", func(t *testing.T) {
		for _, k := range kinds {
			before := map[*lab.Node]hostileCounters{}
			for _, n := range l.Nodes {
				before[n] = readCounters(t, n)
			}
			// 60 to the group, 60 to n1: a burst well within a socket
			// buffer.
			want, _ := blastHostile(t, l, s, rng, []hostileKind{k}, n1, 120, 2000, 5*time.Second)
			var got []string
			for _, n := range l.Nodes {
				w := onMaster(n, want[n])
				after := settleCounters(t, n, before[n], w)
				d := countDelta(n, before[n], after)
				checkCounted(t, k.name, n, w, d)
				got = append(got, n.Name+": "+formatCounts(d))
			}
			t.Logf("%-20s %s", k.name, strings.Join(got, "; "))
		}
	})

	pids := map[*lab.Node]int{}
	rssBefore := map[*lab.Node]int{}
	for _, n := range l.Nodes {
		pid, err := n.PID()
		if err != nil {
			t.Fatal(err)
		}
		if rssBefore[n], err = rssKiB(pid); err != nil {
			t.Fatal(err)
		}
		pids[n] = pid
	}
	before := map[*lab.Node]hostileCounters{}
	for _, n := range l.Nodes {
		before[n] = readCounters(t, n)
	}
	sampler := sampleHolders(l, 20*time.Millisecond, time.Minute)
	floodStart := time.Now()
	want, sent := blastHostile(t, l, s, rng, kinds, n1, hostileMaxBurst, 5000, 5*time.Second)
	floodTook := time.Since(floodStart)
	time.Sleep(time.Second)
	samples := sampler.stop(t)
	t.Logf("flood: %d packets in %v (%.0f/s) to 224.0.0.18 and %s", sent, floodTook.Round(time.Millisecond), float64(sent)/floodTook.Seconds(), n1.Addr.Addr())
	for _, n := range l.Nodes {
		after, err := rssKiB(pids[n])
		if err != nil {
			t.Fatalf("%s: vipd's memory after the flood: %v", n.Name, err)
		}
		t.Logf("flood: %s's vipd VmRSS %d KiB before, %d KiB after", n.Name, rssBefore[n], after)
		// The receive path does not allocate per packet; what may grow
		// is the Go heap's headroom and the log's buffers. 8 MiB is far
		// below what a per-packet leak of this many packets would cost.
		if grew := after - rssBefore[n]; grew > 8<<10 {
			t.Errorf("%s's vipd grew by %d KiB (from %d to %d KiB) during the flood", n.Name, grew, rssBefore[n], after)
		}
	}
	for _, n := range l.Nodes {
		w := onMaster(n, want[n])
		after := settleCounters(t, n, before[n], w)
		d := countDelta(n, before[n], after)
		t.Logf("flood: %s sent %s", n.Name, formatCounts(w))
		t.Logf("flood: %s counted %s", n.Name, formatCounts(d))
		checkCounted(t, "flood", n, w, d)
		if n == n1 {
			// The accepted priority-1 adverts look like a lower Master:
			// n1 re-announces, at most once a second.
			t.Logf("flood: n1 sent %v gratuitous ARPs; vipd_split_brain %v right after", after.announcements-before[n].announcements, after.splitBrain)
		}
		if after.transitions != before[n].transitions {
			t.Errorf("%s: vipd_transitions_total went from %v to %v during the flood", n.Name, before[n].transitions, after.transitions)
		}
		if !n.Running() {
			t.Errorf("vipd on %s exited", n.Name)
		}
		for _, c := range stateChangesTo(t, n, "", start) {
			t.Errorf("%s changed state at %s: %s → %s (%s)", n.Name, c.Time.Format(time.StampMicro), c.From, c.To, c.Reason)
		}
	}
	for i, smp := range samples {
		if len(smp.holders) != 1 || smp.holders[0] != n1 {
			t.Errorf("sample %d at %s: the VIP's holders are %s, want only n1", i, smp.at.Format(time.StampMicro), lab.Names(smp.holders))
			break
		}
	}
}

// TestHostileStrangerPriority255 shows what a stranger's valid advert with
// priority 255 does, as RFC 9568 §6.4.2 and §6.4.3 demand: the Master steps
// down, and no vipd holds the VIP while the stranger advertises; after it
// falls silent the highest-priority node, whose Skew_Time is the shortest,
// takes over within Master_Down_Interval computed from the interval the
// stranger advertised, and no other node before it. One packet with a long
// interval is therefore enough to take the VIP away for three of its
// intervals (VRRPv3 has no authentication; unicast_peers is the defence).
func TestHostileStrangerPriority255(t *testing.T) {
	l := hostileLab(t)
	n1 := l.Nodes[0]
	s := newRawSender(t, l.Client)
	group := vrrp.IPv4Group

	// A stranger advertising every 100ms for a second.
	rogue := func(iv uint16) []byte {
		p := vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: hostileVRID, Priority: 255, Interval: iv, Addresses: []netip.Addr{vipAddr}}
		b, err := p.Marshal(s.src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	begin := time.Now()
	var last time.Time
	sampler := sampleHolders(l, 10*time.Millisecond, time.Minute)
	for range 10 {
		if err := s.send(group, 255, false, rogue(10)); err != nil {
			t.Fatal(err)
		}
		last = time.Now()
		time.Sleep(interval)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := l.WaitHolders(ctx, lab.VIP, lab.Only(n1)); err != nil {
		t.Fatalf("n1 did not take the VIP back after the stranger fell silent: %v", err)
	}
	back := time.Since(last)
	samples := sampler.stop(t)
	down := stateChangesTo(t, n1, "backup", begin)
	if len(down) == 0 || down[0].Reason != "higher priority seen" {
		t.Errorf("n1's transitions to backup after the stranger's first advert: %+v, want one for a higher priority", down)
	}
	none, at, _ := longestRun(samples, 10*time.Millisecond, func(h []*lab.Node) bool { return len(h) == 0 })
	mdi := lab.MasterDownInterval(150, interval)
	t.Logf("stranger at priority 255, every %v for 1s: nobody held the VIP for %v from %s; n1 held it again %v after the last advert (Master_Down_Interval %v)",
		interval, none.Round(time.Millisecond), at.Format(time.StampMicro), back.Round(time.Millisecond), mdi)
	if none < 500*time.Millisecond {
		t.Errorf("the VIP was without holder for only %v while the stranger advertised for 1s: did n1 ignore priority 255?", none)
	}

	// One single packet advertising a 1s interval: every node waits three
	// of the stranger's intervals.
	begin = time.Now()
	sampler = sampleHolders(l, 10*time.Millisecond, time.Minute)
	if err := s.send(group, 255, false, rogue(100)); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	ctx2, cancel2 := context.WithTimeout(context.Background(), patience)
	defer cancel2()
	if _, err := l.WaitHolders(ctx2, lab.VIP, func(h []*lab.Node) bool { return len(h) == 0 }); err != nil {
		t.Fatalf("n1 kept the VIP after a stranger's priority-255 advert: %v", err)
	}
	if _, err := l.WaitHolders(ctx2, lab.VIP, lab.Only(n1)); err != nil {
		t.Fatalf("n1 did not take the VIP back after one stranger's advert: %v", err)
	}
	back = time.Since(sent)
	samples = sampler.stop(t)
	none, _, _ = longestRun(samples, 10*time.Millisecond, func(h []*lab.Node) bool { return len(h) == 0 })
	mdi = lab.MasterDownInterval(150, time.Second)
	t.Logf("one stranger's advert (priority 255, interval 1s): nobody held the VIP for %v; n1 back after %v (Master_Down_Interval at 1s: %v)",
		none.Round(time.Millisecond), back.Round(time.Millisecond), mdi)
	// Every node now waits for the stranger, n1 the least (its Skew_Time
	// is the shortest): n1 and no other must take the VIP back, or it
	// moves twice.
	for _, n := range l.Nodes[1:] {
		for _, c := range stateChangesTo(t, n, "master", begin) {
			t.Errorf("%s became master at %s (%s) %v after the stranger's advert, before n1, whose Master_Down_Interval is the shortest: the VIP moved twice",
				n.Name, c.Time.Format(time.StampMicro), c.Reason, c.Time.Sub(sent).Round(time.Millisecond))
		}
	}
	for _, n := range l.Nodes {
		if !n.Running() {
			t.Errorf("vipd on %s exited", n.Name)
		}
	}
}
