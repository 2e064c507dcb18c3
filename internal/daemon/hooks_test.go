package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// commands records the notify commands a daemon runs, in order, instead of
// running them: the real ones are run by the end-to-end tests.
type commands struct {
	mu  sync.Mutex
	ran []string
}

// run records argv, with its arguments joined by _, and returns; a command
// named "hang" hangs until its timeout.
func (c *commands) run(ctx context.Context, argv []string) error {
	if argv[0] == "hang" {
		<-ctx.Done()
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ran = append(c.ran, strings.Join(argv, "_"))
	return nil
}

// of lists the commands named name that ran, with their arguments.
func (c *commands) of(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.ran {
		if rest, ok := strings.CutPrefix(r, name+"_"); ok {
			out = append(out, rest)
		} else if r == name {
			out = append(out, "")
		}
	}
	return out
}

func withCommands(c *commands) func(*Daemon) { return func(d *Daemon) { d.runCommand = c.run } }

func TestNotifyHooksRecordTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		cmds := &commands{}
		ic := instanceConfig(100)
		ic.Notify = config.Notify{Command: []string{"notify"}, Master: []string{"master"}, Timeout: time.Second}
		n1 := startConfig(t, hs[1], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}, withCommands(cmds))
		waitFor(t, 2*time.Second, "host 1 to become master", only(1, hs...))
		n0 := startNode(t, hs[0], 150)
		waitFor(t, 2*time.Second, "host 0 to preempt", only(0, hs...))
		n0.stop()
		waitFor(t, time.Second, "host 1 to take over again", only(1, hs...))
		n1.stop()

		want := []string{
			"INSTANCE_api_BACKUP_100",
			"INSTANCE_api_MASTER_100",
			"INSTANCE_api_BACKUP_100",
			"INSTANCE_api_MASTER_100",
			"INSTANCE_api_STOP_100",
		}
		if got := cmds.of("notify"); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("notify calls:\n got %v\nwant %v", got, want)
		}
		if got := cmds.of("master"); len(got) != 2 {
			t.Errorf("master hook ran %d times (%v), want 2", len(got), got)
		}
	})
}

// A hook that hangs is killed at its timeout and never holds the protocol
// back: the next transition happens on time.
func TestHangingHookDoesNotDelayFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		ic := instanceConfig(150)
		ic.Notify = config.Notify{Command: []string{"hang"}, Timeout: 50 * time.Millisecond}
		n0 := startConfig(t, hs[0], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}, withCommands(&commands{}))
		startNode(t, hs[1], 100)
		waitFor(t, 2*time.Second, "host 0 to become master", only(0, hs...))
		start := time.Now()
		n0.stop()
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("stopping took %v with a hanging hook", d)
		}
		waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
	})
}
