package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Config sizes a lab.
type Config struct {
	// Nodes is the number of router nodes, 1 to 20; default 3.
	Nodes int
	// Dir receives each node's config, pid and log files. If empty, New
	// makes a temporary directory that Close removes.
	Dir string
	// StopTimeout bounds how long Node.Stop waits for a daemon to exit
	// after SIGTERM before killing it; default 5s.
	StopTimeout time.Duration
	// IPv6 turns IPv6 on in the nodes and the client (it is off
	// otherwise): each gets NodeAddr6(i) or ClientAddr6 beside its IPv4
	// address, and its eth0 a link-local address.
	IPv6 bool
	// DAD keeps IPv6 duplicate address detection on (with IPv6): a
	// link-local address is then tentative for a second or two after the
	// link comes up, at the start and after every RestoreLink, as on real
	// hosts. Off, every address is usable at once.
	DAD bool
	// Segments is the number of Ethernet segments, 1 to MaxSegments;
	// default 1. Segment 0 is br0, into which every node's and the
	// client's eth0 is plugged. Each further segment k is a bridge brK of
	// its own, into which every router node's ethK is plugged, at
	// SegmentAddr(k, i) (IPv4 only). The client is on segment 0 alone.
	Segments int
}

// Lab is a running set of namespaces: Switch holds the bridge br0, and every
// node and the client has an eth0 plugged into it (and, with
// Config.Segments, bridges br1… for the router nodes' eth1…).
type Lab struct {
	// Prefix is the random name every namespace of this lab starts with.
	Prefix string
	// Switch is the name of the namespace holding the bridge.
	Switch string
	// Nodes are the router nodes n1, n2, … at 192.0.2.11/24, .12, ….
	Nodes []*Node
	// Client is the client at 192.0.2.100/24 (and 2001:db8::100/64).
	Client *Node
	// Dir holds configs and logs.
	Dir string
	// IPv6 says whether the nodes and the client have IPv6 (Config.IPv6).
	IPv6 bool

	dad         bool
	ownDir      bool
	stopTimeout time.Duration
	sw          *netlink.Handle

	mu         sync.Mutex
	namespaces []string // created so far, in order
	closed     bool
}

// New builds a lab: a switch namespace with a bridge, cfg.Nodes router nodes
// and a client. On error, whatever was created is removed again.
func New(cfg Config) (l *Lab, err error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes < 1 || cfg.Nodes > 20 {
		return nil, fmt.Errorf("lab: %d nodes, want 1 to 20", cfg.Nodes)
	}
	if cfg.Segments == 0 {
		cfg.Segments = 1
	}
	if cfg.Segments < 1 || cfg.Segments > MaxSegments {
		return nil, fmt.Errorf("lab: %d segments, want 1 to %d", cfg.Segments, MaxSegments)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l = &Lab{
		Prefix:      "vl" + hex.EncodeToString(b[:]),
		Dir:         cfg.Dir,
		IPv6:        cfg.IPv6,
		dad:         cfg.DAD,
		stopTimeout: cfg.StopTimeout,
	}
	if l.Dir == "" {
		l.Dir, err = os.MkdirTemp("", "vipd-lab-")
		if err != nil {
			return nil, err
		}
		l.ownDir = true
	}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()

	l.Switch = l.Prefix + "-sw"
	// The switch has no address of its own: IPv6 stays off there even in
	// an IPv6 lab (the bridge forwards IPv6 all the same).
	if err := l.addNamespace(l.Switch, false); err != nil {
		return l, err
	}
	if l.sw, err = handleAt(l.Switch); err != nil {
		return l, err
	}
	// STP off and no forward delay so a replugged port forwards at once;
	// no multicast snooping so VRRP's 224.0.0.18 reaches every port even
	// without an IGMP querier (it is link-local and flooded anyway, and
	// TestMulticastFloods checks it).
	for k := range cfg.Segments {
		br := fmt.Sprintf("br%d", k)
		if _, err := run("ip", "-n", l.Switch, "link", "add", br, "type", "bridge",
			"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
			return l, err
		}
		if _, err := run("ip", "-n", l.Switch, "link", "set", br, "up"); err != nil {
			return l, err
		}
	}
	for i := 1; i <= cfg.Nodes; i++ {
		var addr6 netip.Prefix
		if l.IPv6 {
			addr6 = NodeAddr6(i)
		}
		n, err := l.addNode(fmt.Sprintf("n%d", i), NodeAddr(i), addr6)
		if err != nil {
			return l, err
		}
		l.Nodes = append(l.Nodes, n)
		for k := 1; k < cfg.Segments; k++ {
			if err := l.addSegmentLink(n, k, i); err != nil {
				return l, err
			}
			n.segments++
		}
	}
	var client6 netip.Prefix
	if l.IPv6 {
		client6 = ClientAddr6
	}
	if l.Client, err = l.addNode("client", ClientAddr, client6); err != nil {
		return l, err
	}
	if l.IPv6 && !l.dad {
		if err := l.waitLinkLocal(5 * time.Second); err != nil {
			return l, err
		}
	}
	return l, nil
}

// waitLinkLocal waits until every node and the client has a usable
// link-local address: the kernel adds it once the link has carrier.
func (l *Lab) waitLinkLocal(d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, n := range l.all() {
		for {
			_, err := n.LinkLocal()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after %v: %w", d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// addNamespace creates a namespace with loopback up. IPv6 is off unless ipv6
// is set: an IPv4 lab would only get DAD, router solicitations and MLD
// reports in every capture from it. With ipv6, duplicate address detection
// is off too unless the lab asked for it, so that every address is usable at
// once.
func (l *Lab) addNamespace(name string, ipv6 bool) error {
	if _, err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, name)
	l.mu.Unlock()
	sysctls := []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
	if ipv6 {
		sysctls = []string{"net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"}
		if !l.dad {
			sysctls = append(sysctls, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
		}
	}
	if _, err := run("ip", append([]string{"netns", "exec", name, "sysctl", "-q", "-w"}, sysctls...)...); err != nil {
		return err
	}
	_, err := run("ip", "-n", name, "link", "set", "lo", "up")
	return err
}

func (l *Lab) addNode(name string, addr, addr6 netip.Prefix) (_ *Node, err error) {
	n := &Node{
		Name:     name,
		NS:       l.Prefix + "-" + name,
		Addr:     addr,
		Addr6:    addr6,
		lab:      l,
		port:     name,
		segments: 1,
	}
	if name == "client" {
		n.NS = l.Prefix + "-c"
	}
	if err := l.addNamespace(n.NS, addr6.IsValid()); err != nil {
		return nil, err
	}
	if n.h, err = handleAt(n.NS); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.h.Close()
		}
	}()
	// A locally administered MAC that spells the node's address makes
	// captures and neighbour tables easy to read: 192.0.2.11 is
	// 02:00:c0:00:02:0b.
	a := addr.Addr().As4()
	n.mac = net.HardwareAddr{0x02, 0x00, a[0], a[1], a[2], a[3]}
	steps := [][]string{
		{"-n", n.NS, "link", "add", "eth0", "address", n.mac.String(), "type", "veth", "peer", "name", n.port, "netns", l.Switch},
		{"-n", n.NS, "addr", "add", addr.String(), "dev", "eth0"},
	}
	if addr6.IsValid() {
		// nodad: the lab's own addresses are usable at once, even with
		// Config.DAD.
		steps = append(steps, []string{"-n", n.NS, "addr", "add", addr6.String(), "dev", "eth0", "nodad"})
	}
	steps = append(steps, [][]string{
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", l.Switch, "link", "set", n.port, "master", "br0"},
		{"-n", l.Switch, "link", "set", n.port, "up"},
	}...)
	for _, s := range steps {
		if _, err := run("ip", s...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// addSegmentLink plugs router node n (the i-th) into segment k: its ethK,
// at SegmentAddr(k, i), is a veth pair whose other end (port nIeK) is on
// the switch's bridge brK.
func (l *Lab) addSegmentLink(n *Node, k, i int) error {
	iface, port, br := fmt.Sprintf("eth%d", k), fmt.Sprintf("%se%d", n.port, k), fmt.Sprintf("br%d", k)
	addr := SegmentAddr(k, i)
	a := addr.Addr().As4()
	mac := net.HardwareAddr{0x02, 0x00, a[0], a[1], a[2], a[3]}
	for _, s := range [][]string{
		{"-n", n.NS, "link", "add", iface, "address", mac.String(), "type", "veth", "peer", "name", port, "netns", l.Switch},
		{"-n", n.NS, "addr", "add", addr.String(), "dev", iface},
		{"-n", n.NS, "link", "set", iface, "up"},
		{"-n", l.Switch, "link", "set", port, "master", br},
		{"-n", l.Switch, "link", "set", port, "up"},
	} {
		if _, err := run("ip", s...); err != nil {
			return err
		}
	}
	return nil
}

func handleAt(ns string) (*netlink.Handle, error) {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return h, nil
}

// Close kills every daemon still running, deletes the namespaces and, if New
// made it, the directory. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	namespaces := l.namespaces
	l.mu.Unlock()

	var errs []error
	for _, n := range l.all() {
		if err := n.Kill(); err != nil && !errors.Is(err, ErrNotRunning) {
			errs = append(errs, err)
		}
		if n.h != nil {
			n.h.Close()
		}
	}
	if l.sw != nil {
		l.sw.Close()
	}
	// Nodes first, the switch last: deleting a namespace destroys its veth
	// ends, and with them their peers.
	for i := len(namespaces) - 1; i >= 0; i-- {
		if _, err := run("ip", "netns", "del", namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if l.ownDir {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *Lab) all() []*Node {
	all := append([]*Node(nil), l.Nodes...)
	if l.Client != nil {
		all = append(all, l.Client)
	}
	return all
}

// Holders returns the router nodes that have vip's address on eth0.
func (l *Lab) Holders(vip netip.Prefix) ([]*Node, error) {
	var holders []*Node
	for _, n := range l.Nodes {
		ok, err := n.Has(vip)
		if err != nil {
			return nil, err
		}
		if ok {
			holders = append(holders, n)
		}
	}
	return holders, nil
}

// WaitHolders polls Holders every 10ms until ok accepts the holders, and
// returns them; or the last holders seen and an error when ctx ends first.
func (l *Lab) WaitHolders(ctx context.Context, vip netip.Prefix, ok func([]*Node) bool) ([]*Node, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		h, err := l.Holders(vip)
		if err != nil {
			return nil, err
		}
		if ok(h) {
			return h, nil
		}
		select {
		case <-ctx.Done():
			return h, fmt.Errorf("waiting for holders of %s (now %s): %w", vip, Names(h), ctx.Err())
		case <-t.C:
		}
	}
}

// Only returns a WaitHolders condition: exactly n holds the VIP.
func Only(n *Node) func([]*Node) bool {
	return func(h []*Node) bool { return len(h) == 1 && h[0] == n }
}

// Sole is a WaitHolders condition: exactly one node holds the VIP.
func Sole(h []*Node) bool { return len(h) == 1 }

// NodeByMAC returns the node or client whose eth0 has mac, or nil.
func (l *Lab) NodeByMAC(mac net.HardwareAddr) *Node {
	for _, n := range l.all() {
		if n.mac.String() == mac.String() {
			return n
		}
	}
	return nil
}

// Names formats nodes as "n1, n2", or "none".
func Names(nodes []*Node) string {
	if len(nodes) == 0 {
		return "none"
	}
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}

// LogTails returns the last lines of every node's log, for failure output.
func (l *Lab) LogTails(lines int) string {
	var b strings.Builder
	for _, n := range l.Nodes {
		tail := n.LogTail(lines)
		if tail == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s (%s), last %d lines of %s\n%s", n.Name, n.NS, lines, n.LogPath(), tail)
		if !strings.HasSuffix(tail, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// BlockVRRP makes the switch drop VRRP (IPv4 protocol and IPv6 next header
// 112) between its ports, while everything else still flows: every router
// node then believes it is alone, as in a split brain. It needs nftables'
// nft.
func (l *Lab) BlockVRRP() error {
	return l.nft("block VRRP", `table bridge vipdlab {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ether type ip ip protocol 112 drop
		ether type ip6 ip6 nexthdr 112 drop
	}
}
`)
}

// UnblockVRRP undoes BlockVRRP.
func (l *Lab) UnblockVRRP() error { return l.DeleteSwitchTable("vipdlab") }

// SwitchRules loads an nftables ruleset into the switch's namespace, for
// what BlockVRRP and its kin do not cover (a share of VRRP lost, a heal in
// a given order); what names it in an error. The ruleset's tables are the
// caller's to delete with DeleteSwitchTable.
func (l *Lab) SwitchRules(what, ruleset string) error { return l.nft(what, ruleset) }

// DeleteSwitchTable deletes the switch's nftables bridge table name.
func (l *Lab) DeleteSwitchTable(name string) error {
	_, err := run("ip", "netns", "exec", l.Switch, "nft", "delete", "table", "bridge", name)
	return err
}

// BlockMulticastVRRP makes the switch drop VRRP sent to a multicast address
// (224.0.0.18, ff02::12 or any other) between its ports, while unicast VRRP
// and everything else still flow, as on a network without multicast: only
// unicast_peers can work. It needs nftables' nft.
func (l *Lab) BlockMulticastVRRP() error {
	return l.nft("block multicast VRRP", `table bridge vipdlab_mcast {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ether type ip ip protocol 112 ip daddr 224.0.0.0/4 counter drop
		ether type ip6 ip6 nexthdr 112 ip6 daddr ff00::/8 counter drop
	}
}
`)
}

// UnblockMulticastVRRP undoes BlockMulticastVRRP.
func (l *Lab) UnblockMulticastVRRP() error { return l.DeleteSwitchTable("vipdlab_mcast") }

// MulticastVRRPDropped returns how many multicast VRRP packets the switch
// dropped since BlockMulticastVRRP, IPv4 and IPv6 together: a test's proof
// that the daemons did send multicast that the rule then stopped.
func (l *Lab) MulticastVRRPDropped() (int, error) {
	out, err := run("ip", "netns", "exec", l.Switch, "nft", "list", "table", "bridge", "vipdlab_mcast")
	if err != nil {
		return 0, err
	}
	total := 0
	for _, f := range strings.Split(out, "counter packets ")[1:] {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil {
			return 0, fmt.Errorf("nft counter %q: %w", f, err)
		}
		total += n
	}
	return total, nil
}

// nft loads an nftables ruleset into the switch's namespace.
func (l *Lab) nft(what, ruleset string) error {
	cmd := exec.Command("ip", "netns", "exec", l.Switch, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %w: %s", what, l.Switch, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// The switch's tables of DropVRRP, DropVRRPMatching and HealFirst: each its
// own, so that none meddles with BlockVRRP's.
const (
	LossTable = "vipdloss"
	HealTable = "vipdheal"
)

// DropVRRPMatching makes the switch drop the VRRP packets that also match
// match (an nftables expression such as "ip saddr 192.0.2.11"), in a bridge
// table of its own called table; DeleteSwitchTable(table) ends it.
func (l *Lab) DropVRRPMatching(table, match string) error {
	return l.nft("nft table "+table, fmt.Sprintf(`table bridge %s {
	chain forward {
		type filter hook forward priority -1; policy accept;
		ether type ip ip protocol 112 %s counter drop
	}
}
`, table, match))
}

// DropVRRP makes the switch drop pct percent of VRRP packets, independently
// for every port a packet is forwarded to (the bridge's forward hook runs
// once per copy of a flooded multicast packet); DeleteSwitchTable(LossTable)
// ends it.
func (l *Lab) DropVRRP(pct int) error {
	return l.DropVRRPMatching(LossTable, fmt.Sprintf("numgen random mod 100 < %d", pct))
}

// HealFirst decides which advert crosses a healing partition first: once
// UnblockVRRP lets VRRP through, the switch still drops every advert until
// one that matches first (an nftables expression such as "ip saddr
// 192.0.2.11") has passed, and from then on none. Its chain runs after
// BlockVRRP's, so nothing it sees before the heal counts. It is a heal at
// the moment that advert is sent, without racing the adverts' phases.
// DeleteSwitchTable(HealTable) removes it.
func (l *Lab) HealFirst(first string) error {
	return l.nft("nft table "+HealTable, fmt.Sprintf(`table bridge %s {
	set healed {
		type ipv4_addr
		flags dynamic
	}
	chain forward {
		type filter hook forward priority 1; policy accept;
		ether type ip ip protocol 112 %s add @healed { ip daddr }
		ether type ip ip protocol 112 ip daddr != @healed counter drop
	}
}
`, HealTable, first))
}

// WaitNeigh polls the client's neighbour entry (ARP or NDP) for ip every
// poll until it names want's MAC address, or ctx ends.
func (l *Lab) WaitNeigh(ctx context.Context, ip netip.Addr, want *Node, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		mac, err := l.Client.NeighMAC(ip)
		if err == nil && mac.String() == want.MAC().String() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the client's neighbour entry for %s is %v (%v), not %s's %s: %w", ip, mac, err, want.Name, want.MAC(), ctx.Err())
		case <-t.C:
		}
	}
}
