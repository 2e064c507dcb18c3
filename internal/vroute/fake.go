package vroute

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
)

// Fake is an in-memory kernel for tests, a Netlink that behaves as Linux's
// IPv4 routing does in what matters here: one route per key, a route's
// source must be a local address and its gateway on a connected subnet of
// an up link, and routes go silently when their link goes down or their
// source address or connected subnet goes away. Everything it does is
// recorded in Ops. Its zero value is not usable; call NewFake.
type Fake struct {
	mu       sync.Mutex
	links    map[string]bool // name → up
	addrs    map[netip.Prefix]string
	routes   map[routeKey]fakeRoute
	rules    []fakeRule
	ops      []string
	fault    func(op string, r Route, u Rule) error
	watchers map[chan Event]bool
}

type fakeRoute struct {
	Route
	proto int
}

type fakeRule struct {
	Rule
	proto int
}

var _ Netlink = (*Fake)(nil)

// NewFake returns a fake kernel with no links, addresses, routes or rules.
func NewFake() *Fake {
	return &Fake{
		links:    map[string]bool{},
		addrs:    map[netip.Prefix]string{},
		routes:   map[routeKey]fakeRoute{},
		watchers: map[chan Event]bool{},
	}
}

// SetLink creates the link name or sets it up or down. Down drops the
// routes through it, without a route notification (as IPv4 does).
func (f *Fake) SetLink(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = up
	if !up {
		f.dropLocked(func(r fakeRoute) bool { return r.Dev == name })
	}
	f.notifyLocked(Event{Kind: LinkChanged})
}

// AddAddr puts address p on link dev.
func (f *Fake) AddAddr(dev string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[p] = dev
	f.notifyLocked(Event{Kind: AddrChanged})
}

// DelAddr removes address p. The routes with p as their source, and those
// whose gateway was reachable only through p's subnet, go without a route
// notification (as IPv4 does).
func (f *Fake) DelAddr(p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.addrs, p)
	f.dropLocked(func(r fakeRoute) bool {
		if r.Src == p.Addr() {
			return true
		}
		_, ok := f.connectedLocked(r.Via)
		return r.Via.IsValid() && !ok
	})
	f.notifyLocked(Event{Kind: AddrChanged})
}

// Vanish removes the vipd routes to `to`, as someone running `ip route del`
// would; notify says whether a route notification follows (IPv6 routes and
// explicit deletes have one, IPv4 flushes do not).
func (f *Fake) Vanish(to netip.Prefix, notify bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.routes {
		if r.To == to && r.proto == Protocol {
			delete(f.routes, k)
			if notify {
				f.notifyLocked(Event{Kind: RouteChanged, Deleted: true, Ours: true, Route: r.Route})
			}
		}
	}
}

// VanishRule removes vipd's rule r, as `ip rule del` would.
func (f *Fake) VanishRule(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = slices.DeleteFunc(f.rules, func(g fakeRule) bool { return g.Rule == r && g.proto == Protocol })
}

// AddOther adds r with protocol proto, not vipd's; it replaces any route
// with r's key.
func (f *Fake) AddOther(r Route, proto int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[r.key()] = fakeRoute{r, proto}
}

// AddOtherRule adds r with protocol proto.
func (f *Fake) AddOtherRule(r Rule, proto int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, fakeRule{r, proto})
}

// All returns every route, vipd's or not, with its protocol.
func (f *Fake) All() map[Route]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Route]int{}
	for _, r := range f.routes {
		out[r.Route] = r.proto
	}
	return out
}

// AllRules returns every rule, vipd's or not, with its protocol.
func (f *Fake) AllRules() map[Rule]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Rule]int{}
	for _, r := range f.rules {
		out[r.Rule] = r.proto
	}
	return out
}

// SetFault makes every operation ask fn first: a non-nil error fails it.
// fn runs without the fake's lock held, and may block.
// op is "add route", "replace route", "delete route", "list routes", "add
// rule", "delete rule" or "list rules".
func (f *Fake) SetFault(fn func(op string, r Route, u Rule) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// Ops returns the operations done so far, such as "add route
// 198.51.100.0/24 via 192.0.2.1 metric 0", with ": " and the error for the
// failed ones, and forgets them.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

// BreakWatch ends every subscription, as a notification overrun does.
func (f *Fake) BreakWatch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watchers {
		close(ch)
		delete(f.watchers, ch)
	}
}

func (f *Fake) do(op string, r Route, u Rule, what string, fn func() error) error {
	var err error
	if fault := f.fault; fault != nil {
		// Unlocked: a fault may block, as a kernel that does not answer,
		// and the fake must go on meanwhile.
		f.mu.Unlock()
		err = fault(op, r, u)
		f.mu.Lock()
	}
	if err == nil {
		err = fn()
	}
	s := op
	if what != "" {
		s += " " + what
	}
	if err != nil {
		s += ": " + err.Error()
	}
	f.ops = append(f.ops, s)
	return err
}

// Routes lists vipd's routes.
func (f *Fake) Routes() ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Route
	err := f.do("list routes", Route{}, Rule{}, "", func() error {
		m := map[routeKey]Route{}
		for k, r := range f.routes {
			if r.proto == Protocol {
				m[k] = r.Route
			}
		}
		out = sortedRoutes(m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddRoute adds r as vipd's.
func (f *Fake) AddRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.do("add route", r, Rule{}, r.String(), func() error {
		if _, ok := f.routes[r.key()]; ok {
			return syscall.EEXIST
		}
		return f.putLocked(r)
	})
}

// ReplaceRoute replaces the route with r's key, or adds it.
func (f *Fake) ReplaceRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.do("replace route", r, Rule{}, r.String(), func() error { return f.putLocked(r) })
}

// putLocked checks r as the kernel would and stores it.
func (f *Fake) putLocked(r Route) error {
	if r.Dev != "" {
		up, ok := f.links[r.Dev]
		switch {
		case !ok:
			return fmt.Errorf("link %s not found: %w", r.Dev, syscall.ENODEV)
		case !up:
			return syscall.ENETDOWN
		}
	}
	if r.Src.IsValid() && !f.localLocked(r.Src) {
		return syscall.EINVAL
	}
	if r.Via.IsValid() {
		dev, ok := f.connectedLocked(r.Via)
		if !ok || (r.Dev != "" && dev != r.Dev) {
			return syscall.ENETUNREACH
		}
		r.Dev = dev
	}
	f.routes[r.key()] = fakeRoute{r, Protocol}
	f.notifyLocked(Event{Kind: RouteChanged, Ours: true, Route: r})
	return nil
}

// DeleteRoute deletes vipd's route with r's key.
func (f *Fake) DeleteRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.do("delete route", r, Rule{}, r.String(), func() error {
		got, ok := f.routes[r.key()]
		if !ok || got.proto != Protocol {
			return syscall.ESRCH
		}
		delete(f.routes, r.key())
		f.notifyLocked(Event{Kind: RouteChanged, Deleted: true, Ours: true, Route: got.Route})
		return nil
	})
}

// Rules lists vipd's rules.
func (f *Fake) Rules() ([]Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Rule
	err := f.do("list rules", Route{}, Rule{}, "", func() error {
		for _, r := range f.rules {
			if r.proto == Protocol {
				out = append(out, r.Rule)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddRule adds r as vipd's; a priority of 0 is picked as the kernel does,
// one less than the lowest non-zero one (32766 for the kernel's main rule).
func (f *Fake) AddRule(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.do("add rule", Route{}, r, r.String(), func() error {
		if r.Priority == 0 {
			p := 32766
			for _, g := range f.rules {
				if g.Priority > 0 && g.Priority < p {
					p = g.Priority
				}
			}
			r.Priority = p - 1
		}
		for _, g := range f.rules {
			if g.Rule == r {
				return syscall.EEXIST
			}
		}
		f.rules = append(f.rules, fakeRule{r, Protocol})
		return nil
	})
}

// DeleteRule deletes vipd's rule equal to r.
func (f *Fake) DeleteRule(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.do("delete rule", Route{}, r, r.String(), func() error {
		i := slices.IndexFunc(f.rules, func(g fakeRule) bool { return g.Rule == r && g.proto == Protocol })
		if i < 0 {
			return syscall.ENOENT
		}
		f.rules = slices.Delete(f.rules, i, i+1)
		return nil
	})
}

// Watching is the number of subscriptions open.
func (f *Fake) Watching() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// Watch delivers the fake's changes until ctx is done or BreakWatch; a
// subscriber that falls 64 events behind loses its subscription, as a
// netlink socket overrun does.
func (f *Fake) Watch(ctx context.Context) (<-chan Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.do("watch", Route{}, Rule{}, "", func() error { return nil }); err != nil {
		return nil, err
	}
	ch := make(chan Event, 64)
	f.watchers[ch] = true
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.watchers[ch] {
			close(ch)
			delete(f.watchers, ch)
		}
	}()
	return ch, nil
}

func (f *Fake) notifyLocked(ev Event) {
	for ch := range f.watchers {
		select {
		case ch <- ev:
		default:
			close(ch)
			delete(f.watchers, ch)
		}
	}
}

// dropLocked removes vipd's and others' routes for which drop is true,
// silently.
func (f *Fake) dropLocked(drop func(fakeRoute) bool) {
	for k, r := range f.routes {
		if drop(r) {
			delete(f.routes, k)
		}
	}
}

// localLocked reports whether a is an address of the host (on any link, up
// or not: IPv4 addresses belong to the host).
func (f *Fake) localLocked(a netip.Addr) bool {
	for p := range f.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// connectedLocked returns the up link whose subnet holds a.
func (f *Fake) connectedLocked(a netip.Addr) (string, bool) {
	for p, dev := range f.addrs {
		if f.links[dev] && p.Masked().Contains(a) {
			return dev, true
		}
	}
	return "", false
}
