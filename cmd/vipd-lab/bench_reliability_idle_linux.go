package main

// The reliability part's single-instance scenarios: what one virtual
// router costs its Master at the fastest interval VRRPv3 has, and at the
// usual one.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// idleWindow is the CPU window of the single-instance scenarios.
const idleWindow = 10 * time.Second

// idleIntervals are the single-instance scenarios and their goals.
var idleIntervals = []struct {
	interval time.Duration
	goal     string
}{
	{10 * time.Millisecond, fmt.Sprintf("goal ratio <= %.2f; %s", goalCPURatio, refKeepalived1)},
	{time.Second, fmt.Sprintf("goal <= %.1f ms/s", goalIdleCPU)},
}

// idleKey names a result of a single-instance scenario.
type idleKey struct {
	daemon   string
	interval time.Duration
}

// idleResult is the Master's usage at the window's start and end.
type idleResult struct {
	usage [2][]lab.Usage
	roles []lab.Process
}

// idleScenario measures every daemon at each of idleIntervals, and Go's
// floor at each (floor: "vipd-lab wake-floor" in the Master's node).
type idleScenario struct {
	res   map[idleKey]idleResult
	floor map[time.Duration]idleResult
}

// idleSettle is how long a single-instance scenario waits after the
// takeover before its CPU window, for both daemons alike.
func idleSettle(interval time.Duration) time.Duration { return max(2*time.Second, 12*interval) }

func (sc *idleScenario) measure(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon) error {
	for _, iv := range idleIntervals {
		fmt.Fprintf(w, "%-10s 1 instance at %v: CPU over %v, from %v after the takeover\n", d.name, iv.interval, idleWindow, idleSettle(iv.interval))
		r, err := idleRun(ctx, l, d, iv.interval)
		if err != nil {
			if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s 1 instance at %v:", d.name, iv.interval)); err != nil {
				return err
			}
			continue
		}
		sc.res[idleKey{d.name, iv.interval}] = r
	}
	return nil
}

func idleRun(ctx context.Context, l *lab.Lab, d *daemon, interval time.Duration) (idleResult, error) {
	var r idleResult
	defer resetLab(l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := d.start(n2, instanceOf(ipv4, 1, interval)); err != nil {
		return r, err
	}
	if err := d.start(n1, instanceOf(ipv4, 0, interval)); err != nil {
		return r, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := l.WaitHolders(wctx, lab.VIP, lab.Only(n1)); err != nil {
		return r, err
	}
	// The steady state: the announcements are over, and so is what a
	// daemon does once after start-up (vipd returns the memory start-up
	// left behind once the elections have been quiet for a while, which at
	// a 1 s interval is ~12 s in).
	if err := sleep(ctx, idleSettle(interval)); err != nil {
		return r, err
	}
	roles, err := n1.Processes()
	if err != nil {
		return r, err
	}
	return idleWindowOf(ctx, roles)
}

// measureFloor runs "vipd-lab wake-floor" (self) in the Master's node at
// each of idleIntervals, alone, over the same window as the daemons.
func (sc *idleScenario) measureFloor(ctx context.Context, w io.Writer, l *lab.Lab, self string) error {
	for _, iv := range idleIntervals {
		fmt.Fprintf(w, "%-10s a Go program that only wakes and sends, at %v: CPU over %v\n", "floor", iv.interval, idleWindow)
		r, err := floorRun(ctx, l, self, iv.interval)
		if err != nil {
			if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s at %v:", "floor", iv.interval)); err != nil {
				return err
			}
			continue
		}
		sc.floor[iv.interval] = r
	}
	return nil
}

func floorRun(ctx context.Context, l *lab.Lab, self string, interval time.Duration) (idleResult, error) {
	var r idleResult
	n1 := l.Nodes[0]
	to := netip.AddrPortFrom(lab.NodeAddr(2).Addr(), 9) // discard, on n2: nothing listens
	p, err := startIn(l, n1, "floor", nil, self, wakeFloorCmd, "-interval", interval.String(), "-to", to.String())
	if err != nil {
		return r, err
	}
	defer p.stop()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return r, err
	}
	roles := []lab.Process{{Role: "floor", PID: p.cmd.Process.Pid}}
	return idleWindowOf(ctx, roles)
}

func (sc *idleScenario) rows() []row {
	var rows []row
	for _, iv := range idleIntervals {
		v, vok := sc.res[idleKey{"vipd", iv.interval}]
		k, kok := sc.res[idleKey{"keepalived", iv.interval}]
		var vc, kc time.Duration
		if vok {
			vc = cpuPerSecond(v.usage[0], v.usage[1])
		}
		if kok {
			kc = cpuPerSecond(k.usage[0], k.usage[1])
		}
		name := fmt.Sprintf("1 inst. @%v: master ", iv.interval)
		rows = append(rows, cpuRow(name+"CPU", vc, kc, vok, kok, iv.goal))
		if f, ok := sc.floor[iv.interval]; ok {
			rows = append(rows, cpuRow(fmt.Sprintf("1 inst. @%v: Go floor CPU", iv.interval), cpuPerSecond(f.usage[0], f.usage[1]), kc, true, kok,
				"a Go program that only wakes and sends (vipd-lab wake-floor), in the vipd column"))
		}
		if iv.interval == 10*time.Millisecond {
			rows = append(rows, memRow(name+"RSS", memSum(v.usage[1], vmRSS), memSum(k.usage[1], vmRSS),
				fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)+keepalivedSplit(k.usage[1], k.roles, vmRSS)))
		}
	}
	return rows
}

// idleWindowOf reads roles' usage, then again after idleWindow.
func idleWindowOf(ctx context.Context, roles []lab.Process) (idleResult, error) {
	a, err := readUsages(roles)
	if err != nil {
		return idleResult{}, err
	}
	if err := sleep(ctx, idleWindow); err != nil {
		return idleResult{}, err
	}
	b, err := readUsages(roles)
	if err != nil {
		return idleResult{}, err
	}
	return idleResult{usage: [2][]lab.Usage{a, b}, roles: roles}, nil
}
