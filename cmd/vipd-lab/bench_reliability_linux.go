package main

// The reliability benchmark: what vipd costs and how it behaves when the
// network misbehaves, beside Debian's keepalived in the same lab and the
// same run. Its scenarios are in bench_reliability_*_linux.go.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// A relScenario is one measurement of the reliability part, made for each
// daemon in turn in the part's lab and kept for the table. It reports a
// measurement that gives up and goes on; it returns only ctx's error.
type relScenario interface {
	measure(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon) error
}

// benchReliability measures cost, a soak, packet loss and partition heals for
// vipd and keepalived, in one table. It takes about five minutes with the
// default soak.
func benchReliability(ctx context.Context, env *benchEnv) (*table, error) {
	if err := needKeepalived(); err != nil {
		return nil, err
	}
	soak, err := newSoak()
	if err != nil {
		return nil, err
	}
	idle := &idleScenario{res: map[idleKey]idleResult{}, floor: map[time.Duration]idleResult{}}
	loss := &lossScenario{res: map[string]map[int]int{}}
	heal := &healScenario{res: map[string]map[string][]healRun{}}
	l, err := lab.New(lab.Config{Nodes: 3})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	defer resetLab(l)

	w := env.w
	fmt.Fprintf(w, "vipd-lab bench (reliability), lab %s: vipd beside Debian's keepalived, one at a time, same lab.\n", l.Prefix)
	fmt.Fprintln(w, cpuMemLegend)
	fmt.Fprintln(w)
	for _, d := range env.bothIn(l) {
		for _, sc := range []relScenario{soak, idle, loss, heal} {
			if err := sc.measure(ctx, w, l, d); err != nil {
				return nil, err
			}
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := idle.measureFloor(ctx, w, l, self); err != nil {
		return nil, err
	}
	return rowTable(vsKeepalived, slices.Concat(soak.costRows(), idle.rows(), soak.soakRows(), loss.rows(), heal.rows())), nil
}
