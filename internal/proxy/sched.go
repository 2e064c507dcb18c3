package proxy

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"

	"github.com/vipd/vipd/internal/lb"
)

// Scheduler picks the real server for a new connection: internal/lb's,
// least_conn included, which only the proxy can follow.
type Scheduler = lb.Scheduler

// Schedulers, named as in the configuration.
const (
	RoundRobin = lb.RoundRobin
	Random     = lb.Random
	SourceHash = lb.SourceHash
	LeastConn  = lb.LeastConn
)

// table is an immutable set of healthy real servers, swapped whole by
// Update, so that picking one takes no lock.
type table struct {
	bs  []*backend
	w   []int // reduced weights, parallel to bs
	seq []int // indexes of bs, each as often as its reduced weight, interleaved
	rr  atomic.Uint64
}

func newTable(bs []*backend, weights []int) *table {
	w, _ := lb.Reduce(weights)
	// The nat map's order: with weights 2 and 1, A, B, A rather than
	// A, A, B.
	return &table{bs: bs, w: w, seq: lb.Schedule(weights)}
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
