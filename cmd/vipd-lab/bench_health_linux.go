package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The health benchmark's timing: a check every 100ms that counts as down
// after 2 failures, and 100ms adverts.
const (
	hbCheckInterval  = 100 * time.Millisecond
	hbCheckTimeout   = 90 * time.Millisecond
	hbCheckFall      = 2
	hbAdvertInterval = 100 * time.Millisecond
	hbHealthAddr     = "127.0.0.1:8080"
	hbMaster         = 150 // n1, which tracks the check
	hbBackup         = 100 // n2
	hbWeight         = -60 // 150 - 60 = 90 < 100
)

// hbScenario is how n1 tracks its health check.
type hbScenario struct {
	name   string
	weight int // 0: FAULT while down
}

var hbScenarios = []hbScenario{{"weighted", hbWeight}, {"fault", 0}}

// hbBounds returns the earliest and latest time, after the endpoint starts
// failing, at which n2 can take over according to the configuration, and
// the formula.
//
// Detection: the check runs every interval Ic, so the fall-th failure in a
// row comes (fall−1)×Ic to fall×Ic after the endpoint breaks, depending on
// where the break falls between two runs.
//
// fault: n1 enters FAULT at detection and sends priority 0; n2 takes over
// Skew_Time = (256−100)/256 × Ia later.
//
// weighted: n1 advertises 90 from its next advert on, which n2 (100,
// preempt) ignores: n2 takes over when its Master_Down_Timer runs out,
// Master_Down_Interval = 3×Ia + Skew_Time after n1's last advert at 150,
// sent 0 to Ia before detection.
func hbBounds(sc hbScenario) (lo, hi time.Duration, formula string) {
	detLo, detHi := time.Duration(hbCheckFall-1)*hbCheckInterval, time.Duration(hbCheckFall)*hbCheckInterval
	if sc.weight == 0 {
		skew := lab.SkewTime(hbBackup, hbAdvertInterval)
		return detLo + skew, detHi + skew, "(fall−1..fall)×Ic + Skew_Time"
	}
	mdi := lab.MasterDownInterval(hbBackup, hbAdvertInterval)
	return detLo - hbAdvertInterval + mdi, detHi + mdi, "(fall−1..fall)×Ic − (0..Ia) + Master_Down_Interval"
}

// hbRun is one measurement, from the moment the endpoint starts failing.
type hbRun struct {
	takeover time.Duration // n2 logs its transition to master
	reach    time.Duration // the client's first echo reply from n2
}

// benchHealth measures how long after a health endpoint on the master starts
// failing (HTTP 500) the client reaches the VIP on the backup, with the
// check tracked by weight (-60) and in FAULT mode, runs times each, beside
// what the configuration allows.
func benchHealth(ctx context.Context, env *benchEnv) (*table, error) {
	l, err := lab.New(lab.Config{Nodes: 2})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	n1 := l.Nodes[0]
	h, err := hbServe(n1.NS, hbHealthAddr)
	if err != nil {
		return nil, err
	}
	defer h.close()
	w, bin, runs := env.w, env.vipd, env.runs

	fmt.Fprintf(w, "vipd-lab bench health: n1 (priority %d) tracks an HTTP check of an endpoint in its namespace, n2 (%d) does not;\n", hbMaster, hbBackup)
	fmt.Fprintf(w, "check every %v (timeout %v), fall %d, rise 2; adverts every %v; a client pings the VIP %s every 2ms.\n",
		hbCheckInterval, hbCheckTimeout, hbCheckFall, hbAdvertInterval, lab.VIP.Addr())
	fmt.Fprintf(w, "At t=0 the endpoint starts answering 500. takeover: n2 logs its change to master; client: the first echo reply\n")
	fmt.Fprintf(w, "after the client's ARP entry for the VIP names n2. %d runs each (lab %s).\n\n", runs, l.Prefix)

	results := map[string][]hbRun{}
	failures := map[string][]error{}
	for _, sc := range hbScenarios {
		rs, errs, err := hbScenarioRuns(ctx, w, l, bin, h, sc, runs)
		if err != nil {
			return nil, err
		}
		results[sc.name], failures[sc.name] = rs, errs
	}

	t := &table{header: []string{"tracking", "takeover median (min–max)", "client median (min–max)", "configuration allows", "formula"}}
	for _, sc := range hbScenarios {
		lo, hi, formula := hbBounds(sc)
		rs := results[sc.name]
		take, reach := make([]time.Duration, len(rs)), make([]time.Duration, len(rs))
		for i, r := range rs {
			take[i], reach[i] = r.takeover, r.reach
		}
		label := sc.name
		if sc.weight != 0 {
			label += " (" + strconv.Itoa(sc.weight) + ")"
		}
		client := hbSummary(reach)
		if n := len(failures[sc.name]); n > 0 {
			client += fmt.Sprintf(" (%d failed)", n)
		}
		t.add(label, hbSummary(take), client, ms(lo)+"–"+ms(hi), formula)
	}
	t.notes = []string{
		"",
		fmt.Sprintf("Ic check interval %v, Ia advert interval %v, fall %d; n2's Skew_Time %s, Master_Down_Interval %s.",
			hbCheckInterval, hbAdvertInterval, hbCheckFall, ms(lab.SkewTime(hbBackup, hbAdvertInterval)), ms(lab.MasterDownInterval(hbBackup, hbAdvertInterval))),
		"fault: n1 enters FAULT at the fall-th failure and sends priority 0; n2 takes over after its Skew_Time.",
		"weighted: n1 advertises 90 from its next advert; n2 ignores lower adverts and preempts when its Master_Down_Timer,",
		"last reset by n1's last advert at 150 (up to Ia before detection), runs out.",
	}
	return t, nil
}

// hbScenarioRuns starts both nodes for one scenario and measures runs
// failures. A failed run is reported and the daemons restarted; an error is
// returned only when the lab cannot go on.
func hbScenarioRuns(ctx context.Context, w io.Writer, l *lab.Lab, bin string, h *hbHealth, sc hbScenario, runs int) ([]hbRun, []error, error) {
	n1, n2 := l.Nodes[0], l.Nodes[1]
	start := func() error {
		h.failing.Store(false)
		if err := n1.StartVipd(bin, hbConfig(l, n1, hbMaster, sc.weight, true)); err != nil {
			return err
		}
		// n2 joins once n1 is master, so every run starts from the same
		// state.
		wctx, cancel := context.WithTimeout(ctx, waitTimeout(hbAdvertInterval))
		defer cancel()
		if _, err := l.WaitHolders(wctx, lab.VIP, lab.Only(n1)); err != nil {
			return err
		}
		return n2.StartVipd(bin, hbConfig(l, n2, hbBackup, 0, false))
	}
	if err := start(); err != nil {
		return nil, nil, err
	}
	defer func() { _ = resetLab(l) }()
	p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
	if err != nil {
		return nil, nil, err
	}
	defer p.Stop()

	var rs []hbRun
	var errs []error
	for r := 1; r <= runs; r++ {
		run, err := hbMeasure(ctx, l, p, h)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(w, "%-8s run %d/%d: failed: %v; restarting the daemons\n", sc.name, r, runs, err)
			if err := resetLab(l); err != nil {
				fmt.Fprintf(w, "%-8s stopping the daemons: %v\n", sc.name, err)
			}
			if err := start(); err != nil {
				return nil, nil, err
			}
			continue
		}
		rs = append(rs, run)
		fmt.Fprintf(w, "%-8s run %d/%d: takeover %s, client %s\n", sc.name, r, runs, ms(run.takeover), ms(run.reach))
	}
	return rs, errs, nil
}

// hbMeasure waits until n1 serves the VIP, breaks the endpoint at a random
// moment, measures, repairs the endpoint and waits until n1 is back.
func hbMeasure(ctx context.Context, l *lab.Lab, p *lab.Prober, h *hbHealth) (hbRun, error) {
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ctx, cancel := context.WithTimeout(ctx, waitTimeout(hbAdvertInterval))
	defer cancel()
	h.failing.Store(false)
	if _, err := settle(ctx, l, p, n1, hbAdvertInterval, lab.VIP); err != nil {
		return hbRun{}, fmt.Errorf("n1 does not serve the VIP: %w", err)
	}
	if err := waitNeigh(ctx, l, n1, time.Millisecond); err != nil {
		return hbRun{}, err
	}
	// A random phase against the check's runs and n1's adverts.
	if err := sleep(ctx, rand.N(hbCheckInterval)); err != nil {
		return hbRun{}, err
	}
	before, err := n2.StateChanges()
	if err != nil {
		return hbRun{}, err
	}

	t0 := time.Now()
	h.failing.Store(true)
	if err := waitNeigh(ctx, l, n2, time.Millisecond); err != nil {
		return hbRun{}, err
	}
	moved := time.Now()
	if err := p.WaitReply(ctx, moved); err != nil {
		return hbRun{}, err
	}
	reply := p.Stats().LastReply
	var takeover time.Time
	changes, err := n2.StateChanges()
	if err != nil {
		return hbRun{}, err
	}
	for _, c := range changes[len(before):] {
		if c.To == "master" {
			takeover = c.Time
		}
	}
	if takeover.IsZero() {
		return hbRun{}, errors.New("n2 logged no change to master")
	}

	h.failing.Store(false)
	if _, err := l.WaitHolders(ctx, lab.VIP, lab.Only(n1)); err != nil {
		return hbRun{}, fmt.Errorf("n1 did not take the VIP back: %w", err)
	}
	return hbRun{takeover: takeover.Sub(t0), reach: reply.Sub(t0)}, nil
}

// hbConfig is a node's vipd configuration; n1 tracks the check "web".
func hbConfig(l *lab.Lab, n *lab.Node, priority, weight int, track bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "control_socket: %s\n", strconv.Quote(filepath.Join(l.Dir, n.Name+".sock")))
	if track {
		fmt.Fprintf(&b, "checks:\n  - name: web\n    http: {url: %s}\n", strconv.Quote("http://"+hbHealthAddr+"/healthz"))
		fmt.Fprintf(&b, "    interval: %s\n    timeout: %s\n    fall: %d\n    rise: 2\n", hbCheckInterval, hbCheckTimeout, hbCheckFall)
	}
	b.WriteString("instances:\n  - name: api\n    interface: eth0\n")
	fmt.Fprintf(&b, "    vrid: %d\n    priority: %d\n    advert_interval: %s\n    preempt: true\n", vrid, priority, hbAdvertInterval)
	fmt.Fprintf(&b, "    vips: [%s]\n", strconv.Quote(lab.VIP.String()))
	if track {
		if weight != 0 {
			fmt.Fprintf(&b, "    track_checks: [{check: web, weight: %d}]\n", weight)
		} else {
			b.WriteString("    track_checks: [{check: web}]\n")
		}
	}
	return b.String()
}

// hbHealth is the health endpoint, served inside a node's namespace.
type hbHealth struct {
	failing atomic.Bool
	srv     *http.Server
	done    chan struct{}
}

// hbServe serves http://addr/healthz inside namespace ns: 200, or 500 while
// failing is set.
func hbServe(ns, addr string) (*hbHealth, error) {
	var ln net.Listener
	if err := lab.InNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("health endpoint in %s: %w", ns, err)
	}
	h := &hbHealth{done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if h.failing.Load() {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

func (h *hbHealth) close() {
	_ = h.srv.Close()
	<-h.done
}

// hbSummary formats durations as "median (min–max)".
func hbSummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%s–%s)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}
