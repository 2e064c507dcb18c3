package main

// The reliability part's packet-loss scenario: how often a Backup takes
// over by mistake while the switch drops a share of every VRRP packet.

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

const (
	// lossRun is how long each loss rate is applied.
	lossRun = 15 * time.Second
	// lossInstances is how many independent instances the loss scenario
	// runs, for ten times the samples at no extra time.
	lossInstances = 10
)

// lossRates are the shares of VRRP dropped, in percent.
var lossRates = []int{20, 50}

// lossScenario counts every daemon's spurious takeovers at each of
// lossRates; -1 is a run that gave up.
type lossScenario struct{ res map[string]map[int]int }

func (sc *lossScenario) measure(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon) error {
	sc.res[d.name] = map[int]int{}
	for _, pct := range lossRates {
		n, err := lossCount(ctx, l, d, pct)
		if err != nil {
			sc.res[d.name][pct] = -1
			if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s %d%% loss:", d.name, pct)); err != nil {
				return err
			}
			continue
		}
		sc.res[d.name][pct] = n
		fmt.Fprintf(w, "%-10s %d%% loss for %v, %d instances: %d spurious takeovers (RFC estimate %.0f)\n",
			d.name, pct, lossRun, lossInstances, n, lossEstimate(pct))
	}
	return nil
}

// lossCount runs lossInstances instances at 100ms on three nodes (150, 100,
// 50), drops pct% of VRRP on every port of the switch for lossRun, and
// returns how often n2 and n3 became master meanwhile.
func lossCount(ctx context.Context, l *lab.Lab, d *daemon, pct int) (int, error) {
	defer resetLab(l)
	ins := scaleInstances(lossInstances, 150, 100*time.Millisecond)
	for i := len(l.Nodes) - 1; i >= 0; i-- {
		if err := d.start(l.Nodes[i], withPriority(ins, priorities[i])...); err != nil {
			return 0, err
		}
	}
	want := map[*lab.Node]int{l.Nodes[0]: lossInstances, l.Nodes[1]: 0, l.Nodes[2]: 0}
	if err := waitVIPs(ctx, want, 30*time.Second); err != nil {
		return 0, err
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return 0, err
	}
	offsets := map[*lab.Node]int64{}
	for _, n := range l.Nodes[1:] {
		_, off, err := d.masters(n, time.Now(), 0)
		if err != nil {
			return 0, err
		}
		offsets[n] = off
	}
	begin := time.Now()
	if err := l.DropVRRP(pct); err != nil {
		return 0, err
	}
	if err := sleep(ctx, lossRun); err != nil {
		return 0, err
	}
	total := 0
	for _, n := range l.Nodes[1:] {
		c, _, err := d.masters(n, begin, offsets[n])
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

// lossEstimate is RFC 9568's expectation of spurious takeovers in the loss
// scenario: a Backup takes over after three lost adverts in a row
// (Master_Down_Interval = 3 × interval + Skew_Time), and a run of three or
// more losses begins after a received advert with probability (1−p)·p³.
func lossEstimate(pct int) float64 {
	p := float64(pct) / 100
	return lossEstimateP3(pct) * (1 - p)
}

// lossEstimateP3 is the rough (runtime/interval) × p³ figure.
func lossEstimateP3(pct int) float64 {
	p := float64(pct) / 100
	return float64(lossInstances) * 2 * float64(lossRun/(100*time.Millisecond)) * math.Pow(p, 3)
}

func (sc *lossScenario) rows() []row {
	var rows []row
	for _, pct := range lossRates {
		v, k := sc.res["vipd"][pct], sc.res["keepalived"][pct]
		rows = append(rows, row{
			scenario: fmt.Sprintf("%d%% advert loss: spurious takeovers", pct),
			vipd:     countCell(v), other: countCell(k),
			ratio: ratio(float64(v), float64(k), v > 0 && k > 0),
			note: fmt.Sprintf("RFC ≈ %.0f = %d inst. × 2 backups × %v/100ms × (1−p)·p³ (p³ alone: %.0f)",
				lossEstimate(pct), lossInstances, lossRun, lossEstimateP3(pct)),
		})
	}
	return rows
}
