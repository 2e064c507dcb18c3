package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Outgoing is one message for WriteBatch: B, a marshalled VRRP message, to
// be sent from Src to Dst.
type Outgoing struct {
	B        []byte
	Src, Dst netip.Addr
}

// batchState is what WriteBatch reuses from call to call: the control
// message of every source and the socket address of every destination seen
// (a handful: the interface's addresses and the unicast peers), and the
// message slices. mu serialises WriteBatch calls.
type batchState[M any] struct {
	mu    sync.Mutex
	oob   map[netip.Addr][]byte
	addrs map[netip.Addr]*net.IPAddr
	bufs  [][]byte
	msgs  []M
}

// addr returns dst as a socket address, made once.
func (s *batchState[M]) addr(dst netip.Addr) *net.IPAddr {
	if a := s.addrs[dst]; a != nil {
		return a
	}
	if s.addrs == nil {
		s.addrs = map[netip.Addr]*net.IPAddr{}
	}
	a := &net.IPAddr{IP: dst.AsSlice()}
	s.addrs[dst] = a
	return a
}

// control returns the control message for src, marshalled once by marshal.
func (s *batchState[M]) control(src netip.Addr, marshal func() []byte) []byte {
	if b, ok := s.oob[src]; ok {
		return b
	}
	if s.oob == nil {
		s.oob = map[netip.Addr][]byte{}
	}
	b := marshal()
	s.oob[src] = b
	return b
}

// send sends ms in order, msg making each system message, write sending a
// batch of them and returning how many it sent. It stops at the first
// message that fails and returns how many were sent before it, and its
// error.
func (s *batchState[M]) send(ms []Outgoing, msg func(bufs [][]byte, m Outgoing) M, write func([]M, int) (int, error)) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(s.bufs) < len(ms) {
		s.bufs = make([][]byte, len(ms))
		s.msgs = make([]M, 0, len(ms))
	}
	s.bufs = s.bufs[:len(ms)]
	s.msgs = s.msgs[:0]
	for i, m := range ms {
		s.bufs[i] = m.B
		s.msgs = append(s.msgs, msg(s.bufs[i:i+1], m))
	}
	sent := 0
	for sent < len(s.msgs) {
		n, err := write(s.msgs[sent:], 0)
		sent += max(n, 0)
		if err != nil {
			return sent, fmt.Errorf("transport: send from %v to %v: %w", ms[sent].Src, ms[sent].Dst, err)
		}
		if n <= 0 {
			return sent, fmt.Errorf("transport: send from %v to %v: no message sent", ms[sent].Src, ms[sent].Dst)
		}
	}
	return sent, nil
}
