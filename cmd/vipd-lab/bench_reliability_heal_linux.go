package main

// The reliability part's partition heals: three Masters of one VIP after a
// split, and how long the client is cut off once VRRP flows again.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

const (
	// healRunCount is how many partitions are healed per daemon and mode.
	healRunCount = 2
)

// The ways a partition heals. At once: VRRP flows again in every direction,
// and which advert crosses first depends on the Masters' phases. Winner's
// advert first: n1's is the first advert after the heal (about one heal in
// three with three Masters), so n2 and n3 step down before n1 has heard
// any of them.
const (
	healAtOnce      = "at once"
	healWinnerFirst = "winner's advert first"
)

var healModes = []string{healAtOnce, healWinnerFirst}

type healRun struct {
	outage, neigh, sole time.Duration
}

// healScenario heals every daemon's partitions each of healModes.
type healScenario struct {
	res map[string]map[string][]healRun
}

func (sc *healScenario) measure(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon) error {
	sc.res[d.name] = map[string][]healRun{}
	for _, mode := range healModes {
		runs, err := healRuns(ctx, w, l, d, mode)
		if err != nil {
			if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s partition heal (%s):", d.name, mode)); err != nil {
				return err
			}
		}
		sc.res[d.name][mode] = runs
	}
	return nil
}

// healWinnerFirstRules makes n1's advert the first to cross the heal
// (lab.HealFirst).
func healWinnerFirstRules(l *lab.Lab, n1 *lab.Node) error {
	return l.HealFirst("ip saddr " + n1.Addr.Addr().String())
}

// healRuns splits VRRP between three nodes healRunCount times and heals it
// the given way, measuring the client's outage across each heal, how long
// until n1 is the only holder and until the client's neighbour entry is n1's.
func healRuns(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon, mode string) ([]healRun, error) {
	defer resetLab(l)
	n1 := l.Nodes[0]
	for i := len(l.Nodes) - 1; i >= 0; i-- {
		if err := d.start(l.Nodes[i], instanceOf(ipv4, i, 100*time.Millisecond)); err != nil {
			return nil, err
		}
	}
	p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	var out []healRun
	for run := 1; run <= healRunCount; run++ {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := l.WaitHolders(sctx, lab.VIP, lab.Only(n1))
		if err == nil {
			err = p.WaitReply(sctx, time.Now())
		}
		cancel()
		if err != nil {
			return out, err
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil { // the backups hear n1
			return out, err
		}
		if err := l.BlockVRRP(); err != nil {
			return out, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = l.WaitHolders(wctx, lab.VIP, func(h []*lab.Node) bool { return len(h) == 3 })
		cancel()
		if err != nil {
			_ = l.UnblockVRRP()
			return out, err
		}
		// Announcements end, and the heal moves against the adverts'
		// phases from one run to the next.
		if err := sleep(ctx, 1500*time.Millisecond+time.Duration(run)*37*time.Millisecond); err != nil {
			return out, err
		}
		follows := "?"
		if mac, err := l.Client.NeighMAC(lab.VIP.Addr()); err == nil {
			if n := l.NodeByMAC(mac); n != nil {
				follows = n.Name
			}
		}
		p.ResetOutage()
		if mode == healWinnerFirst {
			if err := healWinnerFirstRules(l, n1); err != nil {
				return out, err
			}
		}
		heal := time.Now()
		if err := l.UnblockVRRP(); err != nil {
			return out, err
		}
		var r healRun
		wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		_, err = l.WaitHolders(wctx, lab.VIP, lab.Only(n1))
		r.sole = time.Since(heal)
		if err == nil {
			err = waitNeigh(wctx, l, n1, 5*time.Millisecond)
		}
		r.neigh = time.Since(heal)
		if err == nil {
			err = p.WaitReply(wctx, time.Now())
		}
		cancel()
		if err != nil {
			return out, fmt.Errorf("heal %d: %w", run, err)
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return out, err
		}
		_ = l.DeleteSwitchTable(lab.HealTable)
		r.outage = p.Stats().Outage
		out = append(out, r)
		fmt.Fprintf(w, "%-10s partition heal (%s) %d/%d: client followed %s; n1 alone after %s, client's ARP entry on n1 after %s, outage %s\n",
			d.name, mode, run, healRunCount, follows, ms(r.sole), ms(r.neigh), ms(r.outage))
	}
	return out, nil
}

func outages(rs []healRun) []time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = r.outage
	}
	return ds
}

func healCell(rs []healRun) string {
	if len(rs) == 0 {
		return "-"
	}
	ds := outages(rs)
	return fmt.Sprintf("%s (%s)", ms(median(ds)), ms(slices.Max(ds)))
}

func healNeighCell(rs []healRun) string {
	if len(rs) == 0 {
		return "-"
	}
	var s []string
	for _, r := range rs {
		s = append(s, ms(r.neigh))
	}
	return strings.Join(s, ", ")
}

func (sc *healScenario) rows() []row {
	var rows []row
	for _, mode := range healModes {
		hv, hk := sc.res["vipd"][mode], sc.res["keepalived"][mode]
		rows = append(rows,
			row{fmt.Sprintf("partition heal, %s: client outage", mode), healCell(hv), healCell(hk),
				ratio(float64(median(outages(hv))), float64(median(outages(hk))), len(hv) > 0 && len(hk) > 0),
				fmt.Sprintf("median (max) of %d; 3 Masters at 100ms, client on the last announcer", healRunCount)},
			row{fmt.Sprintf("partition heal, %s: client back on n1", mode), healNeighCell(hv), healNeighCell(hk), "-",
				"until the client's ARP entry for the VIP is n1's MAC (ARP alone: ~5-8s)"})
	}
	return rows
}
