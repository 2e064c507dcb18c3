package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Config.
const (
	DefaultConnectTimeout = time.Second
	DefaultTries          = 3
)

// Reason is why a client's connection was closed without a real server.
type Reason uint8

// Reasons, named as in the metrics' reason label.
const (
	// NoBackend: no real server was healthy.
	NoBackend Reason = iota
	// ConnectFailed: every real server tried refused or timed out.
	ConnectFailed
	numReasons
)

var reasonNames = [numReasons]string{NoBackend: "no_backend", ConnectFailed: "connect_failed"}

func (r Reason) String() string { return reasonNames[r] }

// Reasons lists every Reason, for metrics that want all their series.
func Reasons() []Reason { return []Reason{NoBackend, ConnectFailed} }

// Config describes a virtual server's proxy.
type Config struct {
	Name      string // the virtual server, in logs
	Addr      netip.AddrPort
	Scheduler Scheduler
	// Persistence, when positive, sends a client back to the real server
	// it last used, while healthy, until that long after its last
	// connection.
	Persistence time.Duration
	// ConnectTimeout bounds each connect to a real server;
	// DefaultConnectTimeout when 0.
	ConnectTimeout time.Duration
	// Tries is how many real servers a connection tries, the scheduler's
	// pick first, then the next ones in order; DefaultTries when 0.
	Tries int
	// ProxyProtocol sends each real server a PROXY protocol v2 header
	// with the client's address before the client's bytes.
	ProxyProtocol bool
	Log           *slog.Logger
}

// Backend is a real server and its weight (0: no new connections).
type Backend struct {
	Addr   netip.AddrPort
	Weight int
}

// Stats are a proxy's counters since it was opened.
type Stats struct {
	// Rejected counts client connections closed at once, by Reason.
	Rejected [numReasons]uint64
	// Retries counts connects tried after a failed one.
	Retries  uint64
	Backends []BackendStats
}

// BackendStats are the counters of one real server: the current ones,
// and the ones that left the set but still carry connections.
type BackendStats struct {
	Addr netip.AddrPort
	// Live is the connections open now; Total every one established.
	Live, Total     uint64
	ConnectFailures uint64
	// BytesIn went from clients to the real server, BytesOut back. Each
	// direction of a connection is counted in steps of copyChunk and at
	// its end.
	BytesIn, BytesOut uint64
}

// backend is a real server's counters, shared by the tables it is in and
// its connections.
type backend struct {
	addr                     netip.AddrPort
	live                     atomic.Int64
	total, failures, in, out atomic.Uint64
}

// Proxy is one virtual server's listener and connections.
type Proxy struct {
	cfg atomic.Pointer[settings]
	ln  net.Listener
	log *slog.Logger

	tab      atomic.Pointer[table]
	rejected [numReasons]atomic.Uint64
	retries  atomic.Uint64

	mu       sync.Mutex // guards backends, conns and closing
	backends map[netip.AddrPort]*backend
	conns    map[*conn]struct{}
	closing  bool
	idle     chan struct{} // closed when closing and the last conn ends

	acceptDone chan struct{}
}

// settings are a Config as new connections use it, with its affinity
// table (nil without persistence).
type settings struct {
	Config
	aff *affinity
}

// Listen opens cfg.Addr with IP_FREEBIND and serves it until Close.
// There are no real servers until Update.
func Listen(cfg Config) (*Proxy, error) {
	network := "tcp4"
	if cfg.Addr.Addr().Is6() {
		network = "tcp6"
	}
	lc := listenConfig()
	ln, err := lc.Listen(context.Background(), network, cfg.Addr.String())
	if err != nil {
		return nil, err
	}
	return New(cfg, ln), nil
}

// New serves ln, which Close closes.
func New(cfg Config, ln net.Listener) *Proxy {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{ln: ln, log: cfg.Log.With("virtual_server", cfg.Name),
		backends: map[netip.AddrPort]*backend{}, conns: map[*conn]struct{}{}, acceptDone: make(chan struct{})}
	p.Reconfigure(cfg)
	p.tab.Store(newTable(nil, nil))
	go p.accept()
	return p
}

// Reconfigure applies cfg, but for its Addr and Log, to new connections.
// A change of Persistence forgets every client's real server.
func (p *Proxy) Reconfigure(cfg Config) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Tries <= 0 {
		cfg.Tries = DefaultTries
	}
	s := &settings{Config: cfg}
	if old := p.cfg.Load(); old != nil && old.Persistence == cfg.Persistence {
		s.aff = old.aff
	} else if cfg.Persistence > 0 {
		s.aff = newAffinity(cfg.Persistence)
	}
	p.cfg.Store(s)
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Update makes bs the real servers of new connections, those of weight 0
// excepted: giving every configured real server, the unhealthy ones with
// weight 0, keeps their counters. Established connections go on,
// whichever real server they are on; a real server left out is forgotten
// by the first Update after its last connection ended.
func (p *Proxy) Update(bs []Backend) {
	p.mu.Lock()
	keep := make(map[netip.AddrPort]bool, len(bs))
	ptrs := make([]*backend, 0, len(bs))
	ws := make([]int, 0, len(bs))
	for _, b := range bs {
		if keep[b.Addr] {
			continue
		}
		keep[b.Addr] = true
		be := p.backends[b.Addr]
		if be == nil {
			be = &backend{addr: b.Addr}
			p.backends[b.Addr] = be
		}
		ptrs = append(ptrs, be)
		ws = append(ws, b.Weight)
	}
	// A real server no longer in the set keeps its counters while it
	// carries connections.
	for a, be := range p.backends {
		if !keep[a] && be.live.Load() == 0 {
			delete(p.backends, a)
		}
	}
	p.tab.Store(newTable(ptrs, ws))
	p.mu.Unlock()
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	var s Stats
	for i := range s.Rejected {
		s.Rejected[i] = p.rejected[i].Load()
	}
	s.Retries = p.retries.Load()
	p.mu.Lock()
	bes := make([]*backend, 0, len(p.backends))
	for _, be := range p.backends {
		bes = append(bes, be)
	}
	p.mu.Unlock()
	for _, be := range bes {
		live := be.live.Load()
		s.Backends = append(s.Backends, BackendStats{Addr: be.addr, Live: uint64(max(live, 0)), Total: be.total.Load(),
			ConnectFailures: be.failures.Load(), BytesIn: be.in.Load(), BytesOut: be.out.Load()})
	}
	return s
}

// Reset closes the connections to the real server at addr, with a reset
// towards their clients so that they reconnect at once: for a real server
// found gone, whose connections would otherwise hang until keepalive
// gives up. It returns how many there were.
func (p *Proxy) Reset(addr netip.AddrPort) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if c.be.addr == addr {
			_ = c.client.SetLinger(0)
			c.abort()
			n++
		}
	}
	return n
}

// Close stops accepting, waits for the connections to end until ctx is
// done, and then closes those left.
func (p *Proxy) Close(ctx context.Context) error {
	err := p.ln.Close()
	<-p.acceptDone
	p.mu.Lock()
	p.closing = true
	p.idle = make(chan struct{})
	if len(p.conns) == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
	select {
	case <-p.idle:
		return err
	case <-ctx.Done():
	}
	p.mu.Lock()
	left := len(p.conns)
	for c := range p.conns {
		c.abort()
	}
	p.mu.Unlock()
	p.log.Info("proxy drain timed out; closing the connections left", "connections", left)
	<-p.idle
	return err
}

func (p *Proxy) accept() {
	defer close(p.acceptDone)
	var wait time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: back off rather than spin.
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			p.log.Warn("proxy accept failed", "err", err, "retry_in", wait)
			time.Sleep(wait)
			continue
		}
		wait = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		go p.serve(tc)
	}
}

// reject closes c with a reset, so the client fails at once.
func (p *Proxy) reject(c *net.TCPConn, r Reason) {
	p.rejected[r].Add(1)
	_ = c.SetLinger(0)
	c.Close()
}

func (p *Proxy) serve(client *net.TCPConn) {
	from := addrPort(client.RemoteAddr())
	cfg := p.cfg.Load()
	t := p.tab.Load()
	first := -1
	if cfg.aff != nil {
		if a, ok := cfg.aff.get(from.Addr()); ok {
			for i, be := range t.bs {
				if be.addr == a && t.w[i] > 0 {
					first = i
				}
			}
		}
	}
	if first < 0 {
		first = t.pick(cfg.Scheduler, from.Addr())
	}
	if first < 0 {
		p.reject(client, NoBackend)
		return
	}
	be, server := p.connect(cfg, t, first)
	if server == nil {
		p.reject(client, ConnectFailed)
		return
	}
	if cfg.aff != nil {
		cfg.aff.put(from.Addr(), be.addr)
	}
	if cfg.ProxyProtocol {
		hdr := AppendHeaderV2(nil, from, addrPort(client.LocalAddr()))
		_ = server.SetWriteDeadline(time.Now().Add(cfg.ConnectTimeout))
		if _, err := server.Write(hdr); err != nil {
			be.failures.Add(1)
			server.Close()
			p.reject(client, ConnectFailed)
			return
		}
		_ = server.SetWriteDeadline(time.Time{})
	}
	c := &conn{client: client, server: server, be: be}
	be.total.Add(1)
	be.live.Add(1)
	if !p.track(c) {
		be.live.Add(-1)
		c.abort()
		return
	}
	c.run(be)
	be.live.Add(-1)
	p.untrack(c)
}

// connect dials the real servers of t from first on, in order, until one
// answers or Tries have failed.
func (p *Proxy) connect(cfg *settings, t *table, first int) (*backend, *net.TCPConn) {
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	tried := 0
	for k := 0; k < len(t.bs) && tried < cfg.Tries; k++ {
		i := (first + k) % len(t.bs)
		if t.w[i] == 0 {
			continue
		}
		if tried > 0 {
			p.retries.Add(1)
		}
		tried++
		be := t.bs[i]
		c, err := d.Dial("tcp", be.addr.String())
		if err != nil {
			be.failures.Add(1)
			p.log.Debug("connect to real server failed", "real_server", be.addr.String(), "err", err)
			continue
		}
		return be, c.(*net.TCPConn)
	}
	return nil, nil
}

func (p *Proxy) track(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	if p.closing && len(p.conns) == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// copyChunk is how much one splice call of a direction moves at most
// before its bytes are counted.
const copyChunk = 1 << 20

// conn is a client's connection and its real server's.
type conn struct {
	client, server *net.TCPConn
	be             *backend
}

// run moves bytes both ways until both directions end. A direction that
// ends cleanly (FIN) is passed on as a half-close, so the other one goes
// on; one that fails closes both.
func (c *conn) run(be *backend) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.pipe(c.server, c.client, &be.in)
	}()
	c.pipe(c.client, c.server, &be.out)
	<-done
	c.client.Close()
	c.server.Close()
}

// smallBuf is the buffer a direction starts with: reads that fit in it
// go through it, and the first read that fills it hands the direction
// over to splice.
const smallBuf = 4 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

// pipe copies src to dst, counting into n: through a small buffer while
// what comes fits in it (a request, a reply: one read and one write each,
// where splice takes two calls and a pipe), then with splice once a read
// fills it (a stream, which splice moves without copying it through
// userspace).
func (c *conn) pipe(dst, src *net.TCPConn, n *atomic.Uint64) {
	bp := smallBufs.Get().(*[]byte)
	bulk, err := c.copySmall(dst, src, *bp, n)
	smallBufs.Put(bp)
	for bulk && err == nil {
		var k int64
		k, err = io.CopyN(dst, src, copyChunk)
		n.Add(uint64(k))
	}
	if errors.Is(err, io.EOF) {
		_ = dst.CloseWrite()
		return
	}
	c.abort()
}

// copySmall copies src to dst through buf until src ends (io.EOF) or
// fails, or until a read fills buf, which makes the stream bulk.
func (c *conn) copySmall(dst, src *net.TCPConn, buf []byte, n *atomic.Uint64) (bulk bool, err error) {
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return false, werr
			}
			n.Add(uint64(k))
		}
		switch {
		case rerr != nil:
			return false, rerr
		case k == len(buf):
			return true, nil
		}
	}
}

// abort closes both sides at once.
func (c *conn) abort() {
	c.client.Close()
	c.server.Close()
}

// affinity remembers each client's real server for persistence.
type affinity struct {
	ttl   time.Duration
	mu    sync.Mutex
	m     map[netip.Addr]affEntry
	puts  int
	clock func() time.Time
}

type affEntry struct {
	addr    netip.AddrPort
	expires time.Time
}

// affSweep is how many stores go between sweeps of expired clients.
const affSweep = 4096

func newAffinity(ttl time.Duration) *affinity {
	return &affinity{ttl: ttl, m: map[netip.Addr]affEntry{}, clock: time.Now}
}

func (a *affinity) get(client netip.Addr) (netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.m[client]
	if !ok || a.clock().After(e.expires) {
		return netip.AddrPort{}, false
	}
	return e.addr, true
}

func (a *affinity) put(client netip.Addr, to netip.AddrPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock()
	a.m[client] = affEntry{addr: to, expires: now.Add(a.ttl)}
	a.puts++
	if a.puts%affSweep == 0 {
		for k, e := range a.m {
			if now.After(e.expires) {
				delete(a.m, k)
			}
		}
	}
}
