package main

import (
	"context"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

func TestSettleTime(t *testing.T) {
	cfg := &config.Config{Instances: []config.Instance{
		{AdvertInterval: time.Second, Announce: config.Announce{Count: 5, Interval: 200 * time.Millisecond}},
		{AdvertInterval: 2 * time.Second},
		{AdvertInterval: 100 * time.Millisecond},
	}}
	if got, want := settleTime(cfg), 9*time.Second; got != want {
		t.Errorf("settleTime = %v, want %v", got, want)
	}
}

// returnIdleMemory releases once after the start has settled, once after
// each burst of transitions has, never while one goes on, and gives up when
// vipd stops. The test plays the ticker and the transition counter, so each
// tick is handled in lockstep.
func TestReturnIdleMemory(t *testing.T) {
	never := func() (<-chan time.Time, func()) { return nil, func() {} }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	returnIdleMemory(ctx, make(chan struct{}), never, func() uint64 { return 0 }, func() { t.Error("released before the start") })

	ticks := make(chan time.Time)
	counts := make(chan uint64)   // what each call of transitions returns
	releases := make(chan string) // unbuffered: a release waits for the test
	ctx, cancel = context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		returnIdleMemory(ctx, started, func() (<-chan time.Time, func()) { return ticks, func() {} },
			func() uint64 { return <-counts }, func() { releases <- "release" })
	}()
	defer func() {
		cancel()
		<-done
	}()
	// step delivers one tick at which the counter reads n, and reports
	// whether that tick released.
	step := func(n uint64, want bool) {
		t.Helper()
		ticks <- time.Time{}
		counts <- n
		wait := 20 * time.Millisecond // for a release that should not come
		if want {
			wait = 5 * time.Second
		}
		select {
		case <-releases:
			if !want {
				t.Fatalf("released at a tick with the counter at %d", n)
			}
		case <-time.After(wait):
			if want {
				t.Fatalf("no release at a tick with the counter at %d", n)
			}
		}
	}
	close(started)
	counts <- 0    // read once started
	step(0, true)  // startup settled
	step(0, false) // nothing happened
	step(3, false) // a burst: transitions at every tick
	step(7, false)
	step(8, false)
	step(8, true)  // a quiet tick after it
	step(8, false) // and no more
	step(9, false) // a single transition is a burst too
	step(9, true)
}
