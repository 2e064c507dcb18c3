package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakePinger struct {
	started chan struct{}
	wedged  atomic.Bool
	pings   atomic.Int32
}

func (f *fakePinger) Ping(ctx context.Context) error {
	f.pings.Add(1)
	if f.wedged.Load() {
		<-ctx.Done()
		return errors.New("wedged")
	}
	return nil
}

// notifySocket listens where NOTIFY_SOCKET points and returns the messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 100)
	go func() {
		b := make([]byte, 1024)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			msgs <- string(b[:n])
		}
	}()
	return msgs
}

func next(t *testing.T, msgs <-chan string, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case m := <-msgs:
		return m, true
	case <-time.After(within):
		return "", false
	}
}

func TestNotifyReadyOnlyAfterStartThenWatchdog(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	p := &fakePinger{started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		notifySystemd(ctx, p.started, p.Ping, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()

	if m, ok := next(t, msgs, 300*time.Millisecond); ok {
		t.Fatalf("got %q before the daemon started", m)
	}
	close(p.started)
	if m, ok := next(t, msgs, 5*time.Second); !ok || m != "READY=1" {
		t.Fatalf("first message %q (%v), want READY=1", m, ok)
	}
	for i := 0; i < 3; i++ {
		if m, ok := next(t, msgs, 5*time.Second); !ok || m != "WATCHDOG=1" {
			t.Fatalf("message %q (%v), want WATCHDOG=1", m, ok)
		}
	}

	// A wedged protocol loop starves the watchdog.
	p.wedged.Store(true)
	time.Sleep(100 * time.Millisecond)
	for len(msgs) > 0 {
		<-msgs
	}
	if m, ok := next(t, msgs, 400*time.Millisecond); ok {
		t.Fatalf("got %q while a loop was wedged", m)
	}
	p.wedged.Store(false)
	if m, ok := next(t, msgs, 5*time.Second); !ok || m != "WATCHDOG=1" {
		t.Fatalf("message %q (%v) after recovery, want WATCHDOG=1", m, ok)
	}

	cancel()
	<-done
	for {
		m, ok := next(t, msgs, 5*time.Second)
		if !ok {
			t.Fatal("no STOPPING=1 after shutdown")
		}
		if strings.HasPrefix(m, "STOPPING=1") {
			break
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("unexpected %q at shutdown", m)
		}
	}
}
