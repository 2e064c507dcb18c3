package main

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// settleTime is how long after every instance has started the elections
// and the Masters' announcements are over: Master_Down_Interval (3 × the
// advert interval plus a skew below one interval, RFC 9568 §6.1) and the
// announcement rounds of the slowest instance, plus a second.
func settleTime(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, in := range cfg.Instances {
		t := 4*in.AdvertInterval + time.Duration(in.Announce.Count)*in.Announce.Interval
		longest = max(longest, t)
	}
	return longest + time.Second
}

// returnIdleMemory gives the memory a burst of work left behind back to
// the system once the burst is over: after startup, once started is closed
// and the elections have settled, and after every later burst of state
// changes (transitions counts them; a failover of hundreds of instances
// adds hundreds of netlink requests and announcements), once none has
// happened for a whole settle period. Such bursts grow the heap and the
// goroutine stacks well beyond what the steady state uses, and at vipd's
// low allocation rate the next collection, which would shrink the stacks,
// can be minutes away: the process would keep a few MiB it does not use.
// It looks once per tick (one per settle period, from newTicker), and
// releases only after a burst.
func returnIdleMemory(ctx context.Context, started <-chan struct{}, newTicker func() (<-chan time.Time, func()), transitions func() uint64, release func()) {
	select {
	case <-started:
	case <-ctx.Done():
		return
	}
	ticks, stop := newTicker()
	defer stop()
	last, dirty := transitions(), true // startup is the first burst
	for {
		select {
		case <-ticks:
		case <-ctx.Done():
			return
		}
		switch n := transitions(); {
		case n != last:
			last, dirty = n, true
		case dirty:
			dirty = false
			release()
		}
	}
}

// settleTicker ticks once per settle period.
func settleTicker(settle time.Duration) func() (<-chan time.Time, func()) {
	return func() (<-chan time.Time, func()) {
		t := time.NewTicker(max(settle, time.Millisecond))
		return t.C, t.Stop
	}
}

// freeMemory returns the free heap and the unused parts of the goroutines'
// stacks to the system.
func freeMemory() {
	// A collection halves an idle goroutine's stack at most once, and a
	// burst grows the drivers' stacks to 16 or 32 KiB.
	for range 3 {
		debug.FreeOSMemory()
	}
}
