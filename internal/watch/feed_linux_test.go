package watch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// fakeConn is a simulated socket: ReadFrom returns what was queued, an error
// for a queued error, and net.ErrClosed once closed.
type fakeConn struct {
	ch   chan fakeRead
	once sync.Once
	done chan struct{}
}

type fakeRead struct {
	b    []byte
	meta transport.Meta
	err  error
}

var _ Conn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{ch: make(chan fakeRead, 64), done: make(chan struct{})}
}

func (c *fakeConn) ReadFrom(b []byte) (int, transport.Meta, error) {
	select {
	case r := <-c.ch:
		if r.err != nil {
			return 0, transport.Meta{}, r.err
		}
		return copy(b, r.b), r.meta, nil
	case <-c.done:
		return 0, transport.Meta{}, fmt.Errorf("fake: %w", net.ErrClosed)
	}
}

func (c *fakeConn) Close() error { c.once.Do(func() { close(c.done) }); return nil }

// runFeed runs m.Feed(c) until the test ends and checks that it returns nil
// once c is closed.
func runFeed(t *testing.T, m *Monitor, c interface {
	Conn
	Close() error
}) {
	errc := make(chan error, 1)
	go func() { errc <- m.Feed(c) }()
	t.Cleanup(func() {
		c.Close()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Feed after Close: %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Feed still running 5s after Close")
		}
	})
}

func TestSegmentSimulated(t *testing.T) {
	for _, sd := range []sides{sides4, sides6} {
		t.Run(sd.fam.String(), func(t *testing.T) {
			clk := &fakeClock{now: t0}
			m := NewMonitor("sim0", Config{}, clk.Now)
			c := newFakeConn()
			runFeed(t, m, c)
			testSegment(t, segment{mon: m, clk: clk, send: func(b []byte, src netip.Addr, ttl int) error {
				c.ch <- fakeRead{b: b, meta: transport.Meta{Src: src, Dst: groupOf(src), TTL: ttl, IfIndex: 1}}
				return nil
			}}, sd)
		})
	}
}

// TestFeedTwoSockets: two sockets feed one monitor, as IPv4 and IPv6 do,
// and a read error is counted, not fatal.
func TestFeedTwoSockets(t *testing.T) {
	m := NewMonitor("sim0", Config{}, (&fakeClock{now: t0}).Now)
	c1, c2 := newFakeConn(), newFakeConn()
	runFeed(t, m, c1)
	runFeed(t, m, c2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("fe80::3")
	c1.ch <- fakeRead{b: marshal(t, adv(7, 100, 100, "192.0.2.50"), a), meta: transport.Meta{Src: a, Dst: vrrp.IPv4Group, TTL: 255}}
	c2.ch <- fakeRead{err: errors.New("transport: control message: truncated")}
	c2.ch <- fakeRead{b: marshal(t, adv(7, 100, 100, "2001:db8::50"), b), meta: transport.Meta{Src: b, Dst: vrrp.IPv6Group, TTL: 255}}
	waitHeard(t, m, 3)
	r := m.Report()
	if len(r.Routers) != 2 || r.Adverts != 2 || len(r.Drops) != 1 || r.Drops[0] != (DropCount{drop.Read, 1}) {
		t.Fatalf("report: %+v", r)
	}
	// One VRID in two families is two groups, not a conflict.
	if r.Routers[0].Family != IPv4 || r.Routers[1].Family != IPv6 || len(r.Conflicts) != 0 {
		t.Errorf("routers %+v, conflicts %+v", r.Routers, r.Conflicts)
	}
}
