package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The BGP benchmark's setup: one node announcing an anycast VIP to FRR in
// the client's namespace, BFD at 100 ms × 3 where it is on, a 3 s hold
// time, and a check every 100 ms that is down after 2 failures.
const (
	bbRouterASN     = 65000
	bbNodeASN       = 65001
	bbBFDInterval   = 100 * time.Millisecond
	bbBFDMultiplier = 3
	bbHoldTime      = 3 * time.Second
	bbCheckInterval = 100 * time.Millisecond
	bbCheckFall     = 2
)

var bbVIP = netip.MustParsePrefix("198.51.100.30/32")

// A bgpEvent takes the node's route away; start is when it began.
type bgpEvent struct {
	name string
	bfd  bool
	goal string
	do   func(n *lab.Node, okFile string) (start time.Time, err error)
}

var bgpEvents = []bgpEvent{
	{"graceful stop (SIGTERM)", false, "≤ 100ms", func(n *lab.Node, _ string) (time.Time, error) {
		start := time.Now()
		_, err := n.Stop()
		return start, err
	}},
	{"SIGKILL, BFD 100ms×3", true, "≤ 1s", sendSignal(syscall.SIGKILL)},
	{"SIGKILL, no BFD", false, "the kernel closes TCP", sendSignal(syscall.SIGKILL)},
	{"hung (SIGSTOP), BFD 100ms×3", true, "≤ 1s", sendSignal(syscall.SIGSTOP)},
	{"hung (SIGSTOP), no BFD", false, "hold time 3s", sendSignal(syscall.SIGSTOP)},
	{fmt.Sprintf("check fails (fall %d × %v)", bbCheckFall, bbCheckInterval), false,
		fmt.Sprintf("≤ %v", bbCheckFall*bbCheckInterval+50*time.Millisecond), func(_ *lab.Node, ok string) (time.Time, error) {
			start := time.Now()
			return start, os.Remove(ok)
		}},
}

func sendSignal(sig syscall.Signal) func(*lab.Node, string) (time.Time, error) {
	return func(n *lab.Node, _ string) (time.Time, error) {
		pid, err := n.PID()
		if err != nil {
			return time.Time{}, err
		}
		start := time.Now()
		return start, syscall.Kill(pid, sig)
	}
}

// benchBGP measures how soon the router loses a node's route after each
// event, and what a BGP speaker costs in memory.
func benchBGP(ctx context.Context, env *benchEnv) (*table, error) {
	if !lab.FRRInstalled() {
		return nil, errors.New("FRRouting is not installed (apt-get install frr)")
	}
	l, err := lab.New(lab.Config{Nodes: 1})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	router := lab.ClientAddr.Addr()
	r, err := lab.StartFRR(lab.FRRConfig{NS: l.Client.NS, Dir: filepath.Join(l.Dir, "frr"), ASN: bbRouterASN, RouterID: router,
		BFD: true, BFDInterval: bbBFDInterval, BFDMultiplier: bbBFDMultiplier})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	n := l.Nodes[0]
	if err := r.Neighbor(n.Addr.Addr(), bbNodeASN); err != nil {
		return nil, err
	}
	w := env.w
	fmt.Fprintf(w, "vipd-lab bench bgp: one node announcing the anycast VIP %s to FRR (bgpd, bfdd) in the client's namespace; hold time %v (lab %s).\n",
		bbVIP.Addr(), bbHoldTime, l.Prefix)
	fmt.Fprintf(w, "route gone: from the event to the route's removal from the router's kernel table (netlink, polled every 1ms); median of %d runs.\n\n", env.runs)

	t := &table{header: []string{"scenario", "vipd", "runs", "goal"}}
	okFile := filepath.Join(l.Dir, "check.ok")
	for _, ev := range bgpEvents {
		var took []time.Duration
		bfdCmd := "no neighbor " + n.Addr.Addr().String() + " bfd"
		if ev.bfd {
			bfdCmd = "neighbor " + n.Addr.Addr().String() + " bfd"
		}
		if err := r.Configure(fmt.Sprintf("router bgp %d", bbRouterASN), bfdCmd); err != nil {
			return nil, err
		}
		if ev.bfd {
			if err := r.NeighborBFD(n.Addr.Addr()); err != nil {
				return nil, err
			}
		}
		for i := 0; i < env.runs; i++ {
			d, err := bgpRun(ctx, env, l, r, n, ev, okFile)
			_ = n.Kill()
			if err != nil {
				if err := gaveUp(ctx, w, err, ev.name); err != nil {
					return nil, err
				}
				continue
			}
			fmt.Fprintf(w, "%-32s run %d: route gone after %s\n", ev.name, i+1, ms(d))
			took = append(took, d)
		}
		cell := "-"
		if len(took) > 0 {
			cell = ms(median(took))
		}
		t.add(ev.name, cell, fmt.Sprintf("%d/%d", len(took), env.runs), ev.goal)
	}
	memRows(ctx, env, l, n, r, t)
	t.notes = append(t.notes, "SIGKILL: the node's kernel closes the TCP connection, which the router sees at once, BFD or not;",
		"hung: the process stops but its connection stays open, the case BFD is for.")
	return t, nil
}

// bgpRun starts vipd on n, waits until its route is at the router (and its
// BFD session up, with bfd), then runs the event and returns how long the
// router kept the route.
func bgpRun(ctx context.Context, env *benchEnv, l *lab.Lab, r *lab.FRR, n *lab.Node, ev bgpEvent, okFile string) (time.Duration, error) {
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		return 0, err
	}
	if err := n.StartVipd(env.vipd, bgpConfig(l, n, ev.bfd, okFile, true)); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := r.WaitKernelRoute(wctx, bbVIP, true); err != nil {
		return 0, err
	}
	if ev.bfd {
		if err := waitMetric(wctx, n, "vipd_bgp_peer_bfd_up", 1, "peer="+lab.ClientAddr.Addr().String()); err != nil {
			return 0, err
		}
	}
	start, err := ev.do(n, okFile)
	if err != nil {
		return 0, err
	}
	gone, err := r.WaitKernelRoute(wctx, bbVIP, false)
	if err != nil {
		return 0, err
	}
	return gone.Sub(start), nil
}

// bgpConfig is n's vipd file: an instance, and with withBGP the anycast
// VIP tracking a check of okFile, announced to the router.
func bgpConfig(l *lab.Lab, n *lab.Node, bfd bool, okFile string, withBGP bool) string {
	s := "control_socket: " + filepath.Join(l.Dir, n.Name+".sock") + "\n" +
		"metrics: {listen: \"" + metricsListen + "\"}\n" +
		"instances:\n  - {name: api, interface: eth0, vrid: 51, advert_interval: 1s, vips: [\"" + lab.VIP.String() + "\"]}\n"
	if !withBGP {
		return s
	}
	peer := fmt.Sprintf("{address: %s, asn: %d, hold_time: %v", lab.ClientAddr.Addr(), bbRouterASN, bbHoldTime)
	if bfd {
		peer += fmt.Sprintf(", bfd: true, bfd_interval: %v, bfd_multiplier: %d", bbBFDInterval, bbBFDMultiplier)
	}
	return s + fmt.Sprintf("checks:\n  - {name: svc, interval: %v, fall: %d, rise: 1, exec: {command: [test, -e, %s]}}\n", bbCheckInterval, bbCheckFall, okFile) +
		fmt.Sprintf("bgp:\n  asn: %d\n  router_id: %s\n  peers: [%s}]\n", bbNodeASN, n.Addr.Addr(), peer) +
		"anycast:\n  - {name: any, vips: [\"" + bbVIP.String() + "\"], track_checks: [{check: svc}]}\n"
}

// waitMetric waits until n's metric is want.
func waitMetric(ctx context.Context, n *lab.Node, name string, want float64, labels ...string) error {
	for {
		body, err := n.Metrics(ctx, metricsListen)
		if err == nil {
			if v, ok := lab.MetricValue(body, name, labels...); ok && v == want {
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %s is not %v: %w", n.Name, name, want, err)
		}
	}
}

// memSettle is how long after its start a daemon's memory is read: vipd
// returns what its start-up left behind once its elections have settled
// (cmd/vipd's returnIdleMemory, a few seconds at a 1 s interval).
const memSettle = 13 * time.Second

// memRows adds the memory of a vipd without a bgp section, and with one
// and a session established, each memSettle after its start, and the binary's
// size; then, with --vipd-nobgp, the same code built without GoBGP.
func memRows(ctx context.Context, env *benchEnv, l *lab.Lab, n *lab.Node, r *lab.FRR, t *table) {
	type memRun struct {
		name, bin string
		withBGP   bool
	}
	runs := []memRun{
		{"memory, no bgp section", env.vipd, false},
		{"memory, bgp section, 1 peer up", env.vipd, true},
	}
	if env.vipdNoBGP != "" {
		runs = append(runs, memRun{"memory, built without GoBGP (BGP=no)", env.vipdNoBGP, false})
	}
	okFile := filepath.Join(l.Dir, "check.ok")
	for _, run := range runs {
		u, err := func() (lab.Usage, error) {
			if err := os.WriteFile(okFile, nil, 0o644); err != nil {
				return lab.Usage{}, err
			}
			defer n.Kill()
			if err := n.StartVipd(run.bin, bgpConfig(l, n, false, okFile, run.withBGP)); err != nil {
				return lab.Usage{}, err
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if run.withBGP {
				if _, err := r.WaitKernelRoute(wctx, bbVIP, true); err != nil {
					return lab.Usage{}, err
				}
			}
			if err := sleep(wctx, memSettle); err != nil {
				return lab.Usage{}, err
			}
			pid, err := n.PID()
			if err != nil {
				return lab.Usage{}, err
			}
			return lab.ReadUsage(pid)
		}()
		if err != nil {
			if err := gaveUp(ctx, env.w, err, run.name); err != nil {
				return
			}
			t.add(run.name, "-", "0/1", "")
			continue
		}
		t.add(run.name, fmt.Sprintf("RssAnon %s, VmRSS %s", mib(int(u.Anon/1024)), mib(int(u.RSS/1024))), "1/1", "")
	}
	for _, b := range []struct{ name, bin string }{{"binary size", env.vipd}, {"binary size, BGP=no", env.vipdNoBGP}} {
		if st, err := os.Stat(b.bin); b.bin != "" && err == nil {
			t.add(b.name, mib(int(st.Size()/1024)), "", "")
		}
	}
}
