package daemon

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
)

// syncGroup coordinates the members of one sync group, which may live on
// different loops (one front, one back interface). Members report what
// they are (router.Member) when it changes; the group's goroutine decides
// (router.Decide) and sends each member's loop its order as a message.
// Reports never block a loop: they land in a mailbox the goroutine
// drains, so that a loop and the group never wait for each other.
type syncGroup struct {
	d    *Daemon
	name string
	log  *slog.Logger

	mu     sync.Mutex // guards cfg, votes
	cfg    config.SyncGroup
	votes  map[string]router.Member
	wake   chan struct{} // cap 1: something changed
	stop   chan struct{}
	done   chan struct{}
	hooks  *hooks // nil without notify commands
	state  router.State
	orders []router.Order
}

func newSyncGroup(d *Daemon, g config.SyncGroup) *syncGroup {
	sg := &syncGroup{d: d, name: g.Name, cfg: g, log: d.log.With("sync_group", g.Name),
		votes: map[string]router.Member{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if hasHooks(g.Notify) {
		sg.hooks = newHooks(g.Notify.Timeout, d.runCommand, sg.log)
	}
	go sg.run()
	return sg
}

// report records what a member is now; any goroutine.
func (g *syncGroup) report(name string, m router.Member) {
	g.mu.Lock()
	g.votes[name] = m
	g.mu.Unlock()
	g.poke()
}

func (g *syncGroup) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// setConfig takes a reload's notify commands and timeout; the members
// are the same (else the group is replaced).
func (g *syncGroup) setConfig(c config.SyncGroup) {
	g.mu.Lock()
	g.cfg = c
	g.mu.Unlock()
	if g.hooks != nil {
		g.hooks.setTimeout(c.Notify.Timeout)
	}
}

func (g *syncGroup) run() {
	defer close(g.done)
	for {
		select {
		case <-g.wake:
			g.decide()
		case <-g.stop:
			return
		}
	}
}

// decide orders the members from their latest reports, and reports the
// group's own state changes.
func (g *syncGroup) decide() {
	g.mu.Lock()
	cfg := g.cfg
	ms := make([]router.Member, len(cfg.Instances))
	for i, name := range cfg.Instances {
		ms[i] = g.votes[name] // a member not started yet is Init
	}
	g.mu.Unlock()
	g.orders = router.Decide(ms, g.orders)
	for i, name := range cfg.Instances {
		g.d.orderMember(g.name, name, g.orders[i])
	}
	if st := router.GroupState(ms); st != g.state {
		from := g.state
		g.state = st
		g.d.m.SetSyncGroupState(g.name, int(st))
		g.log.Info("sync group state change", "from", from.String(), "to", st.String())
		if g.hooks != nil {
			g.hooks.group(cfg.Notify, g.name, st)
		}
	}
}

// close stops the goroutine and drains the hooks. last says vipd is
// stopping: its members have stopped (they do not report that), which the
// group reports (its stop hook) first; a group a reload replaces says
// nothing more.
func (g *syncGroup) close(last bool) {
	close(g.stop)
	<-g.done
	if last {
		g.mu.Lock()
		for _, name := range g.cfg.Instances {
			g.votes[name] = router.Member{State: router.Init}
		}
		g.mu.Unlock()
		g.decide()
	}
	if g.hooks != nil {
		g.hooks.close()
	}
}

// resync asks g's members to report again: g is new, and a member that
// did not change would not.
func (d *Daemon) resync(g *syncGroup) {
	for _, name := range g.cfg.Instances {
		for _, l := range d.allLoops() {
			l.send(func() {
				if in := l.instances[name]; in != nil && in.joined() {
					in.voted = false
					l.report(in)
				}
			})
		}
	}
}

// orderMember hands a member its group's order, on whichever loop runs
// it (there are few loops: one per interface and family).
func (d *Daemon) orderMember(group, name string, o router.Order) {
	for _, l := range d.allLoops() {
		l.send(func() {
			if in := l.instances[name]; in != nil && in.joined() && in.cfg.SyncGroup == group {
				l.groupOrder(in, o)
			}
		})
	}
}

// syncGroup returns the running group of that name, or nil.
func (d *Daemon) syncGroup(name string) *syncGroup {
	d.groupMu.Lock()
	defer d.groupMu.Unlock()
	return d.groups[name]
}

// applyGroups starts the groups of cfg, keeps those whose members did not
// change, and returns the ones to close once their members have been told
// (d.mu held). The members of new groups must report again (resync).
func (d *Daemon) applyGroupsLocked(cfg *config.Config) (stale, fresh []*syncGroup) {
	d.groupMu.Lock()
	defer d.groupMu.Unlock()
	next := map[string]*syncGroup{}
	for _, gc := range cfg.SyncGroups {
		if g := d.groups[gc.Name]; g != nil && slices.Equal(g.cfg.Instances, gc.Instances) && hasHooks(g.cfg.Notify) == hasHooks(gc.Notify) {
			g.setConfig(gc)
			next[gc.Name] = g
			continue
		}
		g := newSyncGroup(d, gc)
		next[gc.Name] = g
		fresh = append(fresh, g)
	}
	for name, g := range d.groups {
		if next[name] != g {
			stale = append(stale, g)
		}
	}
	d.groups = next
	return stale, fresh
}
