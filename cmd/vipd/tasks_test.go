package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// testLog returns a logger that writes to the returned buffer. Read the
// buffer only once whatever logs has returned.
func testLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// untilDone is the run of a task that does its job until ctx is done.
func untilDone(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// closed reports whether c is closed, without waiting.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A failing task stops the others, which still shut down at their own pace
// (the daemon's priority-0 adverts), and run returns its error under its
// name once every task has returned.
func TestRunnerFailureStopsTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logged := testLog()
		boom := errors.New("address already in use")
		fail := make(chan struct{})
		var shutDown atomic.Bool
		r := newRunner(log)
		r.add(
			task{name: "daemon", run: func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(2 * time.Second) // graceful shutdown, on fake time
				shutDown.Store(true)
				return nil
			}, ready: make(chan struct{})},
			task{name: "metrics", run: func(ctx context.Context) error {
				select {
				case <-fail:
					return boom
				case <-ctx.Done():
					return nil
				}
			}},
			task{name: "reload", run: untilDone},
		)
		errc := make(chan error, 1)
		go func() { errc <- r.run(context.Background()) }()
		synctest.Wait()
		if len(errc) > 0 {
			t.Fatalf("run returned %v before anything failed", <-errc)
		}

		start := time.Now()
		close(fail)
		err := <-errc
		if !errors.Is(err, boom) || err.Error() != "metrics: address already in use" {
			t.Errorf("run = %v, want metrics: %v", err, boom)
		}
		if !shutDown.Load() {
			t.Error("run returned before the daemon had shut down")
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("run returned %v after the failure, want 2s (the daemon's shutdown)", d)
		}
		if !strings.Contains(logged.String(), `level=ERROR msg="task failed" task=metrics err="address already in use"`) {
			t.Errorf("the failure is not logged with the task's name:\n%s", logged)
		}
		if closed(r.Ready()) {
			t.Error("Ready is closed, but the daemon never was ready")
		}
	})
}

// A task that returns nil before shutdown has stopped doing its job: vipd
// must not go on without it.
func TestRunnerTaskStoppedEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logged := testLog()
		r := newRunner(log)
		r.add(
			task{name: "daemon", run: untilDone},
			task{name: "control socket", run: func(context.Context) error { return nil }},
		)
		err := r.run(context.Background())
		if !errors.Is(err, errStoppedEarly) || !strings.HasPrefix(err.Error(), "control socket: ") {
			t.Errorf("run = %v, want control socket: %v", err, errStoppedEarly)
		}
		if !strings.Contains(logged.String(), `task="control socket"`) {
			t.Errorf("the failure is not logged with the task's name:\n%s", logged)
		}
	})
}

// Shutdown is when ctx is done: every task returns nil and so does run,
// after the last of them.
func TestRunnerShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logged := testLog()
		ctx, cancel := context.WithCancel(context.Background())
		var returned atomic.Int32
		r := newRunner(log)
		for _, name := range []string{"control socket", "metrics", "daemon", "systemd"} {
			r.add(task{name: name, run: func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(time.Second)
				returned.Add(1)
				return nil
			}})
		}
		errc := make(chan error, 1)
		go func() { errc <- r.run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run = %v after a normal shutdown, want nil", err)
		}
		if n := returned.Load(); n != 4 {
			t.Errorf("run returned when %d of 4 tasks had", n)
		}
		if logged.Len() > 0 {
			t.Errorf("logged at a normal shutdown:\n%s", logged)
		}
	})
}

// An error at shutdown, such as the daemon's failing to remove its VIPs or
// the control socket's file, still fails vipd.
func TestRunnerErrorAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, _ := testLog()
		ctx, cancel := context.WithCancel(context.Background())
		r := newRunner(log)
		r.add(
			task{name: "daemon", run: func(ctx context.Context) error {
				<-ctx.Done()
				return errors.New("VIPs left behind")
			}},
			task{name: "reload", run: untilDone},
		)
		errc := make(chan error, 1)
		go func() { errc <- r.run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-errc; err == nil || err.Error() != "daemon: VIPs left behind" {
			t.Errorf("run = %v, want daemon: VIPs left behind", err)
		}
	})
}

// Ready is closed once every task with a ready channel has closed it, and
// not before; a task without one, like the systemd notifier that waits for
// Ready, does not hold it back.
func TestRunnerReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, _ := testLog()
		ctx, cancel := context.WithCancel(context.Background())
		listening, started := make(chan struct{}), make(chan struct{})
		var notified atomic.Bool
		r := newRunner(log)
		r.add(
			task{name: "control socket", run: untilDone, ready: listening},
			task{name: "daemon", run: untilDone, ready: started},
			task{name: "memory", run: untilDone},
			task{name: "systemd", run: func(ctx context.Context) error {
				select {
				case <-r.Ready():
					notified.Store(true)
				case <-ctx.Done():
				}
				<-ctx.Done()
				return nil
			}},
		)
		errc := make(chan error, 1)
		go func() { errc <- r.run(ctx) }()

		synctest.Wait()
		if notified.Load() || closed(r.Ready()) {
			t.Fatal("ready before any task was")
		}
		close(started)
		synctest.Wait()
		if notified.Load() || closed(r.Ready()) {
			t.Fatal("ready before the control socket was")
		}
		close(listening)
		synctest.Wait()
		if !notified.Load() || !closed(r.Ready()) {
			t.Fatal("not ready once every task was")
		}
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run = %v", err)
		}
	})
}

// Every SIGHUP reloads, until shutdown.
func TestReloadOnHangup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hup := make(chan os.Signal)
		var reloads atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		run := reloadOnHangup(hup, func() error {
			reloads.Add(1)
			return errors.New("refused") // logged by the reload; not fatal
		})
		go func() { errc <- run(ctx) }()
		hup <- syscall.SIGHUP
		hup <- syscall.SIGHUP
		synctest.Wait()
		if n := reloads.Load(); n != 2 {
			t.Errorf("%d reloads after 2 SIGHUPs", n)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run = %v at shutdown, want nil", err)
		}
	})
}
