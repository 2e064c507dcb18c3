package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// proxyVS is a proxy virtual server on VIP:lbPort over the nodes' real
// servers (at lbRealPort), with extra fields.
func proxyVS(name string, vip netip.Addr, rss []netip.Addr, extra ...string) string {
	var ys []string
	for _, a := range rss {
		ys = append(ys, fmt.Sprintf("{address: '%s', port: %d}", a, lbRealPort))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    address: '%s'\n    port: %d\n    mode: proxy\n", name, vip, lbPort)
	for _, e := range extra {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	fmt.Fprintf(&b, "    real_servers: [%s]\n", strings.Join(ys, ", "))
	return b.String()
}

func nodeAddrs(ns []*lab.Node) []netip.Addr {
	var out []netip.Addr
	for _, n := range ns {
		out = append(out, n.Addr.Addr())
	}
	return out
}

// proxyHealthy waits until the only virtual server has want healthy real
// servers, and a moment for the proxy's update.
func proxyHealthy(t *testing.T, sock string, want int) {
	t.Helper()
	svcWaitFor(t, fmt.Sprintf("%d healthy real servers", want), patience, func() (bool, string) {
		vss := lbVirtualServers(t, sock)
		return len(vss) == 1 && vss[0].Healthy == want && len(vss[0].RealServers) == want && vss[0].Error == "", fmt.Sprintf("%+v", vss)
	})
	time.Sleep(100 * time.Millisecond)
}

// TestProxySpread: a proxy virtual server on one node, no forwarding
// sysctl, spreads connections over three real servers on other hosts:
// round_robin in turn, each seeing the node's address; after a reload to
// least_conn, held connections go to the real server with the fewest, and
// the status counts them.
func TestProxySpread(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 4})
	l := r.l
	n1 := l.Nodes[0]
	for _, n := range l.Nodes[1:] {
		lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	// A lenient check: a real server flapping on a loaded machine would
	// skew the exact spreads below.
	check := "check: {tcp: {}, interval: 200ms, timeout: 150ms, fall: 3, rise: 1}"
	config := func(sched string) svcConfig {
		return svcConfig{Socket: svcSocket(l, n1), Metrics: metricsListen, Instances: []svcInstance{svcInst(150, true)},
			VirtualServers: proxyVS("web", lab.VIP.Addr(), nodeAddrs(l.Nodes[1:]), "scheduler: "+sched, check)}
	}
	c1 := startSvc(t, l, n1, config("round_robin"))
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 3)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)

	got := lbSpread(t, l, vip, 30)
	for _, n := range l.Nodes[1:] {
		if got[n.Name] != 10 {
			t.Errorf("round_robin spread %v, want 10 each", got)
			break
		}
	}
	if a := lbConnect(l, vip); a.err != nil || a.peer != n1.Addr.Addr().String() {
		t.Errorf("the real server saw the client as %q (%v), want the proxy node's %s", a.peer, a.err, n1.Addr.Addr())
	}
	total := 0.0
	for _, n := range l.Nodes[1:] {
		total += svcMetric(t, n1, metricsListen, "vipd_real_server_connections_total", "virtual_server", "web", "address", n.Addr.Addr().String())
	}
	if total != 31 {
		t.Errorf("vipd_real_server_connections_total adds up to %v, want the 31 connections", total)
	}

	svcWriteConfig(t, n1, config("least_conn").YAML())
	if code, out, errOut := svcRunVipd(t, "reload", "--socket", c1.Socket); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, errOut)
	}
	time.Sleep(200 * time.Millisecond)
	// Two held on the first real server that answers: the next ones go
	// to the two others until each has two.
	held := map[string]int{}
	for range 6 {
		h := lbHold(t, l, vip)
		held[h.name]++
	}
	for _, n := range l.Nodes[1:] {
		if held[n.Name] != 2 {
			t.Errorf("least_conn: 6 held connections went %v, want 2 each", held)
			break
		}
	}
	vss := lbVirtualServers(t, c1.Socket)
	live := uint64(0)
	for _, rs := range vss[0].RealServers {
		if rs.LiveConnections != nil {
			live += *rs.LiveConnections
		}
	}
	if vss[0].Mode != "proxy" || vss[0].Scheduler != "least_conn" || live != 6 {
		t.Errorf("status: mode %q scheduler %q, %d live connections; want proxy, least_conn, 6", vss[0].Mode, vss[0].Scheduler, live)
	}
	if v := svcMetric(t, n1, metricsListen, "vipd_real_server_connections", "virtual_server", "web", "address", l.Nodes[1].Addr.Addr().String()); v != 2 {
		t.Errorf("vipd_real_server_connections = %v, want 2", v)
	}
}

// TestProxyRealServerKilled: clients open connections continuously while a
// real server is killed; its check notices only after fall × interval,
// and meanwhile the proxy's connects to it are refused and retried on the
// next real server. The only failures are connections that were open on
// it at the instant it died.
func TestProxyRealServerKilled(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 4})
	l := r.l
	n1 := l.Nodes[0]
	rs := map[string]*lbRealServer{}
	for _, n := range l.Nodes[1:] {
		rs[n.Name] = lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	// A slow check: 1.5 s in which only the retries keep clients away.
	c1 := startSvc(t, l, n1, svcConfig{Metrics: metricsListen, Instances: []svcInstance{svcInst(150, true)},
		VirtualServers: proxyVS("web", lab.VIP.Addr(), nodeAddrs(l.Nodes[1:]), "check: {tcp: {}, interval: 500ms, timeout: 400ms, fall: 3, rise: 1}")})
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 3)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)

	const workers = 4
	var (
		ok, failed atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		mu         sync.Mutex
		errs       []string
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if a := lbConnect(l, vip); a.err != nil {
					failed.Add(1)
					mu.Lock()
					errs = append(errs, a.err.Error())
					mu.Unlock()
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	rs[l.Nodes[2].Name].kill()
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	retries := svcMetric(t, n1, metricsListen, "vipd_virtual_server_retries_total", "virtual_server", "web")
	fails := svcMetric(t, n1, metricsListen, "vipd_real_server_connect_failures_total", "virtual_server", "web", "address", l.Nodes[2].Addr.Addr().String())
	t.Logf("%d connections answered, %d failed %v; %v connects retried, %v refused by the killed real server", ok.Load(), failed.Load(), errs, retries, fails)
	if failed.Load() > workers {
		t.Errorf("%d failed connections, more than the %d that can be in flight", failed.Load(), workers)
	}
	if retries == 0 || fails == 0 {
		t.Errorf("no connect was retried (retries %v, failures %v): the kill did not land between checks", retries, fails)
	}
	if ok.Load() < 100 {
		t.Errorf("only %d connections answered", ok.Load())
	}
}

// TestProxyBackupListens: both nodes run the proxy; the Backup listens on
// the VIP it does not have (IP_FREEBIND) and serves as soon as the VIP
// arrives when the Master's cable is cut.
func TestProxyBackupListens(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 5})
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for _, n := range l.Nodes[2:] {
		lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	vs := proxyVS("web", lab.VIP.Addr(), nodeAddrs(l.Nodes[2:]), "check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{svcInst(150, true)}, VirtualServers: vs})
	c2 := startSvc(t, l, n2, svcConfig{Instances: []svcInstance{svcInst(100, true)}, VirtualServers: vs})
	svcWaitState(t, c1.Socket, "api", "master")
	svcWaitState(t, c2.Socket, "api", "backup")
	proxyHealthy(t, c2.Socket, 3)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
	if a := lbConnect(l, vip); a.err != nil || a.peer != n1.Addr.Addr().String() {
		t.Fatalf("through n1: %+v", a)
	}

	if err := n1.CutLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	cut := time.Now()
	svcWaitState(t, c2.Socket, "api", "master")
	master := time.Since(cut)
	var first time.Duration
	svcWaitFor(t, "a connection through n2", patience, func() (bool, string) {
		a := lbConnect(l, vip)
		if a.err == nil && first == 0 {
			first = time.Since(cut)
		}
		return a.err == nil && a.peer == n2.Addr.Addr().String(), fmt.Sprintf("%+v", a)
	})
	t.Logf("after the cable cut n2 was Master in %v and answered in %v", master.Round(time.Millisecond), first.Round(time.Millisecond))
	got := lbSpread(t, l, vip, 9)
	if len(got) != 3 {
		t.Errorf("through n2: spread %v, want all three", got)
	}
}

// TestProxyIPv6: a proxy virtual server on an IPv6 VIP, without IPv6
// forwarding: spread over three real servers, one of them on the node
// itself, each seeing the node's address.
func TestProxyIPv6(t *testing.T) {
	r := newRigOf(t, lab.VIP6, lab.Config{Nodes: 3, IPv6: true})
	l := r.l
	n1 := l.Nodes[0]
	var addrs []netip.Addr
	for _, n := range l.Nodes {
		lbStartRealServer(t, n.Name, n.NS, netip.AddrPortFrom(n.Addr6.Addr(), lbRealPort).String())
		addrs = append(addrs, n.Addr6.Addr())
	}
	in := svcInst(150, true)
	in.VIPs = []netip.Prefix{lab.VIP6}
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{in},
		VirtualServers: proxyVS("web6", lab.VIP6.Addr(), addrs, "check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")})
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 3)
	vip := netip.AddrPortFrom(lab.VIP6.Addr(), lbPort).String()
	svcWaitFor(t, "the client to reach the VIP", patience, func() (bool, string) {
		a := lbConnect(l, vip)
		return a.err == nil, fmt.Sprint(a.err)
	})
	peers := map[string]string{}
	for i := range 9 {
		a := lbConnect(l, vip)
		if a.err != nil {
			t.Fatalf("connection %d: %v", i, a.err)
		}
		peers[a.name] = a.peer
	}
	for _, n := range l.Nodes {
		if peers[n.Name] != n1.Addr6.Addr().String() {
			t.Errorf("real servers saw %v, want each n1's %s", peers, n1.Addr6.Addr())
			break
		}
	}
}

// TestProxyReload: a reload that removes a real server and adds another
// keeps every established connection, the removed one's included; new
// connections go to the new set.
func TestProxyReload(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 3})
	l := r.l
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	for _, n := range l.Nodes {
		lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	config := func(rss ...*lab.Node) svcConfig {
		return svcConfig{Socket: svcSocket(l, n1), Instances: []svcInstance{svcInst(150, true)},
			VirtualServers: proxyVS("web", lab.VIP.Addr(), nodeAddrs(rss), "check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")}
	}
	c1 := startSvc(t, l, n1, config(n2, n3))
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 2)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
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
	proxyHealthy(t, c1.Socket, 2)
	for _, n := range []*lab.Node{n2, n3} {
		if line, err := held[n.Name].echo(); err != nil || !strings.HasPrefix(line, n.Name+" ping") {
			t.Errorf("the connection to %s across the reload: %q, %v; want it untouched", n.Name, line, err)
		}
	}
	got := lbSpread(t, l, vip, 10)
	if got[n3.Name] != 0 || got[n1.Name] != 5 || got[n2.Name] != 5 {
		t.Errorf("after the reload: spread %v, want n1 and n2 only, 5 each", got)
	}
}

// TestProxyProtocol: with proxy_protocol v2 the real server reads the
// client's address and port, and the virtual server's, before the
// client's bytes.
func TestProxyProtocol(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 2})
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ln, err := svcListenIn(n2.NS, fmt.Sprintf("%s:%d", n2.Addr.Addr(), lbRealPort))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				// A health check closes without a header.
				hdr := make([]byte, 28) // 16 + 12 for TCP over IPv4
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				if !bytes.Equal(hdr[:12], []byte("\r\n\r\n\x00\r\nQUIT\n")) || hdr[12] != 0x21 || hdr[13] != 0x11 || binary.BigEndian.Uint16(hdr[14:]) != 12 {
					fmt.Fprintf(c, "bad header %x\n", hdr)
					return
				}
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(hdr[16:20])), binary.BigEndian.Uint16(hdr[24:]))
				dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(hdr[20:24])), binary.BigEndian.Uint16(hdr[26:]))
				fmt.Fprintf(c, "%s %s %s\n", src, dst, c.RemoteAddr().(*net.TCPAddr).IP)
			}()
		}
	}()
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{svcInst(150, true)},
		VirtualServers: proxyVS("web", lab.VIP.Addr(), []netip.Addr{n2.Addr.Addr()}, "proxy_protocol: v2", "check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")})
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 1)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := l.Client.Dial(ctx, "tcp", vip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	want := fmt.Sprintf("%s %s %s\n", c.LocalAddr().(*net.TCPAddr).AddrPort(), vip, n1.Addr.Addr())
	if err != nil || line != want {
		t.Errorf("the real server read %q (%v), want %q: the client, the VIP, and the connection from n1", line, err, want)
	}
}

// TestProxyDrainAtStop: a proxy virtual server on an address that stays
// (the node's own, no VIP) lets an established connection go on after
// SIGTERM for its drain_timeout, then closes it, and vipd exits.
func TestProxyDrainAtStop(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 2})
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	lbStartRealServer(t, n2.Name, n2.NS, fmt.Sprintf("%s:%d", n2.Addr.Addr(), lbRealPort))
	const drain = 2 * time.Second
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{svcInst(150, true)},
		VirtualServers: proxyVS("web", n1.Addr.Addr(), []netip.Addr{n2.Addr.Addr()}, "drain_timeout: "+drain.String(),
			"check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")})
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 1)
	h := lbHold(t, l, fmt.Sprintf("%s:%d", n1.Addr.Addr(), lbPort))

	type stopped struct {
		took time.Duration
		err  error
	}
	done := make(chan stopped, 1)
	go func() {
		took, err := n1.Stop()
		done <- stopped{took, err}
	}()
	time.Sleep(drain / 2)
	if line, err := h.echo(); err != nil || !strings.HasPrefix(line, n2.Name+" ping") {
		t.Errorf("halfway through the drain: %q, %v; want the connection to go on", line, err)
	}
	s := <-done
	t.Logf("vipd exited %v after SIGTERM with a connection open (drain_timeout %v)", s.took.Round(time.Millisecond), drain)
	if s.err != nil || s.took < drain || s.took > drain+3*time.Second {
		t.Errorf("stop took %v (%v), want the %v drain and a little", s.took, s.err, drain)
	}
	if _, err := h.echo(); err == nil {
		t.Error("the connection still answers after the drain")
	}
}

// TestProxyRealServerGone: a real server whose host goes silent (its cable
// cut) fails its check by timeout; its proxied connections, which would
// hang until keepalive gave up, are reset, and the others go on.
func TestProxyRealServerGone(t *testing.T) {
	r := newRigOf(t, lab.VIP, lab.Config{Nodes: 3})
	l := r.l
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	for _, n := range l.Nodes[1:] {
		lbStartRealServer(t, n.Name, n.NS, fmt.Sprintf("%s:%d", n.Addr.Addr(), lbRealPort))
	}
	c1 := startSvc(t, l, n1, svcConfig{Instances: []svcInstance{svcInst(150, true)},
		VirtualServers: proxyVS("web", lab.VIP.Addr(), nodeAddrs(l.Nodes[1:]), "check: {tcp: {}, interval: 100ms, timeout: 90ms, fall: 2, rise: 1}")})
	svcWaitState(t, c1.Socket, "api", "master")
	proxyHealthy(t, c1.Socket, 2)
	vip := fmt.Sprintf("%s:%d", lab.VIP.Addr(), lbPort)
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
	if err := n3.CutLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	svcWaitFor(t, "the gone real server's connections reset", patience, func() (bool, string) {
		recs := svcLogRecords(t, n1, "reset a gone real server's connections")
		return len(recs) > 0, fmt.Sprint(recs)
	})
	start := time.Now()
	if line, err := held[n3.Name].echo(); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the connection to the gone real server: %q, %v; want a reset", line, err)
	} else {
		t.Logf("the connection to the gone real server failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if line, err := held[n2.Name].echo(); err != nil || !strings.HasPrefix(line, n2.Name+" ping") {
		t.Errorf("the connection to %s: %q, %v; want it untouched", n2.Name, line, err)
	}
}
