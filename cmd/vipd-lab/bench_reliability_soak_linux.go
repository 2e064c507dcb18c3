package main

// The reliability part's 255-instance scenario: what 255 virtual routers
// at 100ms cost a Master and a Backup, then a soak on the same daemons
// with a failover of all 255 every 5s.

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// reliabilitySoak is how long the soak runs (its first relWindow is the CPU
// measurement). VIPD_LAB_SOAK (a Go duration) overrides it, e.g.
// VIPD_LAB_SOAK=10m for a real soak.
var reliabilitySoak = 40 * time.Second

// relWindow is the CPU measurement window of the 255-instance scenario
// (and of the auth part's).
const relWindow = 15 * time.Second

// soakScenario measures every daemon's 255 instances and soak.
type soakScenario struct {
	soak time.Duration
	res  map[string]*soakResult
}

type soakResult struct {
	window           // the CPU window, and the roles
	soakMid, soakEnd []lab.Usage
	gStart, gEnd     int
	cycles           int
	soakNote         string
}

// newSoak reads VIPD_LAB_SOAK.
func newSoak() (*soakScenario, error) {
	sc := &soakScenario{soak: reliabilitySoak, res: map[string]*soakResult{}}
	if s := os.Getenv("VIPD_LAB_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < relWindow+10*time.Second || d > 24*time.Hour {
			return nil, fmt.Errorf("VIPD_LAB_SOAK=%q: want a duration from %v to 24h", s, relWindow+10*time.Second)
		}
		sc.soak = d
	}
	return sc, nil
}

func (sc *soakScenario) measure(ctx context.Context, w io.Writer, l *lab.Lab, d *daemon) error {
	res := &soakResult{gStart: -1, gEnd: -1}
	sc.res[d.name] = res
	fmt.Fprintf(w, "%-10s 255 instances at 100ms: starting; CPU over %v, then a soak to %v with a failover of all 255 every 5s\n", d.name, relWindow, sc.soak)
	if err := sc.run(ctx, l, d, res); err != nil {
		return gaveUp(ctx, w, err, fmt.Sprintf("%-10s 255 instances:", d.name))
	}
	return nil
}

func (sc *soakScenario) run(ctx context.Context, l *lab.Lab, d *daemon, res *soakResult) error {
	defer resetLab(l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ins := scaleInstances(255, 150, 100*time.Millisecond)
	if err := d.start(n2, withPriority(ins, 100)...); err != nil {
		return err
	}
	if err := d.start(n1, ins...); err != nil {
		return err
	}
	if err := waitVIPs(ctx, map[*lab.Node]int{n1: 255, n2: 0}, 60*time.Second); err != nil {
		return err
	}
	if err := sleep(ctx, 3*time.Second); err != nil { // announcements end
		return err
	}
	if err := res.roles(n1, n2); err != nil {
		return err
	}
	var err error
	if d.isVipd() {
		if res.gStart, err = goroutines(ctx, n1); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := res.read(0); err != nil {
		return err
	}
	if err := sleep(ctx, relWindow); err != nil {
		return err
	}
	if err := res.read(1); err != nil {
		return err
	}
	// The soak: a failover of every instance and back, every 5s.
	for res.cycles = 0; time.Since(start) < sc.soak-5*time.Second && res.cycles < 10000; res.cycles++ {
		cycle := time.Now()
		if err := n1.CutLink(); err != nil {
			return err
		}
		if err := waitVIPs(ctx, map[*lab.Node]int{n2: 255}, 30*time.Second); err != nil {
			return fmt.Errorf("soak cycle %d, n1's link cut: %w", res.cycles+1, err)
		}
		if err := n1.RestoreLink(); err != nil {
			return err
		}
		if err := waitVIPs(ctx, map[*lab.Node]int{n1: 255, n2: 0}, 30*time.Second); err != nil {
			return fmt.Errorf("soak cycle %d, n1's link restored: %w", res.cycles+1, err)
		}
		if err := sleep(ctx, 5*time.Second-time.Since(cycle)); err != nil {
			return err
		}
		if res.cycles == 0 {
			if res.soakMid, err = readUsages(res.mRoles); err != nil {
				return err
			}
		}
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	if res.soakEnd, err = readUsages(res.mRoles); err != nil {
		return err
	}
	if d.isVipd() {
		if res.gEnd, err = goroutines(ctx, n1); err != nil {
			return err
		}
	}
	res.soakNote = fmt.Sprintf("%v, %d failovers of 255", time.Since(start).Round(time.Second), res.cycles)
	return nil
}

// costRows are the CPU and memory of the 255 instances.
func (sc *soakScenario) costRows() []row {
	measured := func(r *soakResult) *window {
		if r.master[1] == nil {
			return nil
		}
		return &r.window
	}
	return costRows("255 inst. @100ms: ", measured(sc.res["vipd"]), measured(sc.res["keepalived"]),
		fmt.Sprintf("goal ratio <= %.2f; %s", goalCPURatio, refKeepalived2), "2550 adverts/s received",
		fmt.Sprintf("goal ratio <= %.2f; %s", goalRSSRatio, refKeepalived3))
}

// soakRows are the Master's memory and goroutines over the soak.
func (sc *soakScenario) soakRows() []row {
	vs, ks := sc.res["vipd"], sc.res["keepalived"]
	cell := func(s *soakResult) string {
		if s.soakEnd == nil {
			return "-"
		}
		mid := "-"
		if s.soakMid != nil {
			mid = mib(rssSum(s.soakMid))
		}
		return fmt.Sprintf("%s → %s → %s", mib(rssSum(s.master[1])), mid, mib(rssSum(s.soakEnd)))
	}
	note := "after the CPU window → after 1st failover → end"
	if vs.soakNote != "" {
		note += "; vipd " + vs.soakNote
	}
	if ks.soakNote != "" {
		note += "; keepalived " + ks.soakNote
	}
	growth := "-"
	if vs.soakMid != nil && vs.soakEnd != nil && ks.soakMid != nil && ks.soakEnd != nil {
		growth = fmt.Sprintf("growth %+d / %+d KiB", rssSum(vs.soakEnd)-rssSum(vs.soakMid), rssSum(ks.soakEnd)-rssSum(ks.soakMid))
	}
	g := "-"
	if vs.gStart >= 0 && vs.gEnd >= 0 {
		g = fmt.Sprintf("%d → %d", vs.gStart, vs.gEnd)
	}
	return []row{
		{"soak: master RSS", cell(vs), cell(ks), growth, note},
		{"soak: master goroutines", g, "n/a", "-", "go_goroutines from /metrics, start → end (same state)"},
	}
}
