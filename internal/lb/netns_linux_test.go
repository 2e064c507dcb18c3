package lb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vipd/vipd/internal/testenv"
	"github.com/vishvananda/netns"
)

// The lab: a client namespace and three real servers, each on its own veth
// link to the balancer's namespace, which has the virtual addresses on lo
// (as a Master would) and a local real server of its own.
//
//	client c0 198.51.100.2-9/24 ── c1 198.51.100.1   lb   b<i> 203.0.113.(16i+1)/28 ── r0 203.0.113.(16i+2)  rs<i>
//	       2001:db8:1::2/64           2001:db8:1::1          2001:db8:2:<i>::1/64          2001:db8:2:<i>::2
//
// Every real server answers a TCP connection on port 8080 with its name
// and the client address it sees, then echoes; and a UDP datagram on 8080
// with the same line.

var (
	vip4 = netip.MustParseAddr("192.0.2.50")
	vip6 = netip.MustParseAddr("2001:db8:50::50")
	// The local real server listens on the balancer's own address.
	local4 = netip.MustParseAddr("192.0.2.1")
	local6 = netip.MustParseAddr("2001:db8:50::1")
)

const rsPort = 8080

type lab struct {
	client, lb string
	rs         []string // namespaces of rs1..rs3
	l          *Linux
}

func rsAddr(i int, v6 bool) netip.Addr { // i from 1
	if v6 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:2:%d::2", i))
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(16*i + 2)})
}

func lbAddr(i int, v6 bool) netip.Addr { return rsAddr(i, v6).Prev() }

func clientAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}) } // i from 1

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.Privileged(t)
	prefix := fmt.Sprintf("vlb-%d-", os.Getpid())
	lb := &lab{client: testenv.Netns(t, prefix+"c-"), lb: testenv.Netns(t, prefix+"lb-")}
	ip := func(ns string, args ...string) { testenv.IP(t, append([]string{"-n", ns}, args...)...) }
	sysctl := func(ns, key, val string) {
		testenv.Do(t, ns, func() {
			if err := os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0o644); err != nil {
				t.Errorf("sysctl %s: %v", key, err)
			}
		})
	}
	ip(lb.lb, "link", "add", "c1", "type", "veth", "peer", "name", "c0", "netns", lb.client)
	ip(lb.lb, "addr", "add", "198.51.100.1/24", "dev", "c1")
	ip(lb.lb, "addr", "add", "2001:db8:1::1/64", "dev", "c1", "nodad")
	ip(lb.lb, "link", "set", "c1", "up")
	for i := 2; i <= 9; i++ {
		ip(lb.client, "addr", "add", clientAddr(i-1).String()+"/24", "dev", "c0")
	}
	ip(lb.client, "addr", "add", "2001:db8:1::2/64", "dev", "c0", "nodad")
	ip(lb.client, "link", "set", "c0", "up")
	ip(lb.client, "route", "add", "default", "via", "198.51.100.1", "src", clientAddr(1).String())
	ip(lb.client, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	for _, a := range []string{vip4.String() + "/32", vip6.String() + "/128", local4.String() + "/32", local6.String() + "/128"} {
		ip(lb.lb, "addr", "add", a, "dev", "lo")
	}
	for i := 1; i <= 3; i++ {
		ns := testenv.Netns(t, fmt.Sprintf("%srs%d-", prefix, i))
		lb.rs = append(lb.rs, ns)
		dev := fmt.Sprintf("b%d", i)
		ip(lb.lb, "link", "add", dev, "type", "veth", "peer", "name", "r0", "netns", ns)
		ip(lb.lb, "addr", "add", lbAddr(i, false).String()+"/28", "dev", dev)
		ip(lb.lb, "addr", "add", lbAddr(i, true).String()+"/64", "dev", dev, "nodad")
		ip(lb.lb, "link", "set", dev, "up")
		ip(ns, "addr", "add", rsAddr(i, false).String()+"/28", "dev", "r0")
		ip(ns, "addr", "add", rsAddr(i, true).String()+"/64", "dev", "r0", "nodad")
		ip(ns, "link", "set", "r0", "up")
		ip(ns, "route", "add", "default", "via", lbAddr(i, false).String())
		ip(ns, "-6", "route", "add", "default", "via", lbAddr(i, true).String())
	}
	for _, ns := range append([]string{lb.client, lb.lb}, lb.rs...) {
		// Many short connections to one address and port.
		sysctl(ns, "net.ipv4.ip_local_port_range", "1024 65000")
		sysctl(ns, "net.ipv4.tcp_tw_reuse", "1")
	}
	testenv.Do(t, lb.lb, func() {
		for _, v6 := range []bool{false, true} {
			if err := EnableForwarding(v6); err != nil {
				t.Fatal(err)
			}
		}
	})
	testenv.WaitLink(t, lb.client, "c0", "UP")
	for i, ns := range lb.rs {
		testenv.WaitLink(t, lb.lb, fmt.Sprintf("b%d", i+1), "UP")
		testenv.WaitLink(t, ns, "r0", "UP")
		serve(t, ns, fmt.Sprintf("rs%d", i+1), rsPort)
	}
	serve(t, lb.lb, "local", rsPort)
	// A decoy on the virtual servers' ports of the balancer itself answers
	// whatever the table does not DNAT or reject: without it, the kernel
	// would refuse connections to the local virtual address by itself.
	serve(t, lb.lb, "decoy", 80)
	serve(t, lb.lb, "decoy", 53)

	h, err := netns.GetFromName(lb.lb)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if lb.l, err = NewLinuxAt(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.l.Close() })
	return lb
}

// serve runs the TCP and UDP real server name in ns on port until the test
// ends.
func serve(t *testing.T, ns, name string, port int) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	testenv.Do(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatal(err)
		}
	})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]bool)
	)
	// Closing the open connections too keeps a failed test from waiting
	// on their deadlines.
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
				fmt.Fprintf(c, "%s %s\n", name, from)
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			a := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			pc.WriteTo(fmt.Appendf(nil, "%s %s\n", name, a), from)
		}
	}()
}

// reply is what a real server said: its name and the client it saw.
type reply struct {
	name string
	from netip.Addr
}

func parseReply(line string) (reply, error) {
	name, from, ok := strings.Cut(strings.TrimSpace(line), " ")
	a, err := netip.ParseAddr(from)
	if !ok || err != nil {
		return reply{}, fmt.Errorf("bad greeting %q", line)
	}
	return reply{name, a}, nil
}

// dial connects from ns (from src when valid) to dst over network and
// reads the greeting; the connection stays open for the caller to close.
func dial(t *testing.T, ns, network string, src netip.Addr, dst netip.AddrPort) (net.Conn, reply, error) {
	t.Helper()
	var c net.Conn
	var err error
	testenv.Do(t, ns, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		if src.IsValid() {
			if network == "tcp" {
				d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			} else {
				d.LocalAddr = &net.UDPAddr{IP: src.AsSlice()}
			}
		}
		c, err = d.Dial(network, dst.String())
	})
	if err != nil {
		return nil, reply{}, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if network == "udp" {
		if _, err := c.Write([]byte("hi\n")); err != nil {
			c.Close()
			return nil, reply{}, err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, reply{}, err
	}
	r, err := parseReply(line)
	if err != nil {
		c.Close()
	}
	return c, r, err
}

// count opens n connections from ns and returns how many each real server
// got and the client addresses each saw.
func count(t *testing.T, ns, network string, src netip.Addr, dst netip.AddrPort, n int) (map[string]int, map[string]netip.Addr) {
	t.Helper()
	got := make(map[string]int)
	seen := make(map[string]netip.Addr)
	for range n {
		c, r, err := dial(t, ns, network, src, dst)
		if err != nil {
			t.Fatalf("%s to %v: %v", network, dst, err)
		}
		c.Close()
		got[r.name]++
		seen[r.name] = r.from
	}
	return got, seen
}

// list logs the table as nft(8) shows it, where nft is installed.
func (lb *lab) list(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", lb.lb, "nft", "list", "table", "inet", Table).CombinedOutput(); err == nil {
		t.Logf("nft list table inet %s:\n%s", Table, out)
	}
}

func (lb *lab) apply(t *testing.T, vss ...VirtualServer) {
	t.Helper()
	rs, err := Build(vss, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.l.Apply(rs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func remotes(v6 bool, weights ...int) []Backend {
	var bs []Backend
	for i, w := range weights {
		bs = append(bs, Backend{Addr: rsAddr(i+1, v6), Port: rsPort, Weight: w})
	}
	return bs
}

func want(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: connections per real server %v, want %v", what, got, want)
	}
}

func TestNetns(t *testing.T) {
	start := time.Now()
	lb := newLab(t)
	t.Logf("lab up in %v", time.Since(start))
	testenv.Do(t, lb.lb, func() {
		if err := lb.l.Preflight(); err != nil {
			t.Fatal(err)
		}
		if err := CheckForwarding([]VirtualServer{{Name: "a", Addr: vip4, Backends: remotes(false, 1)}}); err != nil {
			t.Errorf("CheckForwarding with forwarding on: %v", err)
		}
	})
	// A new namespace does not forward: remote real servers need it, local
	// ones do not.
	testenv.Do(t, lb.client, func() {
		remote := VirtualServer{Name: "web6", Addr: vip6, Backends: remotes(true, 1)}
		err := CheckForwarding([]VirtualServer{remote})
		if !errors.Is(err, ErrForwarding) || !strings.Contains(err.Error(), "net.ipv6.conf.all.forwarding=1") {
			t.Errorf("CheckForwarding without forwarding: %v", err)
		}
		local := VirtualServer{Name: "web", Addr: vip4, Backends: []Backend{{Addr: local4, Port: 1, Weight: 1, Local: true}}}
		if err := CheckForwarding([]VirtualServer{local}); err != nil {
			t.Errorf("CheckForwarding of a local real server: %v", err)
		}
	})
	web := netip.AddrPortFrom(vip4, 80)
	web6 := netip.AddrPortFrom(vip6, 80)

	t.Run("round_robin", func(t *testing.T) {
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Backends: remotes(false, 1, 1, 1)})
		got, seen := count(t, lb.client, "tcp", netip.Addr{}, web, 30)
		want(t, "round_robin", got, map[string]int{"rs1": 10, "rs2": 10, "rs3": 10})
		for i := 1; i <= 3; i++ {
			if a := seen[fmt.Sprintf("rs%d", i)]; a != lbAddr(i, false) {
				t.Errorf("rs%d saw the client as %v, want the balancer's %v (masquerade)", i, a, lbAddr(i, false))
			}
		}
		lb.list(t)
	})

	t.Run("weights", func(t *testing.T) {
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Backends: remotes(false, 300, 100, 0)})
		got, _ := count(t, lb.client, "tcp", netip.Addr{}, web, 40)
		want(t, "weights 300:100:0", got, map[string]int{"rs1": 30, "rs2": 10})
	})

	t.Run("random", func(t *testing.T) {
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Scheduler: Random, Backends: remotes(false, 1, 1, 1)})
		got, _ := count(t, lb.client, "tcp", netip.Addr{}, web, 60)
		if len(got) != 3 { // each is missed with probability (2/3)^60
			t.Errorf("random: connections per real server %v, want all three", got)
		}
	})

	t.Run("source_hash", func(t *testing.T) {
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Scheduler: SourceHash, Backends: remotes(false, 1, 1, 1)})
		defer lb.list(t)
		used := make(map[string]bool)
		for i := 1; i <= 8; i++ {
			got, _ := count(t, lb.client, "tcp", clientAddr(i), web, 4)
			if len(got) != 1 {
				t.Errorf("client %v: connections per real server %v, want one real server", clientAddr(i), got)
			}
			for n := range got {
				used[n] = true
			}
		}
		if len(used) < 2 { // the hash is fixed: this holds or fails every time
			t.Errorf("8 clients all went to %v", used)
		}
	})

	t.Run("persistence", func(t *testing.T) {
		vs := VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Persistence: 30 * time.Second, Backends: remotes(false, 1, 1, 1)}
		lb.apply(t, vs)
		// round_robin's counter starts at 0 with every apply: the first
		// client gets rs1, the second rs2.
		first, _ := count(t, lb.client, "tcp", clientAddr(1), web, 6)
		want(t, "first client", first, map[string]int{"rs1": 6})
		second, _ := count(t, lb.client, "tcp", clientAddr(2), web, 3)
		want(t, "second client", second, map[string]int{"rs2": 3})
		// A new apply keeps the affinity of real servers that remain:
		// without it the second client would now get rs1.
		lb.apply(t, vs)
		again, _ := count(t, lb.client, "tcp", clientAddr(2), web, 3)
		want(t, "second client after an apply", again, map[string]int{"rs2": 3})
		lb.list(t)
		// Without persistence, the same client is balanced.
		vs.Persistence = 0
		lb.apply(t, vs)
		got, _ := count(t, lb.client, "tcp", clientAddr(2), web, 3)
		want(t, "without persistence", got, map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
	})

	t.Run("local", func(t *testing.T) {
		bs := []Backend{
			{Addr: rsAddr(1, false), Port: rsPort, Weight: 1},
			{Addr: local4, Port: rsPort, Weight: 1, Local: true},
		}
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Backends: bs})
		got, seen := count(t, lb.client, "tcp", clientAddr(3), web, 4)
		want(t, "local and remote", got, map[string]int{"local": 2, "rs1": 2})
		if seen["local"] != clientAddr(3) {
			t.Errorf("the local real server saw %v, want the client's %v", seen["local"], clientAddr(3))
		}
		if seen["rs1"] != lbAddr(1, false) {
			t.Errorf("the remote real server saw %v, want the balancer's %v", seen["rs1"], lbAddr(1, false))
		}
	})

	t.Run("host", func(t *testing.T) {
		lb.apply(t, VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Backends: remotes(false, 1, 1, 1)})
		got, _ := count(t, lb.lb, "tcp", netip.Addr{}, web, 30)
		want(t, "from the balancer itself", got, map[string]int{"rs1": 10, "rs2": 10, "rs3": 10})
	})

	t.Run("counters", func(t *testing.T) {
		// A name no earlier subtest used: its counters start at 0.
		vs := VirtualServer{Name: "counted", Addr: vip4, Port: 80, Protocol: TCP, Backends: remotes(false, 1, 1, 1)}
		check := func(l *Linux, what string, want map[string]uint64) {
			t.Helper()
			cs, err := l.Connections()
			if err != nil {
				t.Fatalf("%s: Connections: %v", what, err)
			}
			got := make(map[string]uint64)
			for _, c := range cs {
				if c.VirtualServer != vs.Name || c.Port != rsPort {
					t.Errorf("%s: %+v", what, c)
				}
				got[c.Addr.String()] = c.Total
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: connections %v, want %v", what, got, want)
			}
		}
		r1, r2, r3 := rsAddr(1, false).String(), rsAddr(2, false).String(), rsAddr(3, false).String()
		lb.apply(t, vs)
		count(t, lb.client, "tcp", netip.Addr{}, web, 27)
		count(t, lb.lb, "tcp", netip.Addr{}, web, 3) // from the host: counted too
		check(lb.l, "after 30", map[string]uint64{r1: 10, r2: 10, r3: 10})
		// Out of the schedule, rs3 keeps its count; the others' carry over
		// the replacement.
		down := vs
		down.Backends, down.Down = vs.Backends[:2], vs.Backends[2:]
		lb.apply(t, down)
		count(t, lb.client, "tcp", netip.Addr{}, web, 20)
		check(lb.l, "rs3 down", map[string]uint64{r1: 20, r2: 20, r3: 10})
		lb.list(t)
		// A new process finding the table (a restart after SIGKILL)
		// carries the counts too.
		h, err := netns.GetFromName(lb.lb)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l2, err := NewLinuxAt(h)
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		check(l2, "before its first Apply", map[string]uint64{})
		rs, err := Build([]VirtualServer{vs}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l2.Apply(rs); err != nil {
			t.Fatal(err)
		}
		check(l2, "restarted", map[string]uint64{r1: 20, r2: 20, r3: 10})
		if err := l2.Remove(); err != nil {
			t.Fatal(err)
		}
		check(l2, "removed", map[string]uint64{})
		// The other process's table is gone: nothing to count.
		check(lb.l, "removed by another", map[string]uint64{})
	})

	t.Run("no_backends", func(t *testing.T) {
		lb.apply(t,
			VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP},
			VirtualServer{Name: "web6", Addr: vip6, Port: 80, Protocol: TCP},
			VirtualServer{Name: "dns", Addr: vip4, Port: 53, Protocol: UDP})
		dns := netip.AddrPortFrom(vip4, 53)
		for _, tc := range []struct {
			ns, network string
			dst         netip.AddrPort
		}{
			{lb.client, "tcp", web}, {lb.lb, "tcp", web}, {lb.client, "tcp", web6}, {lb.lb, "tcp", web6},
			// UDP gets ICMP port unreachable, which a connected socket reports.
			{lb.client, "udp", dns},
		} {
			begin := time.Now()
			c, _, err := dial(t, tc.ns, tc.network, netip.Addr{}, tc.dst)
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s from %s to %v: %v, want connection refused", tc.network, tc.ns, tc.dst, err)
			}
			if d := time.Since(begin); d > time.Second {
				t.Errorf("refused after %v", d)
			}
		}
	})

	t.Run("remove_backend", func(t *testing.T) {
		vs := VirtualServer{Name: "web", Addr: vip4, Port: 80, Protocol: TCP, Backends: remotes(false, 1, 1)}
		lb.apply(t, vs)
		c, r, err := dial(t, lb.client, "tcp", netip.Addr{}, web)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		echo := func() error {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte("ping\n")); err != nil {
				return err
			}
			_, err := br.ReadString('\n')
			return err
		}
		gone := vs.Backends[0]
		if r.name == "rs2" {
			gone = vs.Backends[1]
		}
		vs.Backends = remove(vs.Backends, gone)
		lb.apply(t, vs)
		if err := echo(); err != nil {
			t.Fatalf("established connection after its real server left the table: %v", err)
		}
		got, _ := count(t, lb.client, "tcp", netip.Addr{}, web, 4)
		if got[r.name] != 0 {
			t.Errorf("new connections went to the removed %s: %v", r.name, got)
		}
		n, err := lb.l.FlushConntrack(vs, gone)
		// At least the open connection's entry; earlier subtests' in
		// TIME_WAIT go too.
		if err != nil || n < 1 {
			t.Fatalf("FlushConntrack = %d, %v; want the open connection's entry", n, err)
		}
		begin := time.Now()
		if err := echo(); err == nil || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("after FlushConntrack: %v, want connection reset", err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Errorf("reset after %v", d)
		}
	})

	t.Run("udp", func(t *testing.T) {
		dns := netip.AddrPortFrom(vip4, 53)
		lb.apply(t, VirtualServer{Name: "dns", Addr: vip4, Port: 53, Protocol: UDP, Backends: remotes(false, 1, 1, 1)})
		got, _ := count(t, lb.client, "udp", netip.Addr{}, dns, 9)
		want(t, "udp", got, map[string]int{"rs1": 3, "rs2": 3, "rs3": 3})
	})

	t.Run("ipv6", func(t *testing.T) {
		bs := append(remotes(true, 1, 1), Backend{Addr: local6, Port: rsPort, Weight: 1, Local: true})
		lb.apply(t, VirtualServer{Name: "web6", Addr: vip6, Port: 80, Protocol: TCP, Backends: bs})
		got, seen := count(t, lb.client, "tcp", netip.Addr{}, web6, 30)
		want(t, "ipv6", got, map[string]int{"local": 10, "rs1": 10, "rs2": 10})
		if a := seen["rs1"]; a != lbAddr(1, true) {
			t.Errorf("rs1 saw %v, want the balancer's %v", a, lbAddr(1, true))
		}
		if a := seen["local"]; a != netip.MustParseAddr("2001:db8:1::2") {
			t.Errorf("the local real server saw %v, want the client's", a)
		}
		got, _ = count(t, lb.lb, "tcp", netip.Addr{}, web6, 9)
		want(t, "ipv6 from the balancer", got, map[string]int{"local": 3, "rs1": 3, "rs2": 3})
	})

	t.Run("remove", func(t *testing.T) {
		// Someone else's table stays.
		c, err := lb.l.dial()
		if err != nil {
			t.Fatal(err)
		}
		other := &nftables.Table{Name: "other", Family: nftables.TableFamilyINet}
		c.AddTable(other)
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second finds nothing to remove
			if err := lb.l.Remove(); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := lb.l.Present(); ok || err != nil {
			t.Errorf("Present after Remove = %v, %v", ok, err)
		}
		if _, err := c.ListTableOfFamily("other", nftables.TableFamilyINet); err != nil {
			t.Errorf("Remove took another table: %v", err)
		}
	})
	t.Logf("done in %v", time.Since(start))
}

func remove(bs []Backend, b Backend) []Backend {
	var out []Backend
	for _, x := range bs {
		if x != b {
			out = append(out, x)
		}
	}
	return out
}
