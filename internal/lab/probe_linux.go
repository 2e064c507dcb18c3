package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MaxProbe bounds a prober's life whatever its context says.
const MaxProbe = 10 * time.Minute

// ProbeStats summarises a prober's run.
type ProbeStats struct {
	Sent, Received int
	// Outage is the longest time between two replies with lost requests
	// between them: how long the client could not reach the target. A gap
	// without losses is the prober itself stalling on a busy machine, and
	// only counts in MaxGap.
	Outage time.Duration
	// An outage still going on counts from the last reply to now. Only
	// lost requests after a first reply count: before it, the client may
	// still be resolving the target's address.
	//
	// OutageStart is the last reply before the outage, OutageEnd the first
	// after it, zero if it is still going on; both zero if no request was
	// lost.
	OutageStart, OutageEnd time.Time
	// MaxGap is the longest time between two replies, losses or not.
	MaxGap time.Duration
	// FirstReply and LastReply are zero if there was no reply.
	FirstReply, LastReply time.Time
	// SendErrors counts echo requests the kernel refused (e.g. an
	// unresolvable neighbour).
	SendErrors int
}

// Prober sends ICMP (or ICMPv6) echo requests from the client to a target
// at a fixed pace and records when replies arrive.
type Prober struct {
	conn   *icmp.PacketConn
	target netip.Addr
	// proto is the ICMP protocol number for parsing: 1, or 58 for IPv6.
	proto          int
	echo, echoRepl icmp.Type
	id             int
	cancel         context.CancelFunc
	wg             sync.WaitGroup

	mu    sync.Mutex
	stats ProbeStats
	last  uint64    // the highest request number answered so far
	end   time.Time // when Stop was called
}

// probeMagic starts every request's payload; a request number follows.
const probeMagic = "vipd-lab"

// Probe starts pinging target from the client every interval (2ms for the
// benchmark) over a raw ICMP or ICMPv6 socket opened in the client's
// namespace. It runs until Stop, ctx's end or MaxProbe. An IPv6 target needs
// a lab with Config.IPv6.
func (l *Lab) Probe(ctx context.Context, target netip.Addr, interval time.Duration) (*Prober, error) {
	target = target.Unmap()
	if target.Is6() && !l.IPv6 {
		return nil, fmt.Errorf("probe %s: the lab has no IPv6 (Config.IPv6)", target)
	}
	var conn *icmp.PacketConn
	err := InNS(l.Client.NS, func() error {
		var err error
		if target.Is4() {
			conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
			return err
		}
		if conn, err = icmp.ListenPacket("ip6:ipv6-icmp", "::"); err != nil {
			return err
		}
		// Only echo replies: neighbour discovery, MLD and router
		// solicitations would otherwise queue on the socket too.
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := conn.IPv6PacketConn().SetICMPFilter(&f); err != nil {
			conn.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe: raw ICMP socket in %s: %w", l.Client.NS, err)
	}
	var id [2]byte
	if _, err := rand.Read(id[:]); err != nil {
		conn.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, MaxProbe)
	p := &Prober{conn: conn, target: target, id: int(binary.BigEndian.Uint16(id[:])), cancel: cancel,
		proto: 1, echo: ipv4.ICMPTypeEcho, echoRepl: ipv4.ICMPTypeEchoReply}
	if target.Is6() {
		// The kernel fills in an ICMPv6 raw socket's checksum.
		p.proto, p.echo, p.echoRepl = 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	p.wg.Add(2)
	go p.send(ctx, interval)
	go p.receive(ctx)
	return p, nil
}

func (p *Prober) send(ctx context.Context, interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	dst := &net.IPAddr{IP: p.target.AsSlice()}
	// Requests are numbered from 1 in the payload: the ICMP sequence
	// number wraps after two minutes at 2ms.
	for n := uint64(1); ; n++ {
		data := binary.BigEndian.AppendUint64([]byte(probeMagic), n)
		msg := icmp.Message{
			Type: p.echo,
			Body: &icmp.Echo{ID: p.id, Seq: int(n & 0xffff), Data: data},
		}
		b, err := msg.Marshal(nil)
		if err == nil {
			_, err = p.conn.WriteTo(b, dst)
		}
		p.mu.Lock()
		p.stats.Sent++
		if err != nil {
			p.stats.SendErrors++
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Prober) receive(ctx context.Context) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		// A short deadline keeps the loop responsive to ctx even when
		// nothing arrives; Stop also closes the socket.
		_ = p.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := p.conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if a, ok := from.(*net.IPAddr); !ok || !a.IP.Equal(p.target.AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(p.proto, buf[:n])
		if err != nil || m.Type != p.echoRepl {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id || len(e.Data) != len(probeMagic)+8 || string(e.Data[:len(probeMagic)]) != probeMagic {
			continue
		}
		p.record(now, binary.BigEndian.Uint64(e.Data[len(probeMagic):]))
	}
}

// record notes the reply to request n, received at now.
func (p *Prober) record(now time.Time, n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.stats
	s.Received++
	if s.FirstReply.IsZero() {
		s.FirstReply, s.LastReply, p.last = now, now, n
		return
	}
	gap := now.Sub(s.LastReply)
	s.MaxGap = max(s.MaxGap, gap)
	// Requests between the last one answered and this one went
	// unanswered: a real outage, not a stall of the prober.
	if n > p.last+1 && gap > s.Outage {
		s.Outage, s.OutageStart, s.OutageEnd = gap, s.LastReply, now
	}
	p.last = max(p.last, n)
	s.LastReply = now
}

// ongoingAfter is how many requests in a row must go unanswered for an
// outage to count as going on: fewer may just be in flight.
const ongoingAfter = 5

// Stats returns the figures so far.
func (p *Prober) Stats() ProbeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	if !s.LastReply.IsZero() && uint64(s.Sent) >= p.last+ongoingAfter {
		now := p.end
		if now.IsZero() {
			now = time.Now()
		}
		if ongoing := now.Sub(s.LastReply); ongoing > s.Outage {
			s.Outage, s.OutageStart, s.OutageEnd = ongoing, s.LastReply, time.Time{}
		}
	}
	return s
}

// WaitReply waits until a reply arrives after t.
func (p *Prober) WaitReply(ctx context.Context, t time.Time) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if last := p.Stats().LastReply; last.After(t) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for an echo reply from %s: %w", p.target, ctx.Err())
		case <-tick.C:
		}
	}
}

// ResetOutage forgets the outage and longest gap so far, so that Stats and
// Stop report only gaps after this call (the first reply after it still
// closes a gap that started before).
func (p *Prober) ResetOutage() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Outage, p.stats.OutageStart, p.stats.OutageEnd = 0, time.Time{}, time.Time{}
	p.stats.MaxGap = 0
}

// Stop ends the prober, closes its socket and returns its figures. Calling
// it again returns the same figures.
func (p *Prober) Stop() ProbeStats {
	p.mu.Lock()
	if p.end.IsZero() {
		p.end = time.Now()
	}
	p.mu.Unlock()
	p.cancel()
	_ = p.conn.Close()
	p.wg.Wait()
	return p.Stats()
}
