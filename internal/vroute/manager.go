package vroute

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// The manager's timing.
const (
	// settle coalesces a burst of notifications (a link going down takes
	// its addresses and routes with it) into one pass.
	settle = 20 * time.Millisecond
	// reconcileEvery is the safety net: a full comparison of the kernel
	// with the wants even when no notification said anything changed.
	reconcileEvery = 30 * time.Second
	// rulePollEvery: the netlink library has no rule notifications, so the
	// rules are listed again this often.
	rulePollEvery = 5 * time.Second
	// retryMin and retryMax bound the backoff of a failing add or delete;
	// every link or address change retries at once.
	retryMin = time.Second
	retryMax = 30 * time.Second
	// shutdownTimeout bounds the removal of everything on shutdown.
	shutdownTimeout = 5 * time.Second
)

// Manager keeps the kernel's vipd-owned routes and rules equal to the union
// of what its owners want.
//
// Routes are reference-counted by the kernel's key: table, destination,
// TOS (always 0 for vipd's) and metric. A route stays while any owner wants
// it. When owners want routes with one key and different attributes (type,
// gateway, interface, source), the kernel can hold only one: the owner that
// wanted the key first wins, and the conflict is logged once; the others'
// take over if the winner lets go. Rules have no attributes beside their key
// (selectors, table, priority) and are counted the same way.
type Manager struct {
	nl   Netlink
	log  *slog.Logger
	kick chan struct{}

	mu     sync.Mutex
	seq    uint64
	owners map[string]*wants
	stats  Stats
}

// Stats counts what the manager did and what is installed now, for metrics.
type Stats struct {
	// Repairs counts routes and rules put back after they vanished from the
	// kernel (a link went down, a source address or next hop went away,
	// someone deleted them) or were changed under vipd.
	Repairs uint64
	// Failures counts kernel operations refused: adds, replaces, deletes and
	// listings, every attempt of a retried one.
	Failures uint64
	// Routes and Rules are installed now.
	Routes, Rules int
	// Pending routes and rules are wanted but not in the kernel yet: their
	// adds failed and are being retried.
	Pending int
	// Conflicts counts wanted routes that lost to another owner's with the
	// same key and other attributes.
	Conflicts int
}

// wants is one owner's set.
type wants struct {
	routes map[routeKey]wantedRoute
	lost   []wantedRoute // more routes of its own with a key taken above
	rules  map[Rule]bool
}

type wantedRoute struct {
	Route
	seq uint64 // when its owner started wanting its key: the lowest wins
}

// New returns a manager of nl's routes and rules. Nothing happens in the
// kernel until Run.
func New(nl Netlink, log *slog.Logger) *Manager {
	return &Manager{nl: nl, log: log, kick: make(chan struct{}, 1), owners: map[string]*wants{}}
}

// Want sets what owner (an instance name) wants present; an empty set means
// nothing, as Release. It is safe for concurrent use and returns at once:
// Run applies the latest wants of every owner, in the order they were made.
func (m *Manager) Want(owner string, routes []config.Route, rules []config.Rule) {
	m.mu.Lock()
	old := m.owners[owner]
	if len(routes) == 0 && len(rules) == 0 {
		delete(m.owners, owner)
	} else {
		w := &wants{routes: map[routeKey]wantedRoute{}, rules: map[Rule]bool{}}
		for _, c := range routes {
			r := RouteOf(c)
			k := r.key()
			if _, dup := w.routes[k]; dup {
				m.seq++
				w.lost = append(w.lost, wantedRoute{r, m.seq})
				continue
			}
			seq := uint64(0)
			if o, ok := old.route(k); ok {
				seq = o.seq // wanting it still: keeps its place
			} else {
				m.seq++
				seq = m.seq
			}
			w.routes[k] = wantedRoute{r, seq}
		}
		for _, c := range rules {
			w.rules[RuleOf(c)] = true
		}
		m.owners[owner] = w
	}
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (w *wants) route(k routeKey) (wantedRoute, bool) {
	if w == nil {
		return wantedRoute{}, false
	}
	r, ok := w.routes[k]
	return r, ok
}

// Release says owner wants nothing any more.
func (m *Manager) Release(owner string) { m.Want(owner, nil, nil) }

// Stats returns the counters and what is installed now.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// conflict is a route that lost to another with its key.
type conflict struct {
	owner  string
	lost   Route
	winner string
	kept   Route
}

// union is what all owners want together.
type union struct {
	routes    map[routeKey]Route
	rules     map[Rule]bool
	conflicts []conflict
}

func (m *Manager) union() union {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := union{routes: map[routeKey]Route{}, rules: map[Rule]bool{}}
	type win struct {
		wantedRoute
		owner string
	}
	best := map[routeKey]win{}
	for owner, w := range m.owners {
		for k, r := range w.routes {
			if b, ok := best[k]; !ok || r.seq < b.seq {
				best[k] = win{r, owner}
			}
		}
		for r := range w.rules {
			u.rules[r] = true
		}
	}
	for k, b := range best {
		u.routes[k] = b.Route
	}
	for _, owner := range slices.Sorted(maps.Keys(m.owners)) {
		w := m.owners[owner]
		for _, r := range append(slices.Collect(maps.Values(w.routes)), w.lost...) {
			b := best[r.key()]
			if r.Route != b.Route {
				u.conflicts = append(u.conflicts, conflict{owner, r.Route, b.owner, b.Route})
			}
		}
	}
	return u
}

// Run makes the kernel hold what the owners want until ctx is done, then
// removes everything and returns.
//
// At start it removes every route and rule with Protocol that nobody wants
// (those a crashed run left; with no wants yet, all of them). While
// anything is wanted, installed or retried it follows route, link and
// address notifications: a wanted route that vanished (the kernel drops
// IPv4 routes silently when their next hop or source address goes away)
// is added again, and adds that failed are
// retried at once. Failed adds are also retried with backoff, and the whole
// state is compared every 30 s, the rules every 5 s. Shutdown is bounded by
// 5 s; its error says what could not be removed, or that the kernel did not
// answer. Run is called once.
func (m *Manager) Run(ctx context.Context) error {
	r := &runner{
		m: m, nl: m.nl, log: m.log,
		installed: map[routeKey]Route{}, rules: map[Rule]Rule{},
		addR: map[routeKey]*attempt{}, delR: map[routeKey]*attempt{},
		addU: map[Rule]*attempt{}, delU: map[Rule]*attempt{},
		conflicts: map[conflict]bool{},
	}
	var (
		events <-chan Event
		watch  attempt // resubscribing
		// unwatch ends the subscription: an idle manager (no instance
		// has routes or rules, most hosts) follows no notifications, and
		// holds no sockets or reader goroutines for them (each of the
		// three readers keeps a 64 KiB buffer on its stack).
		unwatch = func() {}
	)
	defer func() { unwatch() }()
	subscribe := func(now time.Time) bool {
		wctx, cancel := context.WithCancel(ctx)
		ev, err := m.nl.Watch(wctx)
		if err != nil {
			cancel()
			m.count(0, 1)
			if watch.fail(now) {
				m.log.Warn("vroute: cannot follow route, link and address changes; retrying", "err", err)
			}
			return false
		}
		if watch.n > 0 {
			m.log.Info("vroute: following route, link and address changes again", "attempts", watch.n)
		}
		watch, events, unwatch = attempt{}, ev, cancel
		return true
	}
	now := time.Now()
	if !r.idle() {
		subscribe(now)
	}
	r.stale = true
	r.sync(now, true)
	lastFull, lastRules := now, now
	var settleAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// With nothing wanted, installed or retried (most hosts: no
		// instance has routes), only a Want wakes the manager: no rule
		// listing every few seconds, no pass per address change.
		idle := r.idle()
		if idle && events != nil {
			unwatch()
			unwatch, events, watch = func() {}, nil, attempt{}
		}
		wake := minTime(lastFull.Add(reconcileEvery), lastRules.Add(rulePollEvery))
		if idle {
			wake = now.Add(time.Hour)
		}
		if t, ok := r.nextRetry(); ok {
			wake = minTime(wake, t)
		}
		if !settleAt.IsZero() {
			wake = minTime(wake, settleAt)
		}
		if events == nil && !idle {
			wake = minTime(wake, watch.next)
		}
		timer.Reset(time.Until(wake))
		full := false
		select {
		case <-ctx.Done():
			return r.shutdown()
		case <-m.kick:
			full = true
		case ev, ok := <-events:
			now := time.Now()
			if !ok {
				events = nil
				if ctx.Err() != nil {
					continue
				}
				m.log.Warn("vroute: route, link and address notifications stopped; subscribing again")
				watch.next = now
				break
			}
			if !idle && r.relevant(ev) && settleAt.IsZero() {
				settleAt = now.Add(settle)
				r.dueBy(settleAt)
			}
		case <-timer.C:
		}
		now = time.Now()
		if events == nil && !now.Before(watch.next) && !r.idle() && subscribe(now) {
			full = true // what changed while deaf is unknown
		}
		if t, ok := r.nextRetry(); ok && !now.Before(t) {
			full = true
		}
		if !settleAt.IsZero() && !now.Before(settleAt) {
			full = true
		}
		switch {
		case idle && !full:
		case full || !now.Before(lastFull.Add(reconcileEvery)):
			r.sync(now, true)
			lastFull, lastRules, settleAt = now, now, time.Time{}
		case !now.Before(lastRules.Add(rulePollEvery)):
			r.sync(now, false)
			lastRules = now
		}
	}
}

// idle says nothing is wanted, installed or being retried.
func (r *runner) idle() bool {
	if len(r.installed) > 0 || len(r.rules) > 0 {
		return false
	}
	if _, retrying := r.nextRetry(); retrying {
		return false
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return len(r.m.owners) == 0
}

// count adds to the repair and failure counters.
func (m *Manager) count(repairs, failures uint64) {
	m.mu.Lock()
	m.stats.Repairs += repairs
	m.stats.Failures += failures
	m.mu.Unlock()
}

// attempt is the state of an operation that failed and is being retried.
type attempt struct {
	n      int       // failures in a row
	since  time.Time // of the first
	next   time.Time // when to try again
	repair bool      // a re-add of what vanished from the kernel
	want   Route     // for a route: what was tried
}

// fail records a failure at now and reports whether it is the first of its
// run, the one to log.
func (a *attempt) fail(now time.Time) bool {
	if a.n == 0 {
		a.since = now
	}
	a.n++
	a.next = now.Add(min(retryMin<<min(a.n-1, 10), retryMax))
	return a.n == 1
}

// runner is Run's state: what it put in the kernel and what it is retrying.
// Only Run's goroutine touches it.
type runner struct {
	m   *Manager
	nl  Netlink
	log *slog.Logger

	installed map[routeKey]Route // in the kernel as wanted, as far as the last pass saw
	rules     map[Rule]Rule      // wanted rule → the kernel's (with the priority it picked)
	addR      map[routeKey]*attempt
	delR      map[routeKey]*attempt
	addU      map[Rule]*attempt
	delU      map[Rule]*attempt
	list      attempt
	conflicts map[conflict]bool // logged (winner left out), until resolved
	stale     bool              // until the first full pass: what it removes a crashed run left
}

// relevant reports whether ev may mean a wanted route vanished or a failed
// add can now succeed. IPv4 drops routes silently when a link goes down or
// an address goes away, so every link and address change counts; a route
// deletion counts if the route is one vipd installed. Others' route changes
// do not: on a router with a full table they never stop.
func (r *runner) relevant(ev Event) bool {
	switch ev.Kind {
	case LinkChanged, AddrChanged:
		return true
	case RouteChanged:
		if !ev.Ours || !ev.Deleted {
			return false
		}
		_, ok := r.installed[ev.Route.key()]
		return ok
	}
	return false
}

// dueBy brings every retry forward to t at the latest.
func (r *runner) dueBy(t time.Time) {
	for _, m := range []map[routeKey]*attempt{r.addR, r.delR} {
		for _, a := range m {
			a.next = minTime(a.next, t)
		}
	}
	for _, m := range []map[Rule]*attempt{r.addU, r.delU} {
		for _, a := range m {
			a.next = minTime(a.next, t)
		}
	}
	if r.list.n > 0 {
		r.list.next = minTime(r.list.next, t)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// nextRetry is when the earliest retry is due.
func (r *runner) nextRetry() (time.Time, bool) {
	var t time.Time
	ok := false
	note := func(a *attempt) {
		if !ok || a.next.Before(t) {
			t, ok = a.next, true
		}
	}
	for _, m := range []map[routeKey]*attempt{r.addR, r.delR} {
		for _, a := range m {
			note(a)
		}
	}
	for _, m := range []map[Rule]*attempt{r.addU, r.delU} {
		for _, a := range m {
			note(a)
		}
	}
	if r.list.n > 0 {
		note(&r.list)
	}
	return t, ok
}

// sync makes the kernel's vipd routes (if routesToo) and rules what the
// owners want: it removes rules nobody wants, then such routes, then adds
// or fixes the wanted routes, then the wanted rules.
func (r *runner) sync(now time.Time, routesToo bool) {
	defer r.publish()
	u := r.m.union()
	r.noteConflicts(u.conflicts)
	if r.list.n > 0 && now.Before(r.list.next) {
		return
	}
	var kroutes map[routeKey]Route
	if routesToo {
		rs, err := r.nl.Routes()
		if err != nil {
			r.listFailed(now, err)
			return
		}
		kroutes = make(map[routeKey]Route, len(rs))
		for _, k := range rs {
			if _, dup := kroutes[k.key()]; !dup {
				kroutes[k.key()] = k
			}
		}
	}
	krules, err := r.nl.Rules()
	if err != nil {
		r.listFailed(now, err)
		return
	}
	if r.list.n > 0 {
		r.log.Info("vroute: listing the kernel's routes and rules works again", "attempts", r.list.n)
		r.list = attempt{}
	}
	matched, extra := r.matchRules(u.rules, krules)

	for _, k := range extra {
		r.deleteRule(now, k)
	}
	for k := range r.delU {
		if !slices.Contains(extra, k) {
			delete(r.delU, k) // gone by itself
		}
	}
	if routesToo {
		for _, k := range sortedRoutes(kroutes) {
			if _, ok := u.routes[k.key()]; !ok {
				r.deleteRoute(now, k)
			}
		}
		for k := range r.delR {
			if _, ok := kroutes[k]; !ok {
				delete(r.delR, k) // gone by itself
			}
		}
		for k := range r.installed {
			if _, ok := u.routes[k]; !ok {
				delete(r.installed, k)
			}
		}
		for k := range r.addR {
			if _, ok := u.routes[k]; !ok {
				delete(r.addR, k)
			}
		}
		for _, want := range sortedRoutes(u.routes) {
			got, ok := kroutes[want.key()]
			r.ensureRoute(now, want, got, ok)
		}
		r.stale = false // what is left is not a crashed run's
	}
	for k := range r.rules {
		if !u.rules[k] {
			delete(r.rules, k)
		}
	}
	for k := range r.addU {
		if !u.rules[k] {
			delete(r.addU, k)
		}
	}
	for _, want := range slices.SortedFunc(maps.Keys(u.rules), compareRules) {
		got, ok := matched[want]
		r.ensureRule(now, want, got, ok)
	}
}

func (r *runner) listFailed(now time.Time, err error) {
	r.m.count(0, 1)
	if r.list.fail(now) {
		r.log.Warn("vroute: cannot list the kernel's routes and rules; retrying", "err", err)
	}
}

// noteConflicts logs each conflict once, until it is resolved; another
// owner of the same winning route taking over is the same conflict.
func (r *runner) noteConflicts(cs []conflict) {
	now := map[conflict]bool{}
	for _, c := range cs {
		k := c
		k.winner = ""
		now[k] = true
		if !r.conflicts[k] {
			r.log.Warn("vroute: two routes with one table, destination and metric; the one wanted first is kept",
				"instance", c.owner, "route", c.lost.String(), "kept", c.kept.String(), "kept_for", c.winner)
		}
	}
	r.conflicts = now
}

// ensureRoute puts want in the kernel, where got is (if present) vipd's
// route with its key.
func (r *runner) ensureRoute(now time.Time, want, got Route, present bool) {
	k := want.key()
	delete(r.delR, k)
	a := r.addR[k]
	if present && want.satisfiedBy(got) {
		if a != nil {
			r.log.Info("vroute: route in place", "route", want.String(), "attempts", a.n)
			delete(r.addR, k)
		}
		r.installed[k] = want
		return
	}
	if inst, ok := r.installed[k]; ok {
		// It was in place; the kernel or someone removed or changed it.
		delete(r.installed, k)
		if inst == want {
			a = &attempt{repair: true, want: want, next: now}
			r.addR[k] = a
			if present {
				r.log.Warn("vroute: route changed under vipd; restoring it", "route", want.String(), "now", got.String())
			} else {
				r.log.Warn("vroute: route vanished from the kernel; adding it again", "route", want.String())
			}
		}
	}
	if a != nil && a.want != want {
		a.next, a.want = now, want // the want changed: try it at once
	}
	if a != nil && now.Before(a.next) {
		return
	}
	op, do := "add", r.nl.AddRoute
	if present {
		// vipd's own route with the key, but not as wanted: a
		// conflict's winner changed, a crashed run's route differs, or
		// IPv6 removed its source address.
		op, do = "replace", r.nl.ReplaceRoute
	}
	if err := do(want); err != nil {
		r.m.count(0, 1)
		if a == nil {
			a = &attempt{want: want}
			r.addR[k] = a
		}
		if a.fail(now) {
			r.log.Warn("vroute: cannot "+op+" route; retrying", "route", want.String(), "reason", reason(err, want), "err", err)
		} else {
			r.log.Debug("vroute: "+op+" route failed again", "route", want.String(), "attempts", a.n, "err", err)
		}
		return
	}
	r.installed[k] = want
	delete(r.addR, k)
	switch {
	case a != nil && a.repair:
		r.m.count(1, 0)
		r.log.Info("vroute: route restored", "route", want.String(), "attempts", a.n+1)
	case a != nil && a.n > 0:
		r.log.Info("vroute: route added after failing", "route", want.String(), "attempts", a.n+1, "after", now.Sub(a.since))
	case present:
		r.log.Info("vroute: route replaced", "route", want.String(), "was", got.String())
	default:
		r.log.Info("vroute: route added", "route", want.String())
	}
}

// deleteRoute removes vipd's route got, which nobody wants.
func (r *runner) deleteRoute(now time.Time, got Route) {
	k := got.key()
	delete(r.installed, k)
	a := r.delR[k]
	if a != nil && now.Before(a.next) {
		return
	}
	if err := r.nl.DeleteRoute(got); err != nil && !gone(err) {
		r.m.count(0, 1)
		if a == nil {
			a = &attempt{}
			r.delR[k] = a
		}
		if a.fail(now) {
			r.log.Warn("vroute: cannot remove route; retrying", "route", got.String(), "err", err)
		}
		return
	}
	delete(r.delR, k)
	if r.stale {
		r.log.Info("vroute: removed a route an earlier run left", "route", got.String())
	} else {
		r.log.Info("vroute: route removed", "route", got.String())
	}
}

// matchRules pairs each wanted rule with one of the kernel's vipd rules:
// the equal one, or for a rule wanted with priority 0, one with its
// selectors and table and the priority the kernel picked. extra are the
// kernel's rules nobody wants.
func (r *runner) matchRules(want map[Rule]bool, got []Rule) (map[Rule]Rule, []Rule) {
	matched := map[Rule]Rule{}
	used := make([]bool, len(got))
	take := func(w Rule, ok func(Rule) bool) {
		for i, g := range got {
			if !used[i] && ok(g) {
				used[i], matched[w] = true, g
				return
			}
		}
	}
	ws := slices.SortedFunc(maps.Keys(want), compareRules)
	for _, w := range ws {
		if w.Priority != 0 {
			take(w, func(g Rule) bool { return g == w })
		}
	}
	for _, w := range ws {
		if w.Priority != 0 {
			continue
		}
		if prev, ok := r.rules[w]; ok { // the one it had
			take(w, func(g Rule) bool { return g == prev })
		}
		if _, ok := matched[w]; !ok {
			take(w, func(g Rule) bool { return g.selectors() == w })
		}
	}
	var extra []Rule
	for i, g := range got {
		if !used[i] {
			extra = append(extra, g)
		}
	}
	return matched, extra
}

// ensureRule puts want in the kernel, where got is (if present) the
// kernel's rule matching it.
func (r *runner) ensureRule(now time.Time, want, got Rule, present bool) {
	delete(r.delU, want)
	a := r.addU[want]
	if present {
		if a != nil {
			r.log.Info("vroute: rule in place", "rule", want.String(), "attempts", a.n)
			delete(r.addU, want)
		}
		r.rules[want] = got
		return
	}
	if _, ok := r.rules[want]; ok {
		delete(r.rules, want)
		a = &attempt{repair: true, next: now}
		r.addU[want] = a
		r.log.Warn("vroute: rule vanished from the kernel; adding it again", "rule", want.String())
	}
	if a != nil && now.Before(a.next) {
		return
	}
	if err := r.nl.AddRule(want); err != nil {
		r.m.count(0, 1)
		if a == nil {
			a = &attempt{}
			r.addU[want] = a
		}
		if a.fail(now) {
			r.log.Warn("vroute: cannot add rule; retrying", "rule", want.String(), "reason", reasonRule(err), "err", err)
		}
		return
	}
	// The kernel's priority for a rule added with 0 is learnt at the next
	// listing; until then the wanted rule stands for it.
	r.rules[want] = want
	delete(r.addU, want)
	switch {
	case a != nil && a.repair:
		r.m.count(1, 0)
		r.log.Info("vroute: rule restored", "rule", want.String(), "attempts", a.n+1)
	case a != nil && a.n > 0:
		r.log.Info("vroute: rule added after failing", "rule", want.String(), "attempts", a.n+1, "after", now.Sub(a.since))
	default:
		r.log.Info("vroute: rule added", "rule", want.String())
	}
}

// deleteRule removes the kernel's vipd rule got, which nobody wants.
func (r *runner) deleteRule(now time.Time, got Rule) {
	a := r.delU[got]
	if a != nil && now.Before(a.next) {
		return
	}
	if err := r.nl.DeleteRule(got); err != nil && !gone(err) {
		r.m.count(0, 1)
		if a == nil {
			a = &attempt{}
			r.delU[got] = a
		}
		if a.fail(now) {
			r.log.Warn("vroute: cannot remove rule; retrying", "rule", got.String(), "err", err)
		}
		return
	}
	delete(r.delU, got)
	if r.stale {
		r.log.Info("vroute: removed a rule an earlier run left", "rule", got.String())
	} else {
		r.log.Info("vroute: rule removed", "rule", got.String())
	}
}

// publish updates the gauges of Stats.
func (r *runner) publish() {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.stats.Routes = len(r.installed)
	r.m.stats.Rules = len(r.rules)
	r.m.stats.Pending = len(r.addR) + len(r.addU)
	r.m.stats.Conflicts = len(r.conflicts)
}

// shutdown removes everything, within shutdownTimeout.
func (r *runner) shutdown() error {
	routes := slices.Collect(maps.Values(r.installed))
	rules := slices.Collect(maps.Values(r.rules))
	done := make(chan error, 1)
	go func() {
		nroutes, nrules, err := remove(r.nl, routes, rules)
		r.m.mu.Lock()
		r.m.stats.Routes, r.m.stats.Rules, r.m.stats.Pending = 0, 0, 0
		r.m.mu.Unlock()
		if nroutes+nrules > 0 {
			r.log.Info("vroute: removed vipd's routes and rules", "routes", nroutes, "rules", nrules)
		}
		done <- err
	}()
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("vroute: removing routes and rules: no answer from the kernel within %v; `vipd cleanup` removes what is left", shutdownTimeout)
	}
}

// Cleanup removes every route and rule with Protocol (for `vipd cleanup`):
// the rules first, then the routes.
func Cleanup(nl Netlink) error {
	_, _, err := remove(nl, nil, nil)
	return err
}

// remove deletes every vipd rule, then every vipd route, and returns how
// many it removed. If the kernel cannot list them, it deletes the given
// ones instead.
func remove(nl Netlink, routes []Route, rules []Rule) (nroutes, nrules int, _ error) {
	var errs []error
	if rs, err := nl.Rules(); err != nil {
		errs = append(errs, fmt.Errorf("vroute: listing rules: %w", err))
	} else {
		rules = rs
	}
	for _, k := range rules {
		switch err := nl.DeleteRule(k); {
		case err == nil:
			nrules++
		case !gone(err):
			errs = append(errs, fmt.Errorf("vroute: removing rule %s: %w", k, err))
		}
	}
	if rs, err := nl.Routes(); err != nil {
		errs = append(errs, fmt.Errorf("vroute: listing routes: %w", err))
	} else {
		routes = rs
	}
	for _, k := range routes {
		switch err := nl.DeleteRoute(k); {
		case err == nil:
			nroutes++
		case !gone(err):
			errs = append(errs, fmt.Errorf("vroute: removing route %s: %w", k, err))
		}
	}
	return nroutes, nrules, errors.Join(errs...)
}

// gone reports whether a delete failed because there was nothing to delete.
func gone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT)
}

// reason says why adding r failed, in words for the log.
func reason(err error, r Route) string {
	switch {
	case errors.Is(err, syscall.EEXIST):
		return "the kernel has a route with this table, destination and metric that is not vipd's"
	case r.Src.IsValid() && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EADDRNOTAVAIL)):
		return "its source address is not on this host (yet)"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "its next hop is unreachable"
	case errors.Is(err, syscall.ENETDOWN):
		return "its interface is down"
	case errors.Is(err, syscall.ENODEV):
		return "its interface does not exist"
	}
	return "refused by the kernel"
}

func reasonRule(err error) string {
	if errors.Is(err, syscall.EEXIST) {
		return "the kernel has an equal rule that is not vipd's"
	}
	return "refused by the kernel"
}

// sortedRoutes returns the routes of m in a stable order: IPv4 first, then
// by table, destination and metric.
func sortedRoutes(m map[routeKey]Route) []Route {
	return slices.SortedFunc(maps.Values(m), func(a, b Route) int {
		return cmp.Or(
			cmp.Compare(a.To.Addr().BitLen(), b.To.Addr().BitLen()),
			cmp.Compare(a.Table, b.Table),
			a.To.Addr().Compare(b.To.Addr()),
			cmp.Compare(a.To.Bits(), b.To.Bits()),
			cmp.Compare(a.Tos, b.Tos),
			cmp.Compare(a.Metric, b.Metric),
		)
	})
}

func compareRules(a, b Rule) int {
	return cmp.Or(
		a.From.Addr().Compare(b.From.Addr()),
		cmp.Compare(a.From.Bits(), b.From.Bits()),
		a.To.Addr().Compare(b.To.Addr()),
		cmp.Compare(a.To.Bits(), b.To.Bits()),
		cmp.Compare(a.Table, b.Table),
		cmp.Compare(a.Priority, b.Priority),
	)
}
