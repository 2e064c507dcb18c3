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
}

// Lab is a running set of namespaces: Switch holds the bridge br0, and every
// node and the client has an eth0 plugged into it.
type Lab struct {
	// Prefix is the random name every namespace of this lab starts with.
	Prefix string
	// Switch is the name of the namespace holding the bridge.
	Switch string
	// Nodes are the router nodes n1, n2, … at 192.0.2.11/24, .12, ….
	Nodes []*Node
	// Client is the client at 192.0.2.100/24.
	Client *Node
	// Dir holds configs and logs.
	Dir string

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
	if err := l.addNamespace(l.Switch); err != nil {
		return l, err
	}
	if l.sw, err = handleAt(l.Switch); err != nil {
		return l, err
	}
	// STP off and no forward delay so a replugged port forwards at once;
	// no multicast snooping so VRRP's 224.0.0.18 reaches every port even
	// without an IGMP querier (it is link-local and flooded anyway, and
	// TestMulticastFloods checks it).
	if _, err := run("ip", "-n", l.Switch, "link", "add", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return l, err
	}
	if _, err := run("ip", "-n", l.Switch, "link", "set", "br0", "up"); err != nil {
		return l, err
	}
	for i := 1; i <= cfg.Nodes; i++ {
		n, err := l.addNode(fmt.Sprintf("n%d", i), NodeAddr(i))
		if err != nil {
			return l, err
		}
		l.Nodes = append(l.Nodes, n)
	}
	if l.Client, err = l.addNode("client", ClientAddr); err != nil {
		return l, err
	}
	return l, nil
}

// addNamespace creates a namespace with loopback up and IPv6 off: the lab is
// IPv4-only, and IPv6 would only add DAD, router solicitations and MLD
// reports to every capture.
func (l *Lab) addNamespace(name string) error {
	if _, err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, name)
	l.mu.Unlock()
	if _, err := run("ip", "netns", "exec", name, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return err
	}
	_, err := run("ip", "-n", name, "link", "set", "lo", "up")
	return err
}

func (l *Lab) addNode(name string, addr netip.Prefix) (_ *Node, err error) {
	n := &Node{
		Name: name,
		NS:   l.Prefix + "-" + name,
		Addr: addr,
		lab:  l,
		port: name,
	}
	if name == "client" {
		n.NS = l.Prefix + "-c"
	}
	if err := l.addNamespace(n.NS); err != nil {
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
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", l.Switch, "link", "set", n.port, "master", "br0"},
		{"-n", l.Switch, "link", "set", n.port, "up"},
	}
	for _, s := range steps {
		if _, err := run("ip", s...); err != nil {
			return nil, err
		}
	}
	return n, nil
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

// BlockVRRP makes the switch drop VRRP (IP protocol 112) between its ports,
// while everything else still flows: every router node then believes it is
// alone, as in a split brain. It needs nftables' nft.
func (l *Lab) BlockVRRP() error {
	const ruleset = `table bridge vipdlab {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ether type ip ip protocol 112 drop
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", l.Switch, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("block VRRP in %s: %w: %s", l.Switch, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// UnblockVRRP undoes BlockVRRP.
func (l *Lab) UnblockVRRP() error {
	_, err := run("ip", "netns", "exec", l.Switch, "nft", "delete", "table", "bridge", "vipdlab")
	return err
}
