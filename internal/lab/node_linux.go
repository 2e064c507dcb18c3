package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/netif"
)

// ErrNotRunning is returned by Stop and Kill when the node runs no daemon.
var ErrNotRunning = errors.New("no daemon running")

// Node is a namespace plugged into the lab's bridge by its eth0: a router
// node or the client.
type Node struct {
	// Name is short and stable: n1, n2, …, or client.
	Name string
	// NS is the network namespace's name (ip netns).
	NS string
	// Addr is eth0's primary address.
	Addr netip.Prefix
	// Addr6 is eth0's global IPv6 address in a lab with Config.IPv6, else
	// the zero Prefix.
	Addr6 netip.Prefix

	lab      *Lab
	port     string // the veth end of eth0 in the switch namespace
	mac      net.HardwareAddr
	h        *netlink.Handle // netlink in NS; netlink.Handle serialises requests
	segments int             // eth0… plugged into the segments 0…

	mu   sync.Mutex
	proc *process
}

type process struct {
	kind    string // "vipd" or "keepalived"
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{} // closed when the process has been waited for
	waitErr error         // valid once done is closed
}

// MAC returns eth0's hardware address.
func (n *Node) MAC() net.HardwareAddr { return n.mac }

// LogPath is the file that receives the output of the node's daemons, each
// start appending to it.
func (n *Node) LogPath() string { return filepath.Join(n.lab.Dir, n.Name+".log") }

// StartVipd writes configYAML to the node's directory and runs
// "BINARY run --config FILE --log-format json --log-level debug" in the node's
// namespace, its output appended to LogPath.
func (n *Node) StartVipd(binary, configYAML string) error {
	file := filepath.Join(n.lab.Dir, n.Name+".yaml")
	if err := os.WriteFile(file, []byte(configYAML), 0o600); err != nil {
		return err
	}
	return n.start("vipd", binary, "run", "--config", file, "--log-format", "json", "--log-level", "debug")
}

// StartKeepalived writes conf to the node's directory and runs Debian's
// keepalived in the node's namespace in the foreground, VRRP only, logging to
// the console (appended to LogPath) with its own pid files.
func (n *Node) StartKeepalived(conf string) error {
	base := n.keepalivedBase()
	if err := os.WriteFile(base+".conf", []byte(conf), 0o600); err != nil {
		return err
	}
	return n.start("keepalived", "keepalived",
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog",
		"--vrrp", "--no_bfd", "--dont-respawn",
		"--use-file", base+".conf",
		"--pid", base+".pid", "--vrrp_pid", base+"-vrrp.pid")
}

func (n *Node) start(kind, binary string, args ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		select {
		case <-n.proc.done:
		default:
			return fmt.Errorf("%s: %s already running", n.Name, n.proc.kind)
		}
	}
	log, err := os.OpenFile(n.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// ip netns exec execs the binary without forking, so the pid we get is
	// the daemon's own and SIGTERM reaches it.
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS, binary}, args...)...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A process group of its own: a terminal's Ctrl-C does not reach
		// the daemons (Close stops them), and Kill reaches keepalived's
		// children too.
		Setpgid: true,
		// Do not outlive the lab program if it is killed.
		Pdeathsig: syscall.SIGKILL,
	}
	fmt.Fprintf(log, "=== lab: %s starting %s %s %s\n", time.Now().Format(time.RFC3339Nano), kind, binary, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: start %s: %w", n.Name, kind, err)
	}
	p := &process{kind: kind, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		fmt.Fprintf(log, "=== lab: %s %s exited: %v\n", time.Now().Format(time.RFC3339Nano), kind, exitString(p.waitErr))
		log.Close()
		close(p.done)
	}()
	n.proc = p
	return nil
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// PID returns the process id of the node's running daemon: ip netns exec
// execs the daemon in place, so it is the process the lab started.
func (n *Node) PID() (int, error) {
	p := n.current()
	if p == nil || !n.Running() {
		return 0, fmt.Errorf("%s: no daemon running", n.Name)
	}
	return p.cmd.Process.Pid, nil
}

// Running reports whether the node's daemon is still running.
func (n *Node) Running() bool {
	p := n.current()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the node's daemon and waits for it to exit, at most
// the lab's StopTimeout (then it is killed). It returns how long the daemon
// took to exit, and an error unless it exited with status 0 in time.
func (n *Node) Stop() (time.Duration, error) {
	p := n.current()
	if p == nil {
		return 0, ErrNotRunning
	}
	select {
	case <-p.done:
		return 0, ErrNotRunning
	default:
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("%s: SIGTERM %s: %w", n.Name, p.kind, err)
	}
	t := time.NewTimer(n.lab.stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		took := time.Since(start)
		if p.waitErr != nil {
			return took, fmt.Errorf("%s: %s after SIGTERM: %w", n.Name, p.kind, p.waitErr)
		}
		return took, nil
	case <-t.C:
		_ = n.Kill()
		return time.Since(start), fmt.Errorf("%s: %s did not exit within %v of SIGTERM; killed", n.Name, p.kind, n.lab.stopTimeout)
	}
}

// Kill sends SIGKILL to the daemon's process group and waits for it to exit.
// It returns ErrNotRunning if there is nothing to kill.
func (n *Node) Kill() error {
	p := n.current()
	if p == nil {
		return ErrNotRunning
	}
	select {
	case <-p.done:
		return ErrNotRunning
	default:
	}
	// The group's id is the daemon's pid (Setpgid).
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: kill %s: %w", n.Name, p.kind, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: %s still running 5s after SIGKILL", n.Name, p.kind)
	}
}

// Pause freezes the node's daemon (SIGSTOP to its process group), as a
// paused VM or a starved CPU would: its timers and sockets stand still.
func (n *Node) Pause() error { return n.signalGroup(syscall.SIGSTOP) }

// Resume thaws a paused daemon (SIGCONT).
func (n *Node) Resume() error { return n.signalGroup(syscall.SIGCONT) }

func (n *Node) signalGroup(sig syscall.Signal) error {
	if !n.Running() {
		return ErrNotRunning
	}
	p := n.current()
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("%s: %v to %s: %w", n.Name, sig, p.kind, err)
	}
	return nil
}

// LogTail returns the last lines of the node's log, or "" if there is none.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	all := strings.Split(string(b), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n") + "\n"
}

// StateChange is a vipd "state change" log record.
type StateChange struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	VRID     int       `json:"vrid"`
	Iface    string    `json:"iface"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
}

// StateChanges parses the vipd JSON log records with "msg":"state change"
// from the node's log, oldest first.
func (n *Node) StateChanges() ([]StateChange, error) {
	var out []StateChange
	err := n.scanLog(`"state change"`, func(line []byte) {
		var rec struct {
			Msg string `json:"msg"`
			StateChange
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "state change" {
			out = append(out, rec.StateChange)
		}
	})
	return out, err
}

func (n *Node) link() (netlink.Link, error) {
	l, err := n.h.LinkByName("eth0")
	if err != nil {
		return nil, fmt.Errorf("%s: eth0: %w", n.Name, err)
	}
	return l, nil
}

// Has reports whether the node has prefix's address on eth0 (with any
// prefix length), or on a virtual MAC interface (a macvlan) of eth0.
func (n *Node) Has(prefix netip.Prefix) (bool, error) {
	link, err := n.link()
	if err != nil {
		return false, err
	}
	links := []netlink.Link{link}
	all, err := n.h.LinkList()
	if err != nil {
		return false, fmt.Errorf("%s: list links: %w", n.Name, err)
	}
	for _, l := range all {
		if l.Type() == "macvlan" && l.Attrs().ParentIndex == link.Attrs().Index {
			links = append(links, l)
		}
	}
	for _, l := range links {
		addrs, err := n.addrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return false, fmt.Errorf("%s: list addresses: %w", n.Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == prefix.Addr() {
				return true, nil
			}
		}
	}
	return false, nil
}

// addrList lists link's addresses, again while a daemon adding or removing
// addresses at the same time interrupts the dump.
func (n *Node) addrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	for range 9 {
		addrs, err := n.h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return addrs, err
		}
	}
	return n.h.AddrList(link, family)
}

// Ifaces returns the node's interfaces into the lab: eth0, and eth1… in a
// lab with Config.Segments.
func (n *Node) Ifaces() []string {
	out := make([]string, n.segments)
	for k := range out {
		out[k] = fmt.Sprintf("eth%d", k)
	}
	return out
}

// Addrs returns the addresses on the node's interface iface (eth0, or
// eth1… with Config.Segments).
func (n *Node) Addrs(iface string) ([]netip.Prefix, error) {
	link, err := n.h.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", n.Name, iface, err)
	}
	addrs, err := n.addrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("%s: list addresses of %s: %w", n.Name, iface, err)
	}
	return netif.Prefixes(addrs), nil
}

// NeighMAC returns the hardware address in the node's neighbour table (ARP
// for IPv4, NDP for IPv6) for ip on eth0, or an error if there is no
// resolved entry.
func (n *Node) NeighMAC(ip netip.Addr) (net.HardwareAddr, error) {
	link, err := n.link()
	if err != nil {
		return nil, err
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := n.h.NeighList(link.Attrs().Index, family)
	if err != nil {
		return nil, fmt.Errorf("%s: list neighbours: %w", n.Name, err)
	}
	for _, ne := range neighs {
		if a, ok := netip.AddrFromSlice(ne.IP); ok && a.Unmap() == ip {
			if len(ne.HardwareAddr) == 0 || ne.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
				return nil, fmt.Errorf("%s: neighbour %s unresolved (state %s)", n.Name, ip, neighState(ne.State))
			}
			return ne.HardwareAddr, nil
		}
	}
	return nil, fmt.Errorf("%s: no neighbour entry for %s", n.Name, ip)
}

// LinkLocal returns eth0's IPv6 link-local address, the source of the node's
// multicast VRRP adverts, or an error if it has none or it is still
// tentative.
func (n *Node) LinkLocal() (netip.Addr, error) {
	link, err := n.link()
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := n.addrList(link, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: list addresses: %w", n.Name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.IsLinkLocalUnicast() {
			continue
		}
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			return netip.Addr{}, fmt.Errorf("%s: link-local %s is tentative", n.Name, ip)
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%s: no IPv6 link-local address on eth0", n.Name)
}

func neighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "incomplete"}, {netlink.NUD_REACHABLE, "reachable"},
		{netlink.NUD_STALE, "stale"}, {netlink.NUD_DELAY, "delay"}, {netlink.NUD_PROBE, "probe"},
		{netlink.NUD_FAILED, "failed"}, {netlink.NUD_NOARP, "noarp"}, {netlink.NUD_PERMANENT, "permanent"},
	}
	var out []string
	for _, s2 := range names {
		if s&s2.bit != 0 {
			out = append(out, s2.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// CutLink sets the node's port on the bridge down, as if its cable were
// pulled: the node's eth0 loses carrier and nothing reaches or leaves it.
func (n *Node) CutLink() error { return n.setPort(n.port, false) }

// RestoreLink plugs the cable back in.
func (n *Node) RestoreLink() error { return n.setPort(n.port, true) }

// CutLinkOf is CutLink for the node's interface on another segment
// (Config.Segments): "eth1" is its port on br1.
func (n *Node) CutLinkOf(iface string) error { return n.setIfacePort(iface, false) }

// RestoreLinkOf plugs the cable of CutLinkOf back in.
func (n *Node) RestoreLinkOf(iface string) error { return n.setIfacePort(iface, true) }

func (n *Node) setIfacePort(iface string, up bool) error {
	var k int
	if _, err := fmt.Sscanf(iface, "eth%d", &k); err != nil || k < 0 || k >= n.segments {
		return fmt.Errorf("%s: no interface %q on the lab's segments (eth0..eth%d)", n.Name, iface, n.segments-1)
	}
	port := n.port
	if k > 0 {
		port = fmt.Sprintf("%se%d", n.port, k)
	}
	return n.setPort(port, up)
}

func (n *Node) setPort(name string, up bool) error {
	sw := n.lab.sw
	port, err := sw.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: bridge port %s: %w", n.Name, name, err)
	}
	if up {
		err = sw.LinkSetUp(port)
	} else {
		err = sw.LinkSetDown(port)
	}
	if err != nil {
		return fmt.Errorf("%s: set bridge port %s up=%t: %w", n.Name, name, up, err)
	}
	return nil
}

// IP runs "ip -n NS ARGS..." and returns its output.
func (n *Node) IP(args ...string) (string, error) {
	return run("ip", append([]string{"-n", n.NS}, args...)...)
}

// Log returns the whole of the node's log.
func (n *Node) Log() (string, error) {
	b, err := os.ReadFile(n.LogPath())
	return string(b), err
}

// Drop is a vipd debug log record of a dropped packet.
type Drop struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	Reason string    `json:"reason"`
}

// Drops parses the vipd JSON log records with "msg":"packet dropped" (logged
// at debug level, as StartVipd runs vipd) from the node's log, oldest first.
func (n *Node) Drops() ([]Drop, error) {
	var out []Drop
	err := n.scanLog(`"packet dropped"`, func(line []byte) {
		var rec struct {
			Msg string `json:"msg"`
			Drop
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "packet dropped" {
			out = append(out, rec.Drop)
		}
	})
	return out, err
}

// scanLog calls fn with every line of the node's log that contains substr.
func (n *Node) scanLog(substr string, fn func(line []byte)) error {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(substr)) {
			fn(sc.Bytes())
		}
	}
	return sc.Err()
}

// keepalivedComplaints are fragments of the messages keepalived 2.2 logs
// when it refuses or distrusts a received advert (vrrp.c's vrrp_check_packet
// and friends): a peer that interoperates never causes one.
var keepalivedComplaints = []string{
	"invalid", "bad ", "mismatch", "checksum", "ttl", "wrong", "received a ", "unexpected",
	"expected", "not a unicast peer", "packet too", "auth", "passwd", "interval updated",
	"ignoring",
}

// KeepalivedComplaints returns the lines of the node's log in which
// keepalived complained about an advert it received (see
// keepalivedComplaints); the lab's own lines are skipped.
func (n *Node) KeepalivedComplaints() ([]string, error) {
	log, err := n.Log()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "=== lab:") {
			continue
		}
		lower := strings.ToLower(line)
		for _, c := range keepalivedComplaints {
			if strings.Contains(lower, c) {
				out = append(out, line)
				break
			}
		}
	}
	return out, nil
}

// Dial connects to address from inside the node's namespace, e.g. to a
// metrics listener on the node's loopback.
func (n *Node) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := InNS(n.NS, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Metrics fetches http://listen/metrics from inside the node's namespace:
// vipd's Prometheus metrics when its configuration has metrics.listen.
func (n *Node) Metrics(ctx context.Context, listen string) (string, error) {
	body, err := HTTPGet(ctx, n.NS, "http://"+listen+"/metrics")
	if err != nil {
		return "", fmt.Errorf("%s: metrics: %w", n.Name, err)
	}
	return body, nil
}

// HTTPClient returns an HTTP client whose connections are opened inside
// namespace ns: the one way the tests and the bench reach a daemon's
// metrics or a service on a node's loopback. No keep-alives (a namespace
// per connection) and no compression (vipd answers sooner).
func HTTPClient(ns string, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := InNS(ns, func() error {
					d := net.Dialer{Timeout: timeout}
					var err error
					c, err = d.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
			DisableKeepAlives: true, DisableCompression: true, Proxy: nil,
		},
		Timeout: timeout,
	}
}

// HTTPGet GETs url from inside namespace ns and returns its body (up to 16
// MiB: 1000 instances' metrics are a few MiB); a status other than 200 is
// an error.
func HTTPGet(ctx context.Context, ns, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := HTTPClient(ns, 5*time.Second).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
