package health_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

func execProbe(t *testing.T, env []string, argv ...string) health.Probe {
	t.Helper()
	p, err := health.NewProbe(health.Spec{
		Name: "exec", Interval: time.Minute, Timeout: 30 * time.Second, Rise: 1, Fall: 1,
		Exec: &health.ExecSpec{Command: argv, Env: env},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		argv     []string
		wantCode int // -1: no ExecError; 0: success
		wantOut  string
	}{
		{name: "exit 0", argv: []string{"true"}},
		{name: "exit 1", argv: []string{"false"}, wantCode: 1},
		{name: "exit code and output", argv: []string{"sh", "-c", "echo out; echo oops >&2; exit 3"}, wantCode: 3, wantOut: "out\noops"},
		{name: "arguments reach no shell", argv: []string{"true", "; exit 1"}},
		{name: "env is added", env: []string{"VIPD_HEALTH=yes"}, argv: []string{"sh", "-c", `test "$VIPD_HEALTH" = yes && test -n "$PATH"`}},
		{name: "killed by a signal", argv: []string{"sh", "-c", "kill -9 $$"}, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := execProbe(t, tt.env, tt.argv...).Probe(context.Background())
			if tt.wantCode == 0 && tt.wantOut == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ee *health.ExecError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want an *ExecError", err)
			}
			if ee.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d (%v)", ee.ExitCode, tt.wantCode, err)
			}
			if got := strings.TrimSpace(string(ee.Output)); got != tt.wantOut {
				t.Errorf("output %q, want %q", got, tt.wantOut)
			}
			if tt.wantOut != "" && !strings.Contains(err.Error(), "oops") {
				t.Errorf("error %q does not show the output", err)
			}
		})
	}
}

func TestExecOutputBounded(t *testing.T) {
	// 1 MiB of output: the command must not block on a full pipe, and
	// only its last 4 KiB are kept.
	err := execProbe(t, nil, "sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a; echo; echo the end; exit 1").Probe(context.Background())
	var ee *health.ExecError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want an *ExecError", err)
	}
	if len(ee.Output) != 4096 || !bytes.HasSuffix(ee.Output, []byte("the end\n")) {
		t.Errorf("kept %d bytes ending %q, want the last 4096", len(ee.Output), ee.Output[max(0, len(ee.Output)-20):])
	}
}

func TestExecMissingCommand(t *testing.T) {
	tests := []struct {
		argv string
		want error
	}{
		{"vipd-no-such-health-command", exec.ErrNotFound},
		{"/nonexistent/vipd-check", fs.ErrNotExist},
	}
	for _, tt := range tests {
		err := execProbe(t, nil, tt.argv).Probe(context.Background())
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.argv) {
			t.Errorf("%s: err = %v, want %v naming the command", tt.argv, err, tt.want)
		}
	}
}

func TestExecCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	err := execProbe(t, nil, "touch", filepath.Join(dir, "ran")).Probe(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although its context was done")
	}
}

// subreaper makes the test process the reaper of orphaned descendants, so
// that a grandchild the probe killed can be checked and reaped here whatever
// the container's init does.
func subreaper(t *testing.T) {
	t.Helper()
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", errno)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })
}

// readPIDs waits until the script has written "leader grandchild" to path.
func readPIDs(t *testing.T, path string) (leader, grandchild int) {
	t.Helper()
	waitFor(t, "the script's PIDs", func() bool {
		b, err := os.ReadFile(path)
		f := strings.Fields(string(b))
		if err != nil || len(f) != 3 || f[2] != "ready" {
			return false
		}
		leader, _ = strconv.Atoi(f[0])
		grandchild, _ = strconv.Atoi(f[1])
		return true
	})
	return leader, grandchild
}

// procStat returns the state and process group of pid from /proc, or ok
// false when pid does not exist.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], pgrp, true
}

// assertKilledAndReaped checks that the probe reaped the leader and killed
// the grandchild with SIGKILL, and leaves no zombie behind.
func assertKilledAndReaped(t *testing.T, leader, grandchild int) {
	t.Helper()
	if state, _, ok := procStat(leader); ok {
		t.Errorf("leader %d still in /proc (state %c) after Probe returned", leader, state)
	}
	// The grandchild was orphaned when the leader died; it is ours now.
	var ws syscall.WaitStatus
	deadline := time.Now().Add(wait)
	for {
		pid, err := syscall.Wait4(grandchild, &ws, syscall.WNOHANG, nil)
		if err != nil {
			t.Fatalf("wait4 grandchild %d: %v", grandchild, err)
		}
		if pid == grandchild {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("grandchild %d still running", grandchild)
			_ = syscall.Kill(grandchild, syscall.SIGKILL)
			_, _ = syscall.Wait4(grandchild, &ws, 0, nil)
			return
		}
		time.Sleep(time.Millisecond)
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("grandchild ended with %v, want killed by SIGKILL", ws)
	}
	if state, _, ok := procStat(grandchild); ok {
		t.Errorf("grandchild %d still in /proc (state %c)", grandchild, state)
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	subreaper(t)
	pids := filepath.Join(t.TempDir(), "pids")
	// The script and its grandchild ignore SIGTERM (SIG_IGN is inherited),
	// so only SIGKILL to the whole group ends them.
	script := `trap '' TERM; sleep 1000 & echo $$ $! > "$1.tmp"; echo ready >> "$1.tmp"; mv "$1.tmp" "$1"; wait`
	p := execProbe(t, nil, "sh", "-c", script, "sh", pids)

	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Probe(ctx) }()
	leader, grandchild := readPIDs(t, pids)
	if _, pgrp, ok := procStat(grandchild); !ok || pgrp != leader {
		t.Fatalf("grandchild %d in group %d, want the leader's %d", grandchild, pgrp, leader)
	}
	cancel(health.ErrTimeout)

	var err error
	select {
	case err = <-errc:
	case <-time.After(wait):
		_ = syscall.Kill(-leader, syscall.SIGKILL)
		t.Fatal("Probe did not return after its context was cancelled")
	}
	var ee *health.ExecError
	if !errors.As(err, &ee) || !errors.Is(err, health.ErrTimeout) || ee.ExitCode != -1 {
		t.Fatalf("err = %v, want an *ExecError wrapping ErrTimeout, killed", err)
	}
	assertKilledAndReaped(t, leader, grandchild)
}

// TestExecCleansUpAfterExit: a command that exits 0 but leaves a child
// behind, holding its output open, passes promptly, and the child is killed.
func TestExecCleansUpAfterExit(t *testing.T) {
	subreaper(t)
	pids := filepath.Join(t.TempDir(), "pids")
	script := `sleep 1000 & echo $$ $! ready > "$1.tmp"; mv "$1.tmp" "$1"; exit 0`
	start := time.Now()
	err := execProbe(t, nil, "sh", "-c", script, "sh", pids).Probe(context.Background())
	d := time.Since(start)
	leader, grandchild := readPIDs(t, pids)
	assertKilledAndReaped(t, leader, grandchild)
	if err != nil {
		t.Errorf("err = %v, want nil", err)
	}
	if d > wait {
		t.Errorf("Probe took %v", d)
	}
}
