package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"
)

// A task is one part of a running vipd: the daemon, a listener, a loop.
// Whatever can fail at startup (opening a socket) is done before the task is
// built, so that such a failure stops vipd before anything runs.
type task struct {
	name string
	// run runs the task until ctx is done. An error, or a return before
	// ctx is done, stops every other task.
	run func(ctx context.Context) error
	// ready is closed once the task does its job. nil means it does from
	// the moment it runs.
	ready <-chan struct{}
}

// errStoppedEarly is what a task that returns nil before shutdown failed with.
var errStoppedEarly = errors.New("stopped before shutdown")

// A runner runs tasks under one errgroup, so that the first to fail cancels
// the others' context.
type runner struct {
	log   *slog.Logger
	tasks []task
	ready chan struct{}
}

func newRunner(log *slog.Logger) *runner {
	return &runner{log: log, ready: make(chan struct{})}
}

// add adds tasks to run. Call it before run.
func (r *runner) add(tasks ...task) { r.tasks = append(r.tasks, tasks...) }

// Ready is closed once every task is ready. It stays open if vipd stops
// first.
func (r *runner) Ready() <-chan struct{} { return r.ready }

// run runs every task until ctx is done or one of them fails, and returns
// once all have returned. A failure is logged when it happens, with the
// task's name, because the others may take a while to stop (the daemon's
// graceful shutdown); run returns the first, prefixed with that name. Call
// run once.
func (r *runner) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, t := range r.tasks {
		g.Go(func() error {
			err := t.run(ctx)
			switch {
			case err != nil:
			case ctx.Err() == nil:
				err = errStoppedEarly
			default:
				return nil
			}
			r.log.Error("task failed", "task", t.name, "err", err)
			return fmt.Errorf("%s: %w", t.name, err)
		})
	}
	g.Go(func() error {
		for _, t := range r.tasks {
			if t.ready == nil {
				continue
			}
			select {
			case <-t.ready:
			case <-ctx.Done():
				return nil
			}
		}
		close(r.ready)
		return nil
	})
	return g.Wait()
}

// reloadOnHangup is the run of the task that reloads the configuration at
// every signal on hup (SIGHUP). The caller subscribes hup to the signal
// before anything runs and unsubscribes only when vipd exits, so that a
// SIGHUP during startup or shutdown is not fatal.
func reloadOnHangup(hup <-chan os.Signal, reload func() error) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				// reload logs a refused config itself; the running one
				// stays.
				_ = reload()
			}
		}
	}
}
