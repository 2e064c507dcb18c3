package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

// wait bounds every wait for another goroutine; it is long because a noisy
// machine can be slow, and it is only reached when a test fails.
const wait = 10 * time.Second

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// waitFor polls cond until it holds, failing t after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// call is one run of a fakeProbe, answered by the test.
type call struct {
	ctx   context.Context
	at    time.Time
	reply chan error
}

// fakeProbe hands each run to the test on calls and returns what the test
// replies. With ignoreCtx it keeps blocking after its context is done, like a
// probe stuck in the kernel.
type fakeProbe struct {
	clk       *health.FakeClock
	ignoreCtx bool
	calls     chan call

	active, maxActive atomic.Int32
}

func newFakeProbe(clk *health.FakeClock, ignoreCtx bool) *fakeProbe {
	return &fakeProbe{clk: clk, ignoreCtx: ignoreCtx, calls: make(chan call, 16)}
}

func (p *fakeProbe) Probe(ctx context.Context) error {
	n := p.active.Add(1)
	defer p.active.Add(-1)
	for {
		m := p.maxActive.Load()
		if n <= m || p.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	c := call{ctx: ctx, at: p.clk.Now(), reply: make(chan error, 1)}
	p.calls <- c
	if p.ignoreCtx {
		return <-c.reply
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// next returns the next run, failing t if none starts.
func (p *fakeProbe) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(wait):
		t.Fatal("timed out waiting for a run to start")
		return call{}
	}
}

// noCall fails t if a run has started.
func (p *fakeProbe) noCall(t *testing.T) {
	t.Helper()
	select {
	case c := <-p.calls:
		t.Fatalf("unexpected run started at %v", c.at)
	default:
	}
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the logged records at level or above.
func (b *logBuffer) records(t *testing.T, level slog.Level) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for dec.More() {
		var r map[string]any
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(r["level"].(string))); err != nil {
			t.Fatal(err)
		}
		if l >= level {
			out = append(out, r)
		}
	}
	return out
}

// startChecker runs c until the test ends and checks that Run returns once
// its context is cancelled.
func startChecker(t *testing.T, c *health.Checker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(wait):
			t.Error("Run did not return after its context was cancelled")
		}
	})
}

func newTestChecker(t *testing.T, s health.Spec, ignoreCtx bool) (*health.Checker, *fakeProbe, *health.FakeClock, *logBuffer) {
	t.Helper()
	clk := health.NewFakeClock(t0)
	p := newFakeProbe(clk, ignoreCtx)
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return health.NewChecker(s, p, clk, log), p, clk, &logs
}

// processed waits until the Checker has recorded the result of the run at at.
func processed(t *testing.T, c *health.Checker, at time.Time) health.Result {
	t.Helper()
	waitFor(t, "result of the run at "+at.Format(time.StampMilli), func() bool { return c.Last().At.Equal(at) })
	return c.Last()
}

func recvUpdate(t *testing.T, ch <-chan health.Update) health.Update {
	t.Helper()
	select {
	case u := <-ch:
		return u
	default:
		t.Fatal("no update pending")
		return health.Update{}
	}
}

func noUpdate(t *testing.T, ch <-chan health.Update) {
	t.Helper()
	select {
	case u := <-ch:
		t.Fatalf("unexpected update %+v", u)
	default:
	}
}

func TestCheckerSchedule(t *testing.T) {
	s := health.Spec{Name: "web", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}
	c, p, clk, logs := newTestChecker(t, s, false)
	updates := c.Subscribe()
	if u := recvUpdate(t, updates); u.Up || u.Check != "web" {
		t.Fatalf("initial update %+v, want web down", u)
	}
	startChecker(t, c)

	// The first run starts at once. It takes 300ms, which must not push
	// the schedule: runs start every Interval.
	r := p.next(t)
	if !r.at.Equal(t0) {
		t.Fatalf("first run at %v, want %v", r.at, t0)
	}
	clk.Advance(300 * time.Millisecond)
	r.reply <- nil
	if res := processed(t, c, t0); !res.OK || res.Err != nil || res.Duration != 300*time.Millisecond {
		t.Fatalf("first result %+v, want OK after 300ms", res)
	}
	if c.Up() {
		t.Fatal("up after one success with rise 2")
	}
	noUpdate(t, updates)

	// Results: + (above) + - - + +; state changes at the 2nd, 4th and 6th.
	results := []error{nil, errors.New("boom 1"), errors.New("boom 2"), nil, nil}
	wantUp := []bool{true, true, false, false, true}
	wantChange := []bool{true, false, true, false, true}
	at := t0
	for i, res := range results {
		clk.Advance(at.Add(s.Interval).Sub(clk.Now()))
		at = at.Add(s.Interval)
		r := p.next(t)
		if !r.at.Equal(at) {
			t.Fatalf("run %d started at %v, want %v", i+2, r.at, at)
		}
		r.reply <- res
		got := processed(t, c, at)
		if got.OK != (res == nil) || !errors.Is(got.Err, res) {
			t.Fatalf("run %d: result %+v, want err %v", i+2, got, res)
		}
		if c.Up() != wantUp[i] {
			t.Fatalf("run %d: Up() = %v, want %v", i+2, c.Up(), wantUp[i])
		}
		if !wantChange[i] {
			noUpdate(t, updates)
			continue
		}
		u := recvUpdate(t, updates)
		if u.Up != wantUp[i] || u.Check != "web" || !u.Result.At.Equal(at) {
			t.Fatalf("run %d: update %+v, want up=%v at %v", i+2, u, wantUp[i], at)
		}
	}
	p.noCall(t)

	// One line per change at info or above, none per run.
	recs := logs.records(t, slog.LevelInfo)
	want := []struct {
		level, msg, err string
	}{
		{"INFO", "health check up", ""},
		{"WARN", "health check down", "boom 2"},
		{"INFO", "health check up", ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d log lines at info or above, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r["level"] != w.level || r["msg"] != w.msg || r["check"] != "web" {
			t.Errorf("log line %d: %v, want %s %q with check=web", i, r, w.level, w.msg)
		}
		if w.err != "" && r["err"] != w.err {
			t.Errorf("log line %d: err=%v, want %q", i, r["err"], w.err)
		}
	}
	if n := len(logs.records(t, slog.LevelDebug)); n <= len(want) {
		t.Errorf("%d log lines at debug, want one per run too", n)
	}
}

func TestCheckerTimeout(t *testing.T) {
	s := health.Spec{Name: "slow", Interval: time.Second, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1, InitialUp: true}
	c, p, clk, _ := newTestChecker(t, s, false)
	updates := c.Subscribe()
	recvUpdate(t, updates)
	startChecker(t, c)

	r := p.next(t)
	clk.Advance(199 * time.Millisecond)
	if !c.Up() || !c.Last().At.IsZero() {
		t.Fatal("run decided before its timeout")
	}
	clk.Advance(time.Millisecond)
	res := processed(t, c, t0)
	if res.OK || !errors.Is(res.Err, health.ErrTimeout) || res.Duration != s.Timeout {
		t.Fatalf("result %+v, want ErrTimeout after %v", res, s.Timeout)
	}
	select {
	case <-r.ctx.Done():
	case <-time.After(wait):
		t.Fatal("the run's context was not cancelled at the timeout")
	}
	if cause := context.Cause(r.ctx); cause != health.ErrTimeout {
		t.Errorf("context cause %v, want ErrTimeout", cause)
	}
	if u := recvUpdate(t, updates); u.Up || !errors.Is(u.Result.Err, health.ErrTimeout) {
		t.Errorf("update %+v, want down with ErrTimeout", u)
	}
}

func TestCheckerNoOverlap(t *testing.T) {
	s := health.Spec{Name: "stuck", Interval: time.Second, Timeout: 300 * time.Millisecond, Rise: 1, Fall: 3, InitialUp: true}
	c, p, clk, _ := newTestChecker(t, s, true)
	updates := c.Subscribe()
	recvUpdate(t, updates)
	startChecker(t, c)

	// The probe ignores its context: the timeout fails the run, and while
	// it has not returned, due runs are skipped: the first uncounted (the
	// failed run may still be being killed), the rest as failures.
	stuck := p.next(t)
	clk.Advance(s.Timeout)
	if res := processed(t, c, t0); !errors.Is(res.Err, health.ErrTimeout) {
		t.Fatalf("result %+v, want ErrTimeout", res)
	}
	clk.Advance(t0.Add(s.Interval).Sub(clk.Now()))
	waitFor(t, "the first skipped slot", func() bool { return clk.Timers() == 1 })
	p.noCall(t)
	if !c.Last().At.Equal(t0) {
		t.Fatalf("the first slot after a timeout was counted: %+v", c.Last())
	}
	for i := 2; i <= 3; i++ {
		clk.Advance(t0.Add(time.Duration(i) * s.Interval).Sub(clk.Now()))
		res := processed(t, c, clk.Now())
		if res.OK || !errors.Is(res.Err, health.ErrOverrun) {
			t.Fatalf("skipped run %d: result %+v, want ErrOverrun", i, res)
		}
		p.noCall(t)
	}
	if c.Up() {
		t.Fatal("still up after a timeout and two counted skipped runs with fall 3")
	}
	if u := recvUpdate(t, updates); u.Up || !errors.Is(u.Result.Err, health.ErrOverrun) {
		t.Fatalf("update %+v, want down with ErrOverrun", u)
	}

	// Once the stuck run returns, runs start again on the schedule.
	stuck.reply <- nil
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("no run started after the stuck one returned")
		}
		clk.Advance(s.Interval)
		now := clk.Now()
		var started *call
		waitFor(t, "a run or a skipped run", func() bool {
			select {
			case r := <-p.calls:
				started = &r
				return true
			default:
				return c.Last().At.Equal(now)
			}
		})
		if started == nil {
			continue // the Checker saw the tick before the late result
		}
		if !started.at.Equal(now) {
			t.Fatalf("run started at %v, want %v", started.at, now)
		}
		started.reply <- nil
		if res := processed(t, c, now); !res.OK {
			t.Fatalf("result %+v, want OK", res)
		}
		break
	}
	if !c.Up() {
		t.Error("not up after a success with rise 1")
	}
	if n := p.maxActive.Load(); n != 1 {
		t.Errorf("%d runs at once, want 1", n)
	}
}

func TestCheckerCoalescesUpdates(t *testing.T) {
	s := health.Spec{Name: "flap", Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}
	c, p, clk, _ := newTestChecker(t, s, false)
	slow := c.Subscribe() // never read until the end
	fast := c.Subscribe()
	recvUpdate(t, fast)
	startChecker(t, c)

	// Every result changes the state; the Checker must keep running
	// although slow's channel stays full.
	const runs = 9
	for i := range runs {
		if i > 0 {
			clk.Advance(s.Interval)
		}
		r := p.next(t)
		if i%2 == 0 {
			r.reply <- nil
		} else {
			r.reply <- errors.New("flap")
		}
		processed(t, c, clk.Now())
		if u := recvUpdate(t, fast); u.Up != (i%2 == 0) || !u.Result.At.Equal(clk.Now()) {
			t.Fatalf("run %d: fast subscriber got %+v", i, u)
		}
	}
	u := recvUpdate(t, slow)
	if !u.Up || !u.Result.At.Equal(clk.Now()) {
		t.Errorf("slow subscriber got %+v, want the latest state: up at %v", u, clk.Now())
	}
	noUpdate(t, slow)
}

func TestCheckerSubscribeLate(t *testing.T) {
	s := health.Spec{Name: "late", Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}
	c, p, _, _ := newTestChecker(t, s, false)
	startChecker(t, c)
	p.next(t).reply <- nil
	processed(t, c, t0)
	u := recvUpdate(t, c.Subscribe())
	if !u.Up || !u.Result.OK || !u.Result.At.Equal(t0) {
		t.Errorf("late subscriber got %+v, want the current state: up at %v", u, t0)
	}
}

// TestCheckerSystemClock runs a probe that ignores its context on the real
// clock: the timeout alone must take the check down.
func TestCheckerSystemClock(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	probe := health.ProbeFunc(func(context.Context) error {
		<-release
		return nil
	})
	s := health.Spec{Name: "hang", Interval: 100 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 1, Fall: 1, InitialUp: true}
	c := health.NewChecker(s, probe, nil, nil)
	updates := c.Subscribe()
	recvUpdate(t, updates)
	startChecker(t, c)
	select {
	case u := <-updates:
		if u.Up || !errors.Is(u.Result.Err, health.ErrTimeout) {
			t.Errorf("update %+v, want down with ErrTimeout", u)
		}
	case <-time.After(wait):
		t.Fatal("a hanging probe did not take the check down")
	}
}

// TestCheckerStall: after the clock jumps over several intervals (a
// suspended host), one run starts and the schedule restarts from there.
func TestCheckerStall(t *testing.T) {
	s := health.Spec{Name: "stall", Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}
	c, p, clk, _ := newTestChecker(t, s, false)
	startChecker(t, c)
	p.next(t).reply <- nil
	processed(t, c, t0)

	clk.Advance(5*time.Second + 500*time.Millisecond)
	r := p.next(t)
	if want := t0.Add(5500 * time.Millisecond); !r.at.Equal(want) {
		t.Fatalf("run after the stall at %v, want %v", r.at, want)
	}
	r.reply <- nil
	processed(t, c, r.at)
	p.noCall(t)
	clk.Advance(999 * time.Millisecond)
	p.noCall(t)
	clk.Advance(time.Millisecond)
	if r := p.next(t); !r.at.Equal(t0.Add(6500 * time.Millisecond)) {
		t.Fatalf("next run at %v, want one interval after the stall", r.at)
	}
}
