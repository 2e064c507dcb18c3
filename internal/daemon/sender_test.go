package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// batchConn records each WriteBatch call and fails messages to failDst.
type batchConn struct {
	PacketConn // only WriteBatch is used
	mu         sync.Mutex
	batches    [][]netip.Addr // the destinations of each call
	failDst    netip.Addr
}

func (c *batchConn) WriteBatch(ms []transport.Outgoing) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var dsts []netip.Addr
	defer func() { c.batches = append(c.batches, dsts) }()
	for i, m := range ms {
		if m.Dst == c.failDst {
			return i, errors.New("no route")
		}
		dsts = append(dsts, m.Dst)
	}
	return len(ms), nil
}

func (c *batchConn) calls() [][]netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]netip.Addr(nil), c.batches...)
}

// senderInstance is an instance as far as the sender uses it.
func senderInstance() *instance {
	return &instance{
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		m:   instanceMetrics{sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"})},
	}
}

func out(dsts ...string) []transport.Outgoing {
	var ms []transport.Outgoing
	for _, d := range dsts {
		ms = append(ms, transport.Outgoing{B: []byte{1}, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr(d)})
	}
	return ms
}

func TestSenderBatchesDueAdverts(t *testing.T) {
	conn := &batchConn{failDst: netip.MustParseAddr("192.0.2.99")}
	s := newSender(conn)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const iv = 100 * time.Millisecond // sendEarly 25 ms
	a, b, c, d := senderInstance(), senderInstance(), senderInstance(), senderInstance()
	s.set(a, out("224.0.0.18"), iv, t0)
	s.set(b, out("192.0.2.2", "192.0.2.3"), iv, t0.Add(25*time.Millisecond)) // within sendEarly
	s.set(c, out("224.0.0.18"), iv, t0.Add(26*time.Millisecond))             // not yet
	s.set(d, out("192.0.2.99", "192.0.2.4"), iv, t0.Add(-time.Second))       // far behind; one peer fails

	s.fire(t0)
	calls := conn.calls()
	// The failing message splits the batch in two calls; nothing is left out.
	var sent []netip.Addr
	for _, c := range calls {
		sent = append(sent, c...)
	}
	if len(sent) != 4 {
		t.Fatalf("sent to %v in %d calls, want a, b's two peers and d's working peer", sent, len(calls))
	}
	for _, want := range []string{"224.0.0.18", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
		found := false
		for _, d := range sent {
			found = found || d == netip.MustParseAddr(want)
		}
		if !found {
			t.Errorf("nothing sent to %s", want)
		}
	}
	for name, e := range map[string]struct {
		in   *instance
		due  time.Time
		sent float64
	}{
		"a": {a, t0.Add(iv), 1},
		"b": {b, t0.Add(iv + 25*time.Millisecond), 1}, // keeps its own phase
		"c": {c, t0.Add(26 * time.Millisecond), 0},
		"d": {d, t0.Add(iv), 0}, // restarted from now, not caught up
	} {
		if got := s.entries[e.in].due; !got.Equal(e.due) {
			t.Errorf("%s: next due %v, want %v", name, got.Sub(t0), e.due.Sub(t0))
		}
		if got := testutil.ToFloat64(e.in.m.sent); got != e.sent {
			t.Errorf("%s: %v adverts counted, want %v", name, got, e.sent)
		}
	}
	if !d.sendFailing.Load() || a.sendFailing.Load() {
		t.Errorf("sendFailing: d %v, a %v; want true, false", d.sendFailing.Load(), a.sendFailing.Load())
	}

	// A zero due keeps the schedule; remove stops the adverts.
	s.set(a, out("224.0.0.18"), iv, time.Time{})
	if got := s.entries[a].due; !got.Equal(t0.Add(iv)) {
		t.Errorf("set with a zero due moved the next advert to %v", got.Sub(t0))
	}
	s.remove(a)
	s.remove(b)
	s.remove(d)
	s.fire(t0.Add(time.Hour))
	calls = conn.calls()[len(calls):]
	if len(calls) != 1 || len(calls[0]) != 1 || calls[0][0] != netip.MustParseAddr("224.0.0.18") {
		t.Errorf("after removing all but c, sent %v, want c's one advert", calls)
	}
}

func TestSenderRunsUntilRemoved(t *testing.T) {
	conn := &batchConn{}
	s := newSender(conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	in := senderInstance()
	s.set(in, out("224.0.0.18"), 5*time.Millisecond, time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(in.m.sent) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(in.m.sent); got < 5 {
		t.Fatalf("%v adverts sent in 5 s at a 5 ms interval", got)
	}
	s.remove(in)
	n := testutil.ToFloat64(in.m.sent)
	time.Sleep(50 * time.Millisecond)
	if got := testutil.ToFloat64(in.m.sent); got != n {
		t.Errorf("%v adverts sent after remove", got-n)
	}
}

// TestNoAdvertAfterPriorityZero: a Master that stops takes its periodic
// advert out of the sender before its priority-0 advert, so that nothing
// at its own priority follows it. Repeated, since a batch may be under way
// at the moment the Master stops.
func TestNoAdvertAfterPriorityZero(t *testing.T) {
	for round := range 20 {
		seg := &segment{}
		listener := &fakeConn{seg: seg, in: make(chan packet, 4096), closed: make(chan struct{})}
		seg.conns = append(seg.conns, listener)
		h := newHost(seg, "192.0.2.11")
		n := startNode(t, h, 150)
		waitFor(t, 2*time.Second, "the lone node to become Master", func() bool { return h.has(vip) })
		time.Sleep(time.Duration(round) * time.Millisecond) // a different phase each round
		n.stop()
		var prios []uint8
	read:
		for {
			select {
			case p := <-listener.in:
				var pkt vrrp.Packet
				if err := vrrp.ParseInto(&pkt, p.b, p.src, p.dst); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				prios = append(prios, pkt.Priority)
			default:
				break read
			}
		}
		if len(prios) < 2 || prios[len(prios)-1] != 0 || prios[len(prios)-2] != 150 {
			t.Fatalf("round %d: adverts' priorities end in %v, want ... 150 0", round, prios[max(0, len(prios)-5):])
		}
	}
}
