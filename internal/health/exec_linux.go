package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"
)

func newExecProbe(s *ExecSpec) (Probe, error) {
	p := &execProbe{argv: append([]string(nil), s.Command...)}
	if len(s.Env) > 0 {
		// os/exec keeps the last value of a duplicated key.
		p.env = append(os.Environ(), s.Env...)
	}
	return p, nil
}

// Probe runs the command in a process group of its own. When the command
// exits, or ctx is done (SIGTERM to the group, SIGKILL after killGrace), the
// whole group is killed before the command is reaped: nothing it started is
// left running, and while the unreaped leader holds the group's ID, no other
// process can take it.
func (p *execProbe) Probe(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	var out tailBuffer
	cmd := p.command(&out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		// A missing command is a failure of the check, not of vipd.
		return fmt.Errorf("exec %s: %w", p.argv[0], err)
	}
	pgid := cmd.Process.Pid // Setpgid: the leader's PID is the group's ID
	exited := make(chan struct{})
	go func() {
		waitExited(pgid)
		close(exited)
	}()

	var killed error
	select {
	case <-exited:
	case <-ctx.Done():
		killed = fmt.Errorf("killed: %w", context.Cause(ctx))
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		grace := time.NewTimer(killGrace)
		select {
		case <-exited:
		case <-grace.C:
		}
		grace.Stop()
	}
	// Whatever is left in the group goes, even after a clean exit.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if killed != nil {
		reap := time.NewTimer(reapWait)
		defer reap.Stop()
		select {
		case <-exited:
		case <-reap.C:
			go func() {
				<-exited
				_ = cmd.Wait()
			}()
			return &ExecError{Command: p.argv[0], ExitCode: -1, Output: out.Bytes(),
				Err: fmt.Errorf("%w; not exited %v after SIGKILL, reaping in the background", killed, reapWait)}
		}
	}
	err := cmd.Wait()
	if killed == nil && err == nil {
		return nil
	}
	e := &ExecError{Command: p.argv[0], ExitCode: cmd.ProcessState.ExitCode(), Output: out.Bytes(), Err: err}
	if killed != nil {
		e.Err = killed
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited 0 but something outside its group kept the
		// output open.
		e.Err = fmt.Errorf("exited 0 but its output stayed open %v: %w", pipeGrace, err)
	}
	return e
}

// waitExited blocks until the process pid has exited, without reaping it
// (waitid with WNOWAIT), so that its PID cannot be reused yet.
func waitExited(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
