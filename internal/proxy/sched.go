package proxy

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// Scheduler picks the real server for a new connection.
type Scheduler uint8

// Schedulers, named as in the configuration.
const (
	RoundRobin Scheduler = iota // each real server in turn, by weight
	Random                      // at random, by weight
	SourceHash                  // by a hash of the client's address, by weight
	LeastConn                   // the fewest live connections per unit of weight
)

var schedulerNames = [...]string{
	RoundRobin: "round_robin",
	Random:     "random",
	SourceHash: "source_hash",
	LeastConn:  "least_conn",
}

func (s Scheduler) String() string {
	if int(s) < len(schedulerNames) {
		return schedulerNames[s]
	}
	return fmt.Sprintf("scheduler%d", uint8(s))
}

// ParseScheduler returns the scheduler with the configuration name s.
func ParseScheduler(s string) (Scheduler, error) {
	for i, n := range schedulerNames {
		if n == s {
			return Scheduler(i), nil
		}
	}
	return 0, fmt.Errorf("proxy: unknown scheduler %q", s)
}

// table is an immutable set of healthy real servers, swapped whole by
// Update, so that picking one takes no lock.
type table struct {
	bs  []*backend
	w   []int // reduced weights, parallel to bs
	seq []int // indexes of bs, each as often as its reduced weight, interleaved
	rr  atomic.Uint64
}

func newTable(bs []*backend, weights []int) *table {
	t := &table{bs: bs, w: reduce(weights)}
	total := 0
	for _, w := range t.w {
		total += w
	}
	// Smooth weighted round robin (nginx's), as internal/lb's map: with
	// weights 2 and 1 the order is A, B, A rather than A, A, B.
	cur := make([]int, len(bs))
	for range total {
		best := -1
		for i := range bs {
			if t.w[i] == 0 {
				continue
			}
			cur[i] += t.w[i]
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		t.seq = append(t.seq, best)
	}
	return t
}

// reduce divides positive weights by their greatest common divisor; the
// others become 0 (out of the schedule).
func reduce(ws []int) []int {
	g := 0
	for _, w := range ws {
		if w > 0 {
			a, b := g, w
			for b != 0 {
				a, b = b, a%b
			}
			g = a
		}
	}
	out := make([]int, len(ws))
	if g == 0 {
		return out
	}
	for i, w := range ws {
		if w > 0 {
			out[i] = w / g
		}
	}
	return out
}

// pick returns the index in t.bs of the first real server to try for a
// client; -1 when there is none.
func (t *table) pick(s Scheduler, client netip.Addr) int {
	if len(t.seq) == 0 {
		return -1
	}
	switch s {
	case Random:
		return t.seq[rand.IntN(len(t.seq))]
	case SourceHash:
		h := fnv.New32a()
		b := client.As16()
		h.Write(b[:])
		return t.seq[h.Sum32()%uint32(len(t.seq))]
	case LeastConn:
		return t.leastConn()
	}
	return t.seq[(t.rr.Add(1)-1)%uint64(len(t.seq))]
}

// leastConn is weighted least connections: the real server whose live
// connections divided by its weight are fewest. Ties go round robin, so
// that idle real servers share the first connections.
func (t *table) leastConn() int {
	start := int(t.rr.Add(1)-1) % len(t.bs)
	best := -1
	var bestLive int64
	for k := range t.bs {
		i := (start + k) % len(t.bs)
		if t.w[i] == 0 {
			continue
		}
		live := t.bs[i].live.Load()
		// live_i/w_i < live_best/w_best, without division.
		if best < 0 || live*int64(t.w[best]) < bestLive*int64(t.w[i]) {
			best, bestLive = i, live
		}
	}
	return best
}
