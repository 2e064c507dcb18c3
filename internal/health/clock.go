package health

import (
	"slices"
	"sync"
	"time"
)

// Clock is the time source of a Checker, injected so that tests can use a
// FakeClock. It is the subset of package time a Checker needs, after
// tailscale's tstime.Clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a one-shot timer and its channel, which receives the
	// time once d has passed, as time.NewTimer.
	NewTimer(d time.Duration) (Timer, <-chan time.Time)
}

// Timer is a timer made by a Clock.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did. A
	// Checker drops a timer's channel after stopping it, so a value that
	// was already sent does not matter.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns time.NewTimer(d) and its channel.
func (SystemClock) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

var (
	_ Clock = SystemClock{}
	_ Clock = (*FakeClock)(nil)
)

// FakeClock is a Clock for tests: time stands still until Advance moves it,
// and timers fire only then. It is safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // armed, in no particular order
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when Advance reaches now+d; with d <= 0
// it has fired already.
func (c *FakeClock) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t, t.ch
	}
	c.timers = append(c.timers, t)
	return t, t.ch
}

// Advance moves the time forward by d and fires, in order, every timer due
// by then; each receives its own deadline. It does not wait for anyone to
// react to them.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortFunc(c.timers, func(a, b *fakeTimer) int { return a.when.Compare(b.when) })
	n := 0
	for _, t := range c.timers {
		if t.when.After(c.now) {
			break
		}
		t.ch <- t.when // never blocks: one value per timer, buffer of one
		n++
	}
	c.timers = slices.Delete(c.timers, 0, n)
}

// Timers returns the number of timers that have not fired or been stopped,
// so that a test can wait until the code under test has armed its timers.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	clock *FakeClock
	when  time.Time
	ch    chan time.Time
}

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	return true
}
