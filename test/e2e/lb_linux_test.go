package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lb"
)

// lbPort is the virtual server's port on the VIP; lbRealPort the real
// servers'.
const (
	lbPort     = 80
	lbRealPort = 7000
)

// lbRealServer is a tiny TCP server in a namespace that answers each
// connection with its name and the client address it sees, then closes.
type lbRealServer struct {
	t    *testing.T
	name string
	ns   string
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func lbStartRealServer(t *testing.T, name, ns, addr string) *lbRealServer {
	t.Helper()
	s := &lbRealServer{t: t, name: name, ns: ns, addr: addr}
	if err := s.start(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(s.kill)
	return s
}

func (s *lbRealServer) start() error {
	ln, err := svcListenIn(s.ns, s.addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln, s.conns = ln, map[net.Conn]bool{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return nil
}

// serve greets c with the name and the client address it sees, then
// echoes lines until the client closes or 20s pass.
func (s *lbRealServer) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "%s %s\n", s.name, c.RemoteAddr().(*net.TCPAddr).IP)
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s", s.name, line); err != nil {
			return
		}
	}
}

// closeListener stops accepting: the checks are refused, while the
// connections already open still answer.
func (s *lbRealServer) closeListener() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// kill closes the listener and every connection: the real server is gone.
func (s *lbRealServer) kill() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// lbAnswer is one connection to the virtual server, from the client.
type lbAnswer struct {
	name, peer string
	err        error
}

func lbConnect(l *lab.Lab, addr string) lbAnswer {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := l.Client.Dial(ctx, "tcp", addr)
	if err != nil {
		return lbAnswer{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return lbAnswer{err: err}
	}
	name, peer, _ := strings.Cut(strings.TrimSpace(line), " ")
	return lbAnswer{name: name, peer: peer}
}

// lbSpread opens n connections one after the other and counts them by the
// real server that answered; any failure fails t.
func lbSpread(t *testing.T, l *lab.Lab, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		a := lbConnect(l, addr)
		if a.err != nil {
			t.Fatalf("connection %d of %d to %s: %v (so far %v)", i+1, n, addr, a.err, got)
		}
		got[a.name]++
	}
	return got
}

func lbVirtualServers(t *testing.T, sock string) []control.VirtualServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, vss, err := control.StatusAll(ctx, sock)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return vss
}

// TestVirtualServer: two vipd nodes hold the VIP and balance VIP:80 over
// three real servers on three other hosts (masqueraded: they see the
// balancer's address). Connections spread over all three; a real server
// killed leaves within fall × interval and gets no new connection; the
// Master's cable cut moves the VIP and the new Master balances at once;
// below quorum the virtual server refuses connections and the Master's
// priority drops by the tracked weight, and both come back with the real
// servers.
func TestVirtualServer(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 5})
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for _, n := range []*lab.Node{n1, n2} {
		// Remote real servers need forwarding (vipd refuses without);
		// the real servers share the client's segment, so no redirects.
		if out, err := exec.Command("ip", "netns", "exec", n.NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
			"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0").CombinedOutput(); err != nil {
			t.Fatalf("harness: sysctl in %s: %v: %s", n.NS, err, out)
		}
	}
	rs := map[string]*lbRealServer{}
	var rsYAML []string
	for _, n := range l.Nodes[2:] {
		addr := n.Addr.Addr().String()
		rs[n.Name] = lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", addr, lbRealPort))
		rsYAML = append(rsYAML, fmt.Sprintf("{address: %s, port: %d}", addr, lbRealPort))
	}
	const (
		checkInterval = 100 * time.Millisecond
		checkFall     = 2
	)
	vsYAML := fmt.Sprintf(`  - name: web
    address: %s
    port: %d
    quorum: 2
    check: {tcp: {}, interval: %s, timeout: 90ms, fall: %d, rise: 1}
    real_servers: [%s]
`, lab.VIP.Addr(), lbPort, checkInterval, checkFall, strings.Join(rsYAML, ", "))
	config := func(prio int) svcConfig {
		in := svcInst(prio, true)
		in.TrackVirtualServers = []svcTrack{{Name: "web", Weight: -60}}
		return svcConfig{Metrics: metricsListen, Instances: []svcInstance{in}, VirtualServers: vsYAML}
	}
	c1 := startSvc(t, l, n1, config(150))
	startSvc(t, l, n2, config(100))
	holder := func(what string, n *lab.Node) {
		t.Helper()
		svcWaitFor(t, what, patience, func() (bool, string) {
			hs, err := l.Holders(lab.VIP)
			if err != nil {
				t.Fatalf("harness: %v", err)
			}
			return len(hs) == 1 && hs[0] == n, fmt.Sprintf("VIP on %v", hs)
		})
	}
	// healthy waits until the virtual server has want healthy real
	// servers, then for the table replacement that follows a change
	// (vipd debounces bursts for 20ms).
	healthy := func(what string, sock string, want int) {
		t.Helper()
		svcWaitFor(t, what, patience, func() (bool, string) {
			vss := lbVirtualServers(t, sock)
			return len(vss) == 1 && vss[0].Healthy == want, fmt.Sprintf("%+v", vss)
		})
		time.Sleep(100 * time.Millisecond)
	}
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
	holder("n1 holding the VIP", n1)
	healthy("n1 seeing three healthy real servers", c1.Socket, 3)
	if st := svcStatus(t, c1.Socket, "api"); st.Priority != 150 {
		t.Errorf("n1's priority %d at quorum, want 150", st.Priority)
	}

	// Spread: round robin over three.
	got := lbSpread(t, l, vip, 30)
	for _, n := range l.Nodes[2:] {
		if got[n.Name] < 5 {
			t.Errorf("spread %v: %s got fewer than 5 of 30", got, n.Name)
		}
	}
	if a := lbConnect(l, vip); a.err != nil || a.peer != n1.Addr.Addr().String() {
		t.Errorf("a remote real server saw the client as %q (%v), want the balancer's address %s (masquerade)", a.peer, a.err, n1.Addr.Addr())
	}
	if v := svcMetric(t, n1, metricsListen, "vipd_virtual_server_healthy_real_servers", "virtual_server", "web"); v != 3 {
		t.Errorf("vipd_virtual_server_healthy_real_servers = %v, want 3", v)
	}

	// A real server killed leaves within fall × interval.
	dead := l.Nodes[2]
	killed := time.Now()
	rs[dead.Name].kill()
	healthy("n1 to take the killed real server out", c1.Socket, 2)
	left := time.Since(killed) - 100*time.Millisecond
	t.Logf("the killed real server left n1's table after %v (fall × interval = %v)", left.Round(time.Millisecond), checkFall*checkInterval)
	if left > checkFall*checkInterval+time.Second {
		t.Errorf("the killed real server left after %v, beyond fall × interval (%v) and a second of slack", left, checkFall*checkInterval)
	}
	got = lbSpread(t, l, vip, 20)
	if got[dead.Name] != 0 || len(got) != 2 {
		t.Errorf("after the kill: spread %v, want the two live real servers only", got)
	}
	if v := svcMetric(t, n1, metricsListen, "vipd_real_server_up", "virtual_server", "web", "address", dead.Addr.Addr().String(), "port", fmt.Sprint(lbRealPort)); v != 0 {
		t.Errorf("vipd_real_server_up of the killed one = %v, want 0", v)
	}

	// The Master's cable cut: n2 balances as soon as it holds the VIP.
	if err := n1.CutLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	holder("n2 to take the VIP over", n2)
	got = lbSpread(t, l, vip, 20)
	if got[dead.Name] != 0 || len(got) != 2 {
		t.Errorf("through n2: spread %v, want the two live real servers only", got)
	}
	if a := lbConnect(l, vip); a.err != nil || a.peer != n2.Addr.Addr().String() {
		t.Errorf("through n2 the real server saw %q (%v), want n2's address", a.peer, a.err)
	}
	if err := n1.RestoreLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	holder("n1 to preempt once its cable is back", n1)
	healthy("n1 seeing the two live real servers again", c1.Socket, 2)

	// Below quorum: refused at once, and n1's priority drops by 60.
	rs[l.Nodes[3].Name].kill()
	healthy("n1 to see one healthy real server", c1.Socket, 1)
	svcWaitFor(t, "n1's priority to follow the quorum down", patience, func() (bool, string) {
		st := svcStatus(t, c1.Socket, "api")
		return st.Priority == 90, fmt.Sprintf("priority %d, failing %v", st.Priority, st.FailingChecks)
	})
	if v := svcMetric(t, n1, metricsListen, "vipd_virtual_server_up", "virtual_server", "web"); v != 0 {
		t.Errorf("vipd_virtual_server_up below quorum = %v, want 0", v)
	}
	start := time.Now()
	if a := lbConnect(l, vip); !errors.Is(a.err, syscall.ECONNREFUSED) {
		t.Errorf("below quorum: answer %+v, want connection refused", a)
	} else if d := time.Since(start); d > time.Second {
		t.Errorf("below quorum the refusal took %v", d)
	}
	holder("n1 to stay Master at 90 over n2 at 40", n1)

	if err := rs[dead.Name].start(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	svcWaitFor(t, "n1's priority back at quorum", patience, func() (bool, string) {
		st := svcStatus(t, c1.Socket, "api")
		return st.Priority == 150, fmt.Sprintf("priority %d", st.Priority)
	})
	got = lbSpread(t, l, vip, 10)
	if got[dead.Name] == 0 || got[l.Nodes[4].Name] == 0 {
		t.Errorf("back at quorum: spread %v, want the revived and the live real server", got)
	}
}

// lbHeld is an open connection to the virtual server and the real server
// that answered it.
type lbHeld struct {
	c    net.Conn
	r    *bufio.Reader
	name string
}

func lbHold(t *testing.T, l *lab.Lab, addr string) *lbHeld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := l.Client.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	h := &lbHeld{c: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := h.r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	h.name, _, _ = strings.Cut(line, " ")
	return h
}

// echo sends a line and reads the real server's echo.
func (h *lbHeld) echo() (string, error) {
	_ = h.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(h.c, "ping\n"); err != nil {
		return "", err
	}
	line, err := h.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestVirtualServerLocalAndGone: one vipd node balances over a real server
// on itself (which sees the client's address) and two on other hosts
// (which see the balancer's). A connection opened from the node itself is
// balanced too. A real server that stops accepting is taken out, and its
// established connections are flushed from conntrack: the client's next
// packet is reset at once instead of reaching a dead real server; the
// connections to the others go on.
func TestVirtualServerLocalAndGone(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 3})
	l := r.l
	n1 := l.Nodes[0]
	if out, err := exec.Command("ip", "netns", "exec", n1.NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0").CombinedOutput(); err != nil {
		t.Fatalf("harness: sysctl in %s: %v: %s", n1.NS, err, out)
	}
	rs := map[string]*lbRealServer{}
	var rsYAML []string
	for _, n := range l.Nodes {
		addr := n.Addr.Addr().String()
		rs[n.Name] = lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", addr, lbRealPort))
		rsYAML = append(rsYAML, fmt.Sprintf("{address: %s, port: %d}", addr, lbRealPort))
	}
	vsYAML := fmt.Sprintf(`  - name: web
    address: %s
    port: %d
    check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}
    real_servers: [%s]
`, lab.VIP.Addr(), lbPort, strings.Join(rsYAML, ", "))
	c1 := startSvc(t, l, n1, svcConfig{Metrics: metricsListen, Instances: []svcInstance{svcInst(150, true)}, VirtualServers: vsYAML})
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
	svcWaitState(t, c1.Socket, "api", "master")
	svcWaitFor(t, "three healthy real servers", patience, func() (bool, string) {
		vss := lbVirtualServers(t, c1.Socket)
		return len(vss) == 1 && vss[0].Healthy == 3, fmt.Sprintf("%+v", vss)
	})
	time.Sleep(100 * time.Millisecond)
	if vss := lbVirtualServers(t, c1.Socket); !vss[0].RealServers[0].Local || vss[0].RealServers[1].Local {
		t.Errorf("status: %+v, want only n1's real server local", vss[0].RealServers)
	}

	peers := map[string]string{}
	for i := 0; i < 6; i++ {
		a := lbConnect(l, vip)
		if a.err != nil {
			t.Fatalf("connection %d: %v", i, a.err)
		}
		peers[a.name] = a.peer
	}
	want := map[string]string{n1.Name: lab.ClientAddr.Addr().String(), l.Nodes[1].Name: n1.Addr.Addr().String(), l.Nodes[2].Name: n1.Addr.Addr().String()}
	for name, peer := range want {
		if peers[name] != peer {
			t.Errorf("real server %s saw the client as %q, want %s (local: the client; remote: the balancer)", name, peers[name], peer)
		}
	}

	// From the node itself (the output hook).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c, err := n1.Dial(ctx, "tcp", vip)
	cancel()
	if err != nil {
		t.Fatalf("from n1 itself: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line == "" {
		t.Errorf("from n1 itself: %q, %v", line, err)
	}
	c.Close()

	// Hold a connection to each real server.
	held := map[string]*lbHeld{}
	for i := 0; i < 12 && len(held) < 3; i++ {
		h := lbHold(t, l, vip)
		if held[h.name] == nil {
			held[h.name] = h
		}
	}
	gone := l.Nodes[2]
	if len(held) != 3 {
		t.Fatalf("connections held to %d real servers, want 3", len(held))
	}
	rs[gone.Name].closeListener()
	svcWaitFor(t, "the gone real server's connections flushed", patience, func() (bool, string) {
		recs := svcLogRecords(t, n1, "flushed a gone real server's connections")
		return len(recs) > 0, fmt.Sprint(recs)
	})
	start := time.Now()
	line, err := held[gone.Name].echo()
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("the flushed connection still reached the gone real server: %q", line)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("the flushed connection hung (%v) instead of being reset", err)
	default:
		t.Logf("the flushed connection failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	for _, n := range l.Nodes[:2] {
		if line, err := held[n.Name].echo(); err != nil || !strings.HasPrefix(line, n.Name+" ping") {
			t.Errorf("the established connection to %s: %q, %v; want it untouched", n.Name, line, err)
		}
	}

	// A crash leaves the table; vipd cleanup removes it.
	if err := n1.Kill(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if !lbTablePresent(t, n1) {
		t.Error("after a SIGKILL the table is gone; want it left for vipd cleanup")
	}
	if out, err := exec.Command("ip", "netns", "exec", n1.NS, vipdBin, "cleanup", "--config", svcConfigPath(t, n1)).CombinedOutput(); err != nil {
		t.Errorf("vipd cleanup: %v: %s", err, out)
	}
	if lbTablePresent(t, n1) {
		t.Error("vipd cleanup left the table")
	}
}

// lbTablePresent says whether vipd's nftables table is in n's namespace.
func lbTablePresent(t *testing.T, n *lab.Node) bool {
	t.Helper()
	var present bool
	err := lab.InNS(n.NS, func() error {
		k, err := lb.NewLinux()
		if err != nil {
			return err
		}
		defer k.Close()
		present, err = k.Present()
		return err
	})
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return present
}

// TestVirtualServerReload: a reload that adds a real server and removes
// another keeps every established connection, the removed one's included
// (it drains); new connections go to the new set. A reload while the
// forwarding that remote real servers need is off is refused, naming the
// sysctl, and the running table stays.
func TestVirtualServerReload(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 3})
	l := r.l
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	sysctl := func(kv ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", n1.NS, "sysctl", "-q", "-w"}, kv...)...).CombinedOutput(); err != nil {
			t.Fatalf("harness: sysctl in %s: %v: %s", n1.NS, err, out)
		}
	}
	sysctl("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
	for _, n := range l.Nodes {
		lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	config := func(rss ...*lab.Node) svcConfig {
		var ys []string
		for _, n := range rss {
			ys = append(ys, fmt.Sprintf("{address: %s, port: %d}", n.Addr.Addr(), lbRealPort))
		}
		return svcConfig{Socket: svcSocket(l, n1), Instances: []svcInstance{svcInst(150, true)}, VirtualServers: fmt.Sprintf(`  - name: web
    address: %s
    port: %d
    check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}
    real_servers: [%s]
`, lab.VIP.Addr(), lbPort, strings.Join(ys, ", "))}
	}
	c1 := startSvc(t, l, n1, config(n2, n3))
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
	svcWaitState(t, c1.Socket, "api", "master")
	healthy := func(what string, want int) {
		t.Helper()
		svcWaitFor(t, what, patience, func() (bool, string) {
			vss := lbVirtualServers(t, c1.Socket)
			return len(vss) == 1 && vss[0].Healthy == want && len(vss[0].RealServers) == want, fmt.Sprintf("%+v", vss)
		})
		time.Sleep(100 * time.Millisecond)
	}
	healthy("n2 and n3 healthy", 2)
	held := map[string]*lbHeld{}
	for i := 0; i < 8 && len(held) < 2; i++ {
		h := lbHold(t, l, vip)
		if held[h.name] == nil {
			held[h.name] = h
		}
	}
	if len(held) != 2 {
		t.Fatalf("connections held to %d real servers, want 2", len(held))
	}

	svcWriteConfig(t, n1, config(n1, n2).YAML())
	if code, out, errOut := svcRunVipd(t, "reload", "--socket", c1.Socket); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, errOut)
	}
	healthy("n1 and n2 after the reload", 2)
	for _, n := range []*lab.Node{n2, n3} {
		if line, err := held[n.Name].echo(); err != nil || !strings.HasPrefix(line, n.Name+" ping") {
			t.Errorf("the connection to %s across the reload: %q, %v; want it untouched", n.Name, line, err)
		}
	}
	got := lbSpread(t, l, vip, 10)
	if got[n3.Name] != 0 || got[n1.Name] == 0 || got[n2.Name] == 0 {
		t.Errorf("after the reload: spread %v, want n1 and n2 only", got)
	}

	sysctl("net.ipv4.ip_forward=0")
	code, out, errOut := svcRunVipd(t, "reload", "--socket", c1.Socket)
	if code == 0 || !strings.Contains(out+errOut, "net.ipv4.ip_forward=1") {
		t.Errorf("reload with forwarding off: exit %d, output %q; want a refusal naming net.ipv4.ip_forward", code, out+errOut)
	}
	if vss := lbVirtualServers(t, c1.Socket); len(vss) != 1 || vss[0].Healthy != 2 || vss[0].Error != "" {
		t.Errorf("after the refused reload: %+v, want the running virtual server as it was", vss)
	}
	// A clean stop removes the table.
	if !lbTablePresent(t, n1) {
		t.Fatal("no table while vipd runs")
	}
	if _, err := n1.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if lbTablePresent(t, n1) {
		t.Error("a clean stop left the table")
	}
}

// TestVirtualServerIPv6: the same over IPv6, with IPv6 forwarding on for
// the remote real servers: connections spread, a local real server sees
// the client, the remote ones the balancer.
func TestVirtualServerIPv6(t *testing.T) {
	r := newRigOf(t, lab.VIP6, lab.Config{Nodes: 3, IPv6: true})
	l := r.l
	n1 := l.Nodes[0]
	if out, err := exec.Command("ip", "netns", "exec", n1.NS, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1").CombinedOutput(); err != nil {
		t.Fatalf("harness: sysctl in %s: %v: %s", n1.NS, err, out)
	}
	var ys []string
	for _, n := range l.Nodes {
		ap := netip.AddrPortFrom(n.Addr6.Addr(), lbRealPort).String()
		lbStartRealServer(t, n.Name, n.NS, ap)
		ys = append(ys, fmt.Sprintf("{address: '%s', port: %d}", n.Addr6.Addr(), lbRealPort))
	}
	in := svcInst(150, true)
	in.VIPs = []netip.Prefix{lab.VIP6}
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{in}, VirtualServers: fmt.Sprintf(`  - name: web6
    address: '%s'
    port: %d
    check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}
    real_servers: [%s]
`, lab.VIP6.Addr(), lbPort, strings.Join(ys, ", "))})
	svcWaitState(t, c1.Socket, "api", "master")
	svcWaitFor(t, "three healthy real servers", patience, func() (bool, string) {
		vss := lbVirtualServers(t, c1.Socket)
		return len(vss) == 1 && vss[0].Healthy == 3, fmt.Sprintf("%+v", vss)
	})
	time.Sleep(100 * time.Millisecond)
	vip := netip.AddrPortFrom(lab.VIP6.Addr(), lbPort).String()
	peers := map[string]string{}
	var lastErr error
	// The client may still be resolving the VIP's neighbour entry.
	svcWaitFor(t, "the client to reach the VIP", patience, func() (bool, string) {
		a := lbConnect(l, vip)
		lastErr = a.err
		return a.err == nil, fmt.Sprint(lastErr)
	})
	for i := 0; i < 9; i++ {
		a := lbConnect(l, vip)
		if a.err != nil {
			t.Fatalf("connection %d: %v", i, a.err)
		}
		peers[a.name] = a.peer
	}
	want := map[string]string{n1.Name: lab.ClientAddr6.Addr().String(), l.Nodes[1].Name: n1.Addr6.Addr().String(), l.Nodes[2].Name: n1.Addr6.Addr().String()}
	for name, peer := range want {
		if peers[name] != peer {
			t.Errorf("real server %s saw the client as %q, want %s", name, peers[name], peer)
		}
	}
}
