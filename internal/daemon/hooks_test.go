package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// recorder is a notify command that appends its arguments to a file.
func recorder(t *testing.T) (argv []string, lines func() []string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hooks.log")
	script := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{script}, func() []string {
		b, _ := os.ReadFile(out)
		if len(b) == 0 {
			return nil
		}
		return strings.Split(strings.ReplaceAll(strings.TrimSuffix(string(b), "\n"), " ", "_"), "\n")
	}
}

func TestNotifyHooksRecordTransitions(t *testing.T) {
	seg := &segment{}
	hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
	argv, lines := recorder(t)
	masterArgv, masterLines := recorder(t)
	ic := instanceConfig(100)
	ic.Notify = config.Notify{Command: argv, Master: masterArgv, Timeout: time.Second}
	n1 := startConfig(t, hs[1], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
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
	if got := lines(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("notify calls:\n got %v\nwant %v", got, want)
	}
	if got := masterLines(); len(got) != 2 {
		t.Errorf("master hook ran %d times (%v), want 2", len(got), got)
	}
}

// A hook that hangs is killed at its timeout and never holds the protocol
// back: the next transition happens on time.
func TestHangingHookDoesNotDelayFailover(t *testing.T) {
	seg := &segment{}
	hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
	ic := instanceConfig(150)
	ic.Notify = config.Notify{Command: []string{"/bin/sleep", "30"}, Timeout: 50 * time.Millisecond}
	n0 := startConfig(t, hs[0], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
	startNode(t, hs[1], 100)
	waitFor(t, 2*time.Second, "host 0 to become master", only(0, hs...))
	start := time.Now()
	n0.stop()
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("stopping took %v with a hanging hook", d)
	}
	waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
}
