package health_test

import (
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

func TestFakeClock(t *testing.T) {
	clk := health.NewFakeClock(t0)
	_, late := clk.NewTimer(3 * time.Second)
	_, early := clk.NewTimer(time.Second)
	stopped, stoppedC := clk.NewTimer(2 * time.Second)
	_, now := clk.NewTimer(0)
	if got := <-now; !got.Equal(t0) {
		t.Fatalf("zero timer fired with %v, want %v", got, t0)
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of an armed timer must report true once")
	}
	if n := clk.Timers(); n != 2 {
		t.Fatalf("Timers() = %d, want 2", n)
	}
	clk.Advance(999 * time.Millisecond)
	select {
	case <-early:
		t.Fatal("fired early")
	default:
	}
	clk.Advance(5 * time.Second)
	if got := <-early; !got.Equal(t0.Add(time.Second)) {
		t.Errorf("early timer fired with %v, want its deadline", got)
	}
	if got := <-late; !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("late timer fired with %v, want its deadline", got)
	}
	select {
	case <-stoppedC:
		t.Error("a stopped timer fired")
	default:
	}
	if !clk.Now().Equal(t0.Add(5999*time.Millisecond)) || clk.Timers() != 0 {
		t.Errorf("Now() = %v, Timers() = %d", clk.Now(), clk.Timers())
	}
}
