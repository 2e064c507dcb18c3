package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

var (
	// ErrTimeout is the error of a run that did not finish within the
	// check's timeout; the run's context is cancelled with it as the cause.
	ErrTimeout = errors.New("health check timed out")
	// ErrOverrun is the error recorded when a run is due while the previous
	// one, already failed by its timeout, has still not returned.
	ErrOverrun = errors.New("previous run has not returned")
)

// Update is a state change of a check, with the result that caused it.
type Update struct {
	Check  string
	Up     bool
	Result Result
}

// Checker runs one check on its schedule and publishes its state changes.
//
// Runs start every Interval, the first at once, and never overlap. A run
// counts as failed when its timeout passes: its context is cancelled, and
// the Checker decides without waiting for the probe to return, so a probe
// stuck beyond cancellation (a process in uninterruptible sleep) still takes
// the check down. While such a run has not returned, each due run is skipped
// and recorded as a failure with ErrOverrun.
type Checker struct {
	spec  Spec
	probe Probe
	clk   Clock
	log   *slog.Logger

	tracker *Tracker // owned by Run

	mu   sync.Mutex
	up   bool
	last Result
	subs []chan Update
}

// NewChecker returns a Checker for s that runs p. Only s's name, schedule and
// rise/fall are used; s.Interval must be positive. A timeout that is not
// positive or exceeds the interval is taken to be the interval. A nil clk is
// the SystemClock, a nil log discards.
func NewChecker(s Spec, p Probe, clk Clock, log *slog.Logger) *Checker {
	if s.Interval <= 0 {
		panic(fmt.Sprintf("health: check %q has interval %v", s.Name, s.Interval))
	}
	if s.Timeout <= 0 || s.Timeout > s.Interval {
		s.Timeout = s.Interval
	}
	if clk == nil {
		clk = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := NewTracker(s)
	return &Checker{
		spec:    s,
		probe:   p,
		clk:     clk,
		log:     log.With("check", s.Name),
		tracker: t,
		up:      t.Up(),
	}
}

// Up reports whether the check is up.
func (c *Checker) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// Last returns the most recent result; it is zero before the first.
func (c *Checker) Last() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Subscribe returns a channel that receives the check's state changes. It
// holds the current state at once, so a subscriber needs no separate read
// of Up. The channel has room for one update and is never closed: when the
// subscriber falls behind, an unread update is replaced by the newer one, so
// a slow subscriber never blocks the Checker and always ends up with the
// latest state.
func (c *Checker) Subscribe() <-chan Update {
	ch := make(chan Update, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	ch <- Update{Check: c.spec.Name, Up: c.up, Result: c.last}
	c.subs = append(c.subs, ch)
	return ch
}

// run is a probe in flight.
type run struct {
	start  time.Time
	cancel context.CancelCauseFunc
	// timer is the run's timeout; timeout is its channel, nil once the run
	// is decided, when the result of the probe no longer counts.
	timer   Timer
	timeout <-chan time.Time
	// graced says a due run was skipped, uncounted, while this one,
	// already failed by its timeout, was still being cleaned up.
	graced bool
}

// Run runs the check until ctx is done. Call it once. When it returns, a run
// still in flight has been cancelled and finishes on its own.
func (c *Checker) Run(ctx context.Context) {
	// done carries the probe's result; at most one run is in flight, so a
	// run that returns after Run has stopped never blocks.
	done := make(chan Result, 1)
	var cur *run
	next := c.clk.Now()
	tick, tickC := c.clk.NewTimer(0)
	defer func() {
		tick.Stop()
		if cur != nil {
			cur.timer.Stop()
			cur.cancel(context.Cause(ctx))
		}
	}()
	for {
		var timeoutC <-chan time.Time
		if cur != nil {
			timeoutC = cur.timeout
		}
		select {
		case <-ctx.Done():
			return
		case <-tickC:
			// Starts keep to the grid of the first one; after a stall
			// (a suspended host) the grid restarts instead of bursting.
			clock := c.clk.Now()
			next = next.Add(c.spec.Interval)
			if !next.After(clock) {
				next = clock.Add(c.spec.Interval)
			}
			tick, tickC = c.clk.NewTimer(next.Sub(clock))
			if cur != nil {
				// A run that timed out has been counted as a failure
				// already; killing and reaping it may take into the
				// next slot (an exec check's process group gets a grace
				// after SIGTERM). Skip that one slot uncounted, so one
				// slow run is one failure; a probe that stays stuck
				// fails every slot after it.
				if cur.timeout == nil && !cur.graced {
					cur.graced = true
					continue
				}
				c.record(Result{Err: ErrOverrun, At: clock})
				continue
			}
			cur = c.start(ctx, clock, done)
		case <-timeoutC:
			cur.cancel(ErrTimeout)
			cur.timeout = nil
			c.record(Result{
				Err:      fmt.Errorf("%w after %v", ErrTimeout, c.spec.Timeout),
				Duration: c.spec.Timeout,
				At:       cur.start,
			})
		case r := <-done:
			decided := cur.timeout == nil
			cur.timer.Stop()
			cur.cancel(nil)
			cur = nil
			if decided {
				c.log.Debug("health check run returned after its timeout", "duration", r.Duration, "err", r.Err)
				continue
			}
			c.record(r)
		}
	}
}

// start launches a run at now; the probe's result arrives on done.
func (c *Checker) start(ctx context.Context, now time.Time, done chan<- Result) *run {
	rctx, cancel := context.WithCancelCause(ctx)
	timer, timeout := c.clk.NewTimer(c.spec.Timeout)
	go func() {
		err := c.probe.Probe(rctx)
		done <- Result{OK: err == nil, Err: err, Duration: c.clk.Now().Sub(now), At: now}
	}()
	return &run{start: now, cancel: cancel, timer: timer, timeout: timeout}
}

// record feeds r to the tracker, stores it and publishes a state change.
func (c *Checker) record(r Result) {
	up, changed := c.tracker.Observe(r.OK)
	c.mu.Lock()
	c.last = r
	c.up = up
	if changed {
		u := Update{Check: c.spec.Name, Up: up, Result: r}
		for _, ch := range c.subs {
			publish(ch, u)
		}
	}
	c.mu.Unlock()

	switch {
	case changed && up:
		c.log.Info("health check up", "rise", c.tracker.rise)
	case changed:
		c.log.Warn("health check down", "fall", c.tracker.fall, "err", r.Err)
	case r.OK:
		c.log.Debug("health check passed", "duration", r.Duration)
	default:
		c.log.Debug("health check failed", "duration", r.Duration, "err", r.Err, "up", up)
	}
}

// publish puts u in ch, replacing an update the subscriber has not read. It
// never blocks: all sends happen under Checker.mu, so after the drain there
// is room.
func publish(ch chan Update, u Update) {
	select {
	case ch <- u:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- u:
	default:
	}
}
