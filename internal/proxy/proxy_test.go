package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// realServer is a loopback TCP server; each connection runs handle.
type realServer struct {
	name string
	ln   net.Listener
	addr netip.AddrPort
	mu   sync.Mutex
	hits int
}

func startRealServer(t *testing.T, name string, handle func(*realServer, net.Conn)) *realServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &realServer{name: name, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rs.mu.Lock()
			rs.hits++
			rs.mu.Unlock()
			go func() {
				defer c.Close()
				handle(rs, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return rs
}

// sayName answers every connection with the server's name.
func sayName(rs *realServer, c net.Conn) { io.WriteString(c, rs.name+"\n") }

func startProxy(t *testing.T, cfg Config, bs ...Backend) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg, ln)
	p.Update(bs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// ask connects through p and returns the line the real server said.
func ask(t *testing.T, p *Proxy) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

func names(t *testing.T, p *Proxy, n int) []string {
	t.Helper()
	var out []string
	for range n {
		s, err := ask(t, p)
		if err != nil {
			t.Fatalf("connection %d: %v", len(out), err)
		}
		out = append(out, s)
	}
	return out
}

func TestRoundRobinWeights(t *testing.T) {
	a := startRealServer(t, "a", sayName)
	b := startRealServer(t, "b", sayName)
	c := startRealServer(t, "c", sayName)
	p := startProxy(t, Config{Scheduler: RoundRobin}, Backend{a.addr, 2}, Backend{b.addr, 1}, Backend{c.addr, 1})
	got := strings.Join(names(t, p, 8), "")
	// nginx's smooth weighted round robin, as the nat map.
	if got != "abcaabca" {
		t.Errorf("round robin 2:1:1 went %s, want abcaabca", got)
	}
	waitFor(t, "connections to end", func() bool { return liveOf(p, a.addr)+liveOf(p, b.addr)+liveOf(p, c.addr) == 0 })
	total := map[netip.AddrPort]uint64{}
	for _, b := range p.Stats().Backends {
		total[b.Addr] = b.Total
		// Each connection carried "x\n" from the real server.
		if b.BytesOut != 2*b.Total || b.BytesIn != 0 {
			t.Errorf("%v: bytes out %d, in %d after %d connections", b.Addr, b.BytesOut, b.BytesIn, b.Total)
		}
	}
	if total[a.addr] != 4 || total[b.addr] != 2 || total[c.addr] != 2 {
		t.Errorf("totals %v, want 4, 2, 2", total)
	}
}

func TestRandomWeights(t *testing.T) {
	tab := newTable([]*backend{{}, {}}, []int{3, 1})
	counts := [2]int{}
	for range 4000 {
		counts[tab.pick(Random, netip.Addr{})]++
	}
	// 3000 expected; 6 standard deviations (27 each) either side.
	if counts[0] < 2840 || counts[0] > 3160 {
		t.Errorf("random 3:1 gave %v", counts)
	}
}

func TestSourceHash(t *testing.T) {
	bs := []*backend{{}, {}, {}}
	tab := newTable(bs, []int{1, 1, 2})
	counts := make([]int, 3)
	for i := range 4096 {
		client := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		first := tab.pick(SourceHash, client)
		for range 3 {
			if again := tab.pick(SourceHash, client); again != first {
				t.Fatalf("client %v went to %d then %d", client, first, again)
			}
		}
		counts[first]++
	}
	// Weights 1:1:2 of 4096 clients: about 1024, 1024, 2048.
	if counts[0] < 850 || counts[0] > 1200 || counts[2] < 1850 || counts[2] > 2250 {
		t.Errorf("source hash 1:1:2 spread %v", counts)
	}

	a := startRealServer(t, "a", sayName)
	b := startRealServer(t, "b", sayName)
	p := startProxy(t, Config{Scheduler: SourceHash}, Backend{a.addr, 1}, Backend{b.addr, 1})
	got := names(t, p, 6)
	for _, n := range got {
		if n != got[0] {
			t.Fatalf("one client went to %v", got)
		}
	}
}

func TestLeastConnTable(t *testing.T) {
	bs := []*backend{{}, {}, {}}
	tab := newTable(bs, []int{1, 1, 2})
	bs[0].live.Store(2)
	bs[1].live.Store(1)
	bs[2].live.Store(3) // 1.5 per unit of weight
	if got := tab.pick(LeastConn, netip.Addr{}); got != 1 {
		t.Errorf("least_conn picked %d, want 1 (1 live of weight 1)", got)
	}
	bs[1].live.Store(2)
	if got := tab.pick(LeastConn, netip.Addr{}); got != 2 {
		t.Errorf("least_conn picked %d, want 2 (3 live of weight 2)", got)
	}
	// Ties rotate.
	for _, b := range bs {
		b.live.Store(0)
	}
	seen := map[int]bool{}
	for range 3 {
		seen[tab.pick(LeastConn, netip.Addr{})] = true
	}
	if len(seen) != 3 {
		t.Errorf("idle real servers picked %v, want all three", seen)
	}
}

// holdOpen answers with the name and keeps the connection until the
// client closes it.
func holdOpen(rs *realServer, c net.Conn) {
	io.WriteString(c, rs.name+"\n")
	io.Copy(io.Discard, c)
}

func TestLeastConnProxy(t *testing.T) {
	a := startRealServer(t, "a", holdOpen)
	b := startRealServer(t, "b", holdOpen)
	p := startProxy(t, Config{Scheduler: LeastConn}, Backend{a.addr, 1}, Backend{b.addr, 1})
	var held []net.Conn
	counts := map[string]int{}
	for range 6 {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		counts[strings.TrimSpace(line)]++
	}
	if counts["a"] != 3 || counts["b"] != 3 {
		t.Errorf("6 held connections went %v, want 3 each", counts)
	}
	// With every connection closed, one held on a real server sends the
	// next to the other.
	for i := range held {
		held[i].Close()
	}
	waitFor(t, "connections to end", func() bool { return liveOf(p, a.addr)+liveOf(p, b.addr) == 0 })
	for range 4 {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		first, _ := bufio.NewReader(c).ReadString('\n')
		next, _ := ask(t, p)
		c.Close()
		if strings.TrimSpace(first) == next {
			t.Errorf("with a connection held on %s the next went there too", next)
		}
		waitFor(t, "connections to end", func() bool { return liveOf(p, a.addr)+liveOf(p, b.addr) == 0 })
	}
}

func liveOf(p *Proxy, a netip.AddrPort) uint64 {
	for _, b := range p.Stats().Backends {
		if b.Addr == a {
			return b.Live
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deadAddr is a loopback port where nothing listens.
func deadAddr(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

func TestRetryNextRealServer(t *testing.T) {
	dead := deadAddr(t)
	b := startRealServer(t, "b", sayName)
	p := startProxy(t, Config{Scheduler: RoundRobin}, Backend{dead, 1}, Backend{b.addr, 1})
	for i, n := range names(t, p, 4) {
		if n != "b" {
			t.Errorf("connection %d reached %q", i, n)
		}
	}
	st := p.Stats()
	if st.Retries != 2 {
		t.Errorf("retries %d, want 2 (every other pick was the dead one)", st.Retries)
	}
	for _, bs := range st.Backends {
		if bs.Addr == dead && (bs.ConnectFailures != 2 || bs.Total != 0) {
			t.Errorf("dead real server: %+v", bs)
		}
	}
	if st.Rejected != [numReasons]uint64{} {
		t.Errorf("rejected %v", st.Rejected)
	}
}

func TestRejects(t *testing.T) {
	p := startProxy(t, Config{Tries: 2}, Backend{deadAddr(t), 1}, Backend{deadAddr(t), 1}, Backend{deadAddr(t), 1})
	if _, err := ask(t, p); err == nil {
		t.Fatal("a connection with every real server dead got an answer")
	}
	p.Update(nil)
	_, err := ask(t, p)
	if err == nil || !(errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset")) {
		t.Fatalf("no real server: %v, want a reset or EOF", err)
	}
	st := p.Stats()
	if st.Rejected[ConnectFailed] != 1 || st.Rejected[NoBackend] != 1 || st.Retries != 1 {
		t.Errorf("rejected %v retries %d, want 1 of each and 1 retry (tries 2)", st.Rejected, st.Retries)
	}
}

// TestHalfClose: the client's FIN reaches the real server as a FIN, and
// the real server's answer after it still reaches the client.
func TestHalfClose(t *testing.T) {
	rs := startRealServer(t, "echo", func(_ *realServer, c net.Conn) {
		b, _ := io.ReadAll(c) // until the client's half-close
		c.Write(bytes.ToUpper(b))
	})
	p := startProxy(t, Config{}, Backend{rs.addr, 1})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello, real server")
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HELLO, REAL SERVER" {
		t.Fatalf("after a half-close read %q, %v", got, err)
	}
	waitFor(t, "the connection counted out", func() bool { return liveOf(p, rs.addr) == 0 })
	for _, b := range p.Stats().Backends {
		if b.BytesIn != 18 || b.BytesOut != 18 || b.Total != 1 {
			t.Errorf("stats %+v, want 18 bytes each way", b)
		}
	}
}

func TestUpdateKeepsConnections(t *testing.T) {
	a := startRealServer(t, "a", func(rs *realServer, c net.Conn) {
		io.Copy(c, c) // echo
	})
	b := startRealServer(t, "b", sayName)
	p := startProxy(t, Config{}, Backend{a.addr, 1})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	echo := func(s string) {
		t.Helper()
		io.WriteString(c, s+"\n")
		if got, err := r.ReadString('\n'); err != nil || got != s+"\n" {
			t.Fatalf("echo of %q: %q, %v", s, got, err)
		}
	}
	echo("one")
	p.Update([]Backend{{b.addr, 1}})
	if got := names(t, p, 2); got[0] != "b" || got[1] != "b" {
		t.Errorf("after the update new connections went to %v", got)
	}
	echo("two")
	if liveOf(p, a.addr) != 1 {
		t.Errorf("the removed real server's live connection is not counted")
	}
}

func TestDrain(t *testing.T) {
	rs := startRealServer(t, "a", func(rs *realServer, c net.Conn) { io.Copy(c, c) })
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	p := New(Config{}, ln)
	p.Update([]Backend{{rs.addr, 1}})
	c1, _ := net.Dial("tcp", p.Addr().String())
	c2, _ := net.Dial("tcp", p.Addr().String())
	for _, c := range []net.Conn{c1, c2} {
		io.WriteString(c, "x")
		c.Read(make([]byte, 1))
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done <- p.Close(ctx)
	}()
	// c1 ends during the drain; c2 is still open at the deadline.
	time.Sleep(50 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", p.Addr().String(), 100*time.Millisecond); err == nil {
		t.Error("a draining proxy accepted a connection")
	}
	io.WriteString(c1, "y")
	if n, _ := c1.Read(make([]byte, 1)); n != 1 {
		t.Error("an established connection stopped at the start of the drain")
	}
	c1.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("Close took %v, want the 300ms drain", d)
	}
	c2.SetDeadline(time.Now().Add(time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Error("the connection left after the drain is still open")
	}

	// Without connections Close returns at once.
	ln2, _ := net.Listen("tcp4", "127.0.0.1:0")
	p2 := New(Config{}, ln2)
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p2.Close(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("an idle proxy took %v to close", d)
	}
}

func TestPersistence(t *testing.T) {
	a := startRealServer(t, "a", sayName)
	b := startRealServer(t, "b", sayName)
	p := startProxy(t, Config{Scheduler: RoundRobin, Persistence: time.Minute}, Backend{a.addr, 1}, Backend{b.addr, 1})
	got := names(t, p, 5)
	for _, n := range got {
		if n != got[0] {
			t.Fatalf("with persistence one client went to %v", got)
		}
	}
	// Its real server gone from the set, the client moves.
	other := b.addr
	if got[0] == "b" {
		other = a.addr
	}
	p.Update([]Backend{{other, 1}})
	if n, _ := ask(t, p); n == got[0] {
		t.Errorf("the client stayed on %s after it left the set", n)
	}

	// The entry expires.
	aff := newAffinity(time.Second)
	now := time.Unix(1000, 0)
	aff.clock = func() time.Time { return now }
	client := netip.MustParseAddr("203.0.113.7")
	aff.put(client, a.addr)
	now = now.Add(999 * time.Millisecond)
	if _, ok := aff.get(client); !ok {
		t.Error("affinity forgotten before its timeout")
	}
	now = now.Add(2 * time.Millisecond)
	if _, ok := aff.get(client); ok {
		t.Error("affinity kept after its timeout")
	}
}

func TestHeaderV2Golden(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		want     string
	}{
		{"203.0.113.7:51234", "192.0.2.50:6443",
			"0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "cb007107" + "c0000232" + "c822" + "192b"},
		{"[2001:db8::7]:51234", "[2001:db8::50]:443",
			"0d0a0d0a000d0a515549540a" + "21" + "21" + "0024" +
				"20010db8000000000000000000000007" + "20010db8000000000000000000000050" + "c822" + "01bb"},
	} {
		got := hex.EncodeToString(AppendHeaderV2(nil, netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)))
		if got != tc.want {
			t.Errorf("%s → %s:\n got %s\nwant %s", tc.src, tc.dst, got, tc.want)
		}
	}
}

func TestProxyProtocolSent(t *testing.T) {
	hdrs := make(chan []byte, 1)
	rs := startRealServer(t, "a", func(_ *realServer, c net.Conn) {
		b := make([]byte, 28)
		io.ReadFull(c, b)
		hdrs <- b
		io.WriteString(c, "a\n")
	})
	p := startProxy(t, Config{ProxyProtocol: true}, Backend{rs.addr, 1})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bufio.NewReader(c).ReadString('\n')
	want := AppendHeaderV2(nil, c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort())
	if got := <-hdrs; !bytes.Equal(got, want) {
		t.Errorf("the real server read %x, want %x", got, want)
	}
}

// TestWeightZeroAndReconfigure: a real server of weight 0 takes no new
// connections but keeps its counters; Reconfigure changes the scheduler
// of the next connections.
func TestWeightZeroAndReconfigure(t *testing.T) {
	a := startRealServer(t, "a", sayName)
	b := startRealServer(t, "b", sayName)
	p := startProxy(t, Config{Scheduler: RoundRobin}, Backend{a.addr, 1}, Backend{b.addr, 1})
	names(t, p, 2)
	p.Update([]Backend{{a.addr, 0}, {b.addr, 1}})
	for _, n := range names(t, p, 3) {
		if n != "b" {
			t.Fatalf("a real server of weight 0 got a connection")
		}
	}
	waitFor(t, "connections to end", func() bool { return liveOf(p, a.addr)+liveOf(p, b.addr) == 0 })
	var aStats *BackendStats
	for _, s := range p.Stats().Backends {
		if s.Addr == a.addr {
			aStats = &s
		}
	}
	if aStats == nil || aStats.Total != 1 {
		t.Errorf("the weight-0 real server's counters: %+v, want its 1 connection", aStats)
	}

	p.Update([]Backend{{a.addr, 1}, {b.addr, 1}})
	p.Reconfigure(Config{Scheduler: SourceHash})
	got := names(t, p, 4)
	for _, n := range got {
		if n != got[0] {
			t.Fatalf("after Reconfigure to source_hash one client went to %v", got)
		}
	}
}

func TestReset(t *testing.T) {
	a := startRealServer(t, "a", holdOpen)
	b := startRealServer(t, "b", holdOpen)
	p := startProxy(t, Config{}, Backend{a.addr, 1}, Backend{b.addr, 1})
	held := map[string]net.Conn{}
	for range 2 {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		held[strings.TrimSpace(line)] = c
	}
	if n := p.Reset(a.addr); n != 1 {
		t.Errorf("Reset closed %d connections, want 1", n)
	}
	held["a"].SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := held["a"].Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the client of the reset real server read %v, want a reset", err)
	}
	held["b"].SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := held["b"].Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the other connection: %v, want it open", err)
	}
}

// TestSmallThenBulk sends a short exchange, which goes through the small
// buffer, then a stream larger than it and than a splice chunk, both ways
// through an echoing real server: every byte arrives, in order, and is
// counted once.
func TestSmallThenBulk(t *testing.T) {
	rs := startRealServer(t, "echo", func(_ *realServer, c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
	p := startProxy(t, Config{}, Backend{rs.addr, 1})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hello := []byte("hello, real server\n")
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len(hello))
	if _, err := io.ReadFull(c, echo); err != nil || !bytes.Equal(echo, hello) {
		t.Fatalf("echo %q, %v", echo, err)
	}
	stream := make([]byte, 3*copyChunk+12345)
	for i := range stream {
		stream[i] = byte(i*7 + i>>13)
	}
	go func() {
		c.Write(stream)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, stream) {
		t.Fatalf("the stream came back with %d of %d bytes, equal %v (%v)", len(got), len(stream), bytes.Equal(got, stream), err)
	}
	want := uint64(len(hello) + len(stream))
	waitFor(t, "the connection counted out", func() bool { return liveOf(p, rs.addr) == 0 })
	for _, b := range p.Stats().Backends {
		if b.BytesIn != want || b.BytesOut != want {
			t.Errorf("stats %+v, want %d bytes each way", b, want)
		}
	}
}
