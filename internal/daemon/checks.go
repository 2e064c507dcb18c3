package daemon

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
)

// checkSet runs the configured health checks, each on its own schedule in
// its own goroutine, and tells the instances that track a check when it
// goes up or down. A check never blocks a protocol loop: its state reaches
// an instance as a message.
type checkSet struct {
	d *Daemon

	applyMu sync.Mutex
	mu      sync.Mutex // guards running
	running map[string]*runningCheck
}

type runningCheck struct {
	cfg     config.Check
	checker *health.Checker
	cancel  context.CancelFunc
	done    chan struct{}
}

// apply starts new checks, restarts changed ones (from the state the old
// one had reached, so a reload does not reset a healthy check to down) and
// stops removed ones.
func (cs *checkSet) apply(ctx context.Context, checks []config.Check) {
	// applyMu serialises reloads; mu is held only to read or change the
	// map, so that up (which the loops call) never waits for a check to
	// stop.
	cs.applyMu.Lock()
	defer cs.applyMu.Unlock()
	keep := map[string]bool{}
	for _, c := range checks {
		keep[c.Name] = true
		old := cs.get(c.Name)
		if old != nil && reflect.DeepEqual(old.cfg, c) {
			continue
		}
		spec := healthSpec(c)
		if old != nil {
			spec.InitialUp = old.checker.Up()
			old.stop()
			cs.d.log.Info("reload: restarting check", "check", c.Name)
		}
		rc, err := cs.start(ctx, c, spec)
		if err != nil {
			// The config was validated; what is left is a certificate
			// file that cannot be read now. The check stays down.
			cs.d.log.Error("check cannot run; it counts as down", "check", c.Name, "err", err)
			rc = cs.failed(ctx, c, spec, err)
		}
		cs.set(c.Name, rc)
	}
	for _, name := range cs.names() {
		if !keep[name] {
			cs.get(name).stop()
			cs.set(name, nil)
			cs.d.m.CheckUp.DeleteLabelValues(name)
			cs.d.m.CheckDuration.DeleteLabelValues(name)
		}
	}
}

func (cs *checkSet) get(name string) *runningCheck {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.running[name]
}

// set records the running check of a name; nil deletes it.
func (cs *checkSet) set(name string, rc *runningCheck) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.running == nil {
		cs.running = map[string]*runningCheck{}
	}
	if rc == nil {
		delete(cs.running, name)
		return
	}
	cs.running[name] = rc
}

func (cs *checkSet) names() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]string, 0, len(cs.running))
	for name := range cs.running {
		out = append(out, name)
	}
	return out
}

func (cs *checkSet) start(ctx context.Context, c config.Check, spec health.Spec) (*runningCheck, error) {
	p, err := cs.d.newProbe(spec)
	if err != nil {
		return nil, err
	}
	return cs.run(ctx, c, spec, timedProbe{p: p, hist: cs.d.m.CheckDuration.WithLabelValues(c.Name)}), nil
}

// failed runs a check whose probe could not be built: it always fails, with
// the error that stopped it, so that its state and logs say why.
func (cs *checkSet) failed(ctx context.Context, c config.Check, spec health.Spec, cause error) *runningCheck {
	spec.InitialUp = false
	return cs.run(ctx, c, spec, health.ProbeFunc(func(context.Context) error { return cause }))
}

func (cs *checkSet) run(ctx context.Context, c config.Check, spec health.Spec, p health.Probe) *runningCheck {
	ctx, cancel := context.WithCancel(ctx)
	rc := &runningCheck{
		cfg:     c,
		checker: health.NewChecker(spec, p, nil, cs.d.log),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	up := cs.d.m.CheckUp.WithLabelValues(c.Name)
	sub := rc.checker.Subscribe()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		rc.checker.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-sub:
				if u.Up {
					up.Set(1)
				} else {
					up.Set(0)
				}
				cs.d.broadcast(ctx, trackCheck, c.Name, u.Up)
			}
		}
	}()
	go func() {
		wg.Wait()
		close(rc.done)
	}()
	return rc
}

func (rc *runningCheck) stop() {
	rc.cancel()
	<-rc.done
}

// up says whether the named check is up; an unknown check is down.
func (cs *checkSet) up(name string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if rc := cs.running[name]; rc != nil {
		return rc.checker.Up()
	}
	return false
}

func (cs *checkSet) stopAll() {
	cs.applyMu.Lock()
	defer cs.applyMu.Unlock()
	for _, name := range cs.names() {
		cs.get(name).stop()
		cs.set(name, nil)
	}
}

func healthSpec(c config.Check) health.Spec {
	s := health.Spec{
		Name:      c.Name,
		Interval:  c.Interval,
		Timeout:   c.Timeout,
		Fall:      c.Fall,
		Rise:      c.Rise,
		InitialUp: c.InitialUp,
	}
	switch {
	case c.Exec != nil:
		s.Exec = &health.ExecSpec{Command: c.Exec.Command}
	case c.HTTP != nil:
		h := c.HTTP
		s.HTTP = &health.HTTPSpec{URL: h.URL, Method: h.Method, Host: h.Host, ExpectStatus: h.ExpectStatus,
			CAFile: h.CAFile, CertFile: h.CertFile, KeyFile: h.KeyFile, InsecureSkipVerify: h.InsecureSkipVerify}
	case c.TCP != nil:
		s.TCP = &health.TCPSpec{Address: c.TCP.Address}
	}
	return s
}

// timedProbe records how long each run of a probe takes.
type timedProbe struct {
	p    health.Probe
	hist prometheus.Observer
}

func (t timedProbe) Probe(ctx context.Context) error {
	start := time.Now()
	err := t.p.Probe(ctx)
	t.hist.Observe(time.Since(start).Seconds())
	return err
}
