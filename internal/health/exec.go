package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"
)

const (
	// maxOutput bounds the output of a command kept for the log: its last
	// bytes, where the reason for a failure usually is.
	maxOutput = 4 << 10
	// killGrace is how long a command has to exit after SIGTERM before its
	// process group is killed.
	killGrace = 250 * time.Millisecond
	// pipeGrace bounds the wait for the output pipe after the process group
	// is gone; only a process that left the group can hold it open.
	pipeGrace = 500 * time.Millisecond
	// reapWait bounds the wait for the command to exit after SIGKILL. A
	// process in uninterruptible sleep can outlast it; it is then reaped in
	// the background.
	reapWait = 5 * time.Second
)

// ExecError is the failure of an exec check whose command ran: it exited
// with a non-zero status or was killed.
type ExecError struct {
	Command string
	// ExitCode is the exit status, or -1 when the command was killed by a
	// signal.
	ExitCode int
	// Output is the end of the command's combined stdout and stderr, at
	// most 4 KiB.
	Output []byte
	// Err is what happened: an *exec.ExitError, or the context's cause when
	// the command was killed at its timeout.
	Err error
}

func (e *ExecError) Error() string {
	msg := fmt.Sprintf("exec %s: %v", e.Command, e.Err)
	if out := bytes.TrimSpace(e.Output); len(out) > 0 {
		msg += fmt.Sprintf(": output %q", out)
	}
	return msg
}

func (e *ExecError) Unwrap() error { return e.Err }

type execProbe struct {
	argv []string
	env  []string // nil: inherit
}

// tailBuffer keeps the last maxOutput bytes written to it. Writes never
// fail, so the command is never stopped by a full pipe.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) >= maxOutput {
		b.buf = append(b.buf[:0], p[len(p)-maxOutput:]...)
		return len(p), nil
	}
	if over := len(b.buf) + len(p) - maxOutput; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *tailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}

// command returns the command of one run, with stdout and stderr going to
// out.
func (p *execProbe) command(out *tailBuffer) *exec.Cmd {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	if p.env != nil {
		cmd.Env = p.env
	}
	// Stdin is /dev/null. One writer for both streams: os/exec then uses
	// a single pipe and writes from one goroutine.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = pipeGrace
	return cmd
}

// RunCommand runs argv without a shell, bounded by ctx, the way an exec
// check does: in its own process group, the whole group killed when ctx is
// done or the command exits. A non-zero exit is an *ExecError.
func RunCommand(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("health: empty command")
	}
	p, err := newExecProbe(&ExecSpec{Command: argv})
	if err != nil {
		return err
	}
	return p.Probe(ctx)
}
