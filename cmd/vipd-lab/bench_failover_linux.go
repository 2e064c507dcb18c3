package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The two scenarios: the master's cable is pulled (the backups must notice
// its silence), or the master is stopped gracefully (it says goodbye with a
// priority-0 advert).
const (
	crash = "crash"
	stop  = "stop"
)

type cellKey struct {
	scenario string
	family   string
	interval time.Duration
	daemon   string
}

// benchFamilies are the address families every scenario runs over.
var benchFamilies = []family{ipv4, ipv6}

type cell struct {
	outages  []time.Duration
	failures []error
}

func (c *cell) add(d time.Duration, err error) {
	if err != nil {
		c.failures = append(c.failures, err)
		return
	}
	c.outages = append(c.outages, d)
}

// benchFailover measures the client's longest outage in both scenarios,
// over IPv4 and IPv6, for vipd and keepalived at each interval, runs times
// each.
func benchFailover(ctx context.Context, env *benchEnv) (*table, error) {
	if err := needKeepalived(); err != nil {
		return nil, err
	}
	l, err := lab.New(lab.Config{Nodes: 3, IPv6: true})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	w, runs, intervals := env.w, env.runs, env.intervals

	fmt.Fprintf(w, "vipd-lab bench: 3 nodes (priorities 150/100/50), a client pinging the VIP %s or %s every 2ms.\n", lab.VIP.Addr(), lab.VIP6.Addr())
	fmt.Fprintln(w, "crash: the master's cable is pulled right after one of its adverts; stop: the master gets SIGTERM.")
	fmt.Fprintf(w, "outage: the longest time the client's echo requests went unanswered; %d runs each (lab %s).\n\n", runs, l.Prefix)
	results := map[cellKey]*cell{}
	for _, iv := range intervals {
		for _, f := range benchFamilies {
			for _, d := range env.bothIn(l) {
				if err := benchCell(ctx, w, l, d, f, iv, runs, results); err != nil {
					if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s %-4s %-6v", d.name, f.name, iv)); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return failoverTable(results, intervals), nil
}

// benchCell runs both scenarios runs times for one daemon over one family at
// one interval.
func benchCell(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon, f family, interval time.Duration, runs int, results map[cellKey]*cell) error {
	get := func(s string) *cell {
		k := cellKey{s, f.name, interval, d.name}
		if results[k] == nil {
			results[k] = &cell{}
		}
		return results[k]
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := d.startAll(f, interval); err != nil {
		return err
	}
	defer func() { _ = resetLab(l) }()
	p, err := l.Probe(ctx, f.vip.Addr(), 2*time.Millisecond)
	if err != nil {
		return err
	}
	defer p.Stop()

	// reset brings the lab back to all daemons running and n1 plugged in
	// after a step failed, so one bad run does not spoil the others.
	reset := func(cause error) error {
		fmt.Fprintf(w, "%-10s %-4s %-6v   restarting the daemons after: %v\n", d.name, f.name, interval, cause)
		_ = resetLab(l)
		if err := n1.RestoreLink(); err != nil {
			return err
		}
		return d.startAll(f, interval)
	}
	for r := 1; r <= runs; r++ {
		if _, err := settle(ctx, l, p, n1, interval, f.vip); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			get(crash).add(0, err)
			get(stop).add(0, err)
			if err := reset(err); err != nil {
				return err
			}
			continue
		}
		crashOut, crashErr := measure(ctx, l, p, n2, interval, f.vip, cutAfterAdvert(l, n1, f))
		get(crash).add(crashOut, crashErr)
		if err := n1.RestoreLink(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}

		var stopOut time.Duration
		_, stopErr := settle(ctx, l, p, n1, interval, f.vip)
		if stopErr == nil {
			var exit time.Duration
			var exitErr error
			stopOut, stopErr = measure(ctx, l, p, n2, interval, f.vip, stopDaemon(n1, &exit, &exitErr))
			if stopErr == nil && exitErr != nil {
				stopErr = exitErr
			}
			if !n1.Running() {
				if err := d.start(n1, instanceOf(f, 0, interval)); err != nil {
					return err
				}
			}
		}
		get(stop).add(stopOut, stopErr)
		fmt.Fprintf(w, "%-10s %-4s %-6v run %d/%d: crash %s, stop %s\n", d.name, f.name, interval, r, runs, result(crashOut, crashErr), result(stopOut, stopErr))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if crashErr != nil || stopErr != nil {
			if err := reset(errors.Join(crashErr, stopErr)); err != nil {
				return err
			}
		}
	}
	return nil
}

func result(d time.Duration, err error) string {
	if err != nil {
		return "failed (" + err.Error() + ")"
	}
	return ms(d)
}

func failoverTable(results map[cellKey]*cell, intervals []time.Duration) *table {
	t := &table{header: []string{"scenario", "family", "interval", "vipd median (max)", "keepalived median (max)", "vipd/keepalived", "RFC 9568"}}
	for _, sc := range []string{crash, stop} {
		for _, f := range benchFamilies {
			for _, iv := range intervals {
				v, k := results[cellKey{sc, f.name, iv, "vipd"}], results[cellKey{sc, f.name, iv, "keepalived"}]
				vo, ko := v.all(), k.all()
				r := ratio(float64(median(vo)), float64(median(ko)), len(vo) > 0 && len(ko) > 0)
				rfc := ms(lab.MasterDownInterval(priorities[1], iv)) + " Master_Down_Interval"
				if sc == stop {
					rfc = ms(lab.SkewTime(priorities[1], iv)) + " Skew_Time"
				}
				t.add(sc, f.name, iv.String(), summary(v), summary(k), r, rfc)
			}
		}
	}
	return t
}

// all is c's outages, none if there is no c.
func (c *cell) all() []time.Duration {
	if c == nil {
		return nil
	}
	return c.outages
}

func summary(c *cell) string {
	if c == nil {
		return "-"
	}
	s := "-"
	if len(c.outages) > 0 {
		s = fmt.Sprintf("%s (%s)", ms(median(c.outages)), ms(slices.Max(c.outages)))
	}
	if n := len(c.failures); n > 0 {
		s += fmt.Sprintf(" %d failed", n)
	}
	return s
}
