package daemon

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
)

// hookQueue bounds the notify commands waiting to run for one instance.
const hookQueue = 64

// hookDrain is how long the hooks queued at shutdown may still run.
const hookDrain = 300 * time.Millisecond

// hooks runs an instance's notify commands one at a time, in the order of
// its transitions, each bounded by its timeout, on a goroutine of its own:
// a failing or hanging hook is logged and never delays the protocol.
type hooks struct {
	log    *slog.Logger
	run    func(ctx context.Context, argv []string) error
	q      chan []string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards timeout
	timeout time.Duration
}

// newHooks starts the runner; run runs one command (health.RunCommand).
func newHooks(timeout time.Duration, run func(context.Context, []string) error, log *slog.Logger) *hooks {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hooks{log: log, run: run, q: make(chan []string, hookQueue), cancel: cancel, done: make(chan struct{}), timeout: timeout}
	go h.serve(ctx)
	return h
}

func (h *hooks) setTimeout(d time.Duration) {
	h.mu.Lock()
	h.timeout = d
	h.mu.Unlock()
}

// transition queues the commands for one state change: the generic command
// with keepalived's arguments (INSTANCE, name, state, priority), then the
// command for the new state.
func (h *hooks) transition(n config.Notify, name string, to router.State, prio uint8) {
	state := keepalivedState(to)
	if len(n.Command) > 0 {
		argv := append(append([]string(nil), n.Command...), "INSTANCE", name, state, strconv.Itoa(int(prio)))
		h.enqueue(argv)
	}
	if per := perState(n, to); len(per) > 0 {
		h.enqueue(per)
	}
}

// group queues the commands for a sync group's state change: the generic
// command with keepalived's arguments (GROUP, name, state), then the
// command for the new state.
func (h *hooks) group(n config.Notify, name string, to router.State) {
	if len(n.Command) > 0 {
		h.enqueue(append(append([]string(nil), n.Command...), "GROUP", name, keepalivedState(to)))
	}
	if per := perState(n, to); len(per) > 0 {
		h.enqueue(per)
	}
}

// perState is the command of n for state s.
func perState(n config.Notify, s router.State) []string {
	switch s {
	case router.Master:
		return n.Master
	case router.Backup:
		return n.Backup
	case router.Fault:
		return n.Fault
	case router.Init:
		return n.Stop
	}
	return nil
}

func (h *hooks) enqueue(argv []string) {
	select {
	case h.q <- argv:
	default:
		h.log.Error("notify queue full; hook dropped", "command", argv[0], "queued", hookQueue)
	}
}

func (h *hooks) serve(ctx context.Context) {
	defer close(h.done)
	for argv := range h.q {
		h.mu.Lock()
		timeout := h.timeout
		h.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		err := h.run(rctx, argv)
		cancel()
		if err != nil {
			h.log.Warn("notify hook failed", "command", strings.Join(argv, " "), "took", time.Since(start).Round(time.Millisecond), "err", err)
			continue
		}
		h.log.Debug("notify hook ran", "command", strings.Join(argv, " "), "took", time.Since(start).Round(time.Millisecond))
	}
}

// close lets the queued hooks run for at most hookDrain, then kills what
// is left.
func (h *hooks) close() {
	close(h.q)
	select {
	case <-h.done:
	case <-time.After(hookDrain):
		h.cancel()
		<-h.done
	}
	h.cancel()
}

// keepalivedState is the state word keepalived passes to notify scripts.
func keepalivedState(s router.State) string {
	switch s {
	case router.Master:
		return "MASTER"
	case router.Backup:
		return "BACKUP"
	case router.Fault:
		return "FAULT"
	}
	return "STOP"
}
