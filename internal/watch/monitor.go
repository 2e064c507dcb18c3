package watch

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/ladder"
	"github.com/vipd/vipd/internal/transport"

	"github.com/vipd/vipd/pkg/vrrp"
)

// Monitor feeds one interface's Table from any number of sockets (one per
// family: 224.0.0.18 and ff02::12) and hands out reports. It is safe for concurrent use: each
// socket's reader and the refresh loop serialise on its lock.
type Monitor struct {
	iface string
	now   func() time.Time

	mu    sync.Mutex
	table *Table
	pkt   vrrp.Packet // reused by Handle under mu
}

// NewMonitor returns a monitor for the interface named iface (used in
// reports only). now is its clock; nil means time.Now.
func NewMonitor(iface string, cfg Config, now func() time.Time) *Monitor {
	if now == nil {
		now = time.Now
	}
	return &Monitor{iface: iface, now: now, table: NewTable(cfg)}
}

// Handle checks b, a VRRP message without its IP header received from src
// for dst with IPv4 TTL or IPv6 hop limit ttl, records it as an advert or as
// a drop, and returns the drop reason, drop.None for an advert. Both
// families take the one ladder: the hop limit must be 255 as the TTL must
// (RFC 9568 §7.1), and the checksum covers the pseudo-header of src and dst
// of either family (§5.2.8).
func (m *Monitor) Handle(b []byte, src, dst netip.Addr, ttl int) drop.Reason {
	m.mu.Lock()
	defer m.mu.Unlock()
	// No rules and no address of its own: ladder applies the TTL and codec
	// checks only, and admits both versions, as a monitor reports VRRPv2
	// neighbours too.
	r := ladder.Check(&m.pkt, b, transport.Meta{Src: src, Dst: dst, TTL: ttl}, netip.Addr{}, time.Time{}, nil)
	if r != drop.None {
		m.table.Drop(r)
		return r
	}
	m.table.Observe(m.now(), src, &m.pkt)
	return drop.None
}

func (m *Monitor) drop(r drop.Reason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.table.Drop(r)
}

// Report forgets the senders silent for too long and returns the table now.
func (m *Monitor) Report() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.table.Expire(now)
	r := m.table.Report(now)
	r.Interface = m.iface
	return r
}

// Refresh calls render with a fresh report at every tick, until ctx is done
// or, when count is positive, count reports were rendered. It returns the
// first error of render.
func (m *Monitor) Refresh(ctx context.Context, ticks <-chan time.Time, count int, render func(Report) error) error {
	for n := 0; count <= 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
		if err := render(m.Report()); err != nil {
			return err
		}
	}
	return nil
}
