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

// returnStartupMemory gives the memory that starting up left behind back to
// the system, once, when started is closed and the elections have settled.
// Starting hundreds of instances grows the heap and the goroutine stacks
// well beyond what the steady state uses, and at vipd's low allocation rate
// the next collection, which would shrink the stacks, can be minutes away:
// the process would keep a few MiB it does not use.
func returnStartupMemory(ctx context.Context, started <-chan struct{}, settle time.Duration) {
	select {
	case <-started:
	case <-ctx.Done():
		return
	}
	t := time.NewTimer(settle)
	defer t.Stop()
	select {
	case <-t.C:
		// A collection halves an idle goroutine's stack at most once, and
		// startup grew the drivers' stacks to 16 or 32 KiB.
		for range 3 {
			debug.FreeOSMemory()
		}
	case <-ctx.Done():
	}
}
