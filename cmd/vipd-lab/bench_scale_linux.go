package main

// The scale benchmark: many instances over several interfaces, a Master
// node and a Backup node, vipd beside Debian's keepalived in the same lab
// and the same run.

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// A scaleScenario is instances virtual routers at interval, spread evenly
// over ifaces interfaces, each on a segment of its own: n1 is the Master of
// all, n2 the Backup of all, measured for window once the announcements are
// over.
type scaleScenario struct {
	part      string // its name for --only
	instances int
	ifaces    int
	interval  time.Duration
	window    time.Duration
}

// scale1000 is the scenario of that name.
var scale1000 = scaleScenario{part: "scale1000", instances: 1000, ifaces: 4, interval: 100 * time.Millisecond, window: 12 * time.Second}

func benchScale1000(ctx context.Context, env *benchEnv) (*table, error) {
	return benchScale(ctx, env, scale1000)
}

// The priorities of the Master and the Backup.
const (
	scaleMaster = 150
	scaleBackup = 100
	// scaleSettle is the wait after the VIPs are in place: every gratuitous
	// ARP is out (keepalived spaces them 10ms apart per interface, 250 of
	// them take 2.5s).
	scaleSettle = 5 * time.Second
)

// perIface is how many instances each interface carries.
func (sc scaleScenario) perIface() int { return sc.instances / sc.ifaces }

// adverts is how many adverts per second the Master should send.
func (sc scaleScenario) adverts() float64 {
	return float64(sc.instances) * float64(time.Second) / float64(sc.interval)
}

// label names the scenario in the table.
func (sc scaleScenario) label() string {
	return fmt.Sprintf("%d inst. @%v, %d ifaces", sc.instances, sc.interval, sc.ifaces)
}

// instancesOf returns the scenario's instances at priority: VRIDs
// 1..perIface on each interface ethK, with the VIP 198.18.K.VRID/32. One
// gratuitous ARP per VIP, so the announcements end before the window.
func (sc scaleScenario) instancesOf(priority int) []lab.Instance {
	var out []lab.Instance
	for k := range sc.ifaces {
		for vrid := 1; vrid <= sc.perIface(); vrid++ {
			out = append(out, lab.Instance{
				Name:             fmt.Sprintf("s%dv%d", k, vrid),
				Interface:        fmt.Sprintf("eth%d", k),
				VRID:             vrid,
				Priority:         priority,
				AdvertInterval:   sc.interval,
				Preempt:          true,
				VIPs:             []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(k), byte(vrid)}), 32)},
				AnnounceCount:    1,
				AnnounceInterval: 10 * time.Millisecond,
			})
		}
	}
	return out
}

// benchScale measures sc for vipd and keepalived and prints a table.
func benchScale(ctx context.Context, env *benchEnv, sc scaleScenario) (*table, error) {
	if err := needKeepalived(); err != nil {
		return nil, err
	}
	l, err := lab.New(lab.Config{Nodes: 2, Segments: sc.ifaces})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	defer resetLab(l)
	w := env.w

	fmt.Fprintf(w, "vipd-lab bench (%s), lab %s: %d instances at %v over %d interfaces (VRIDs 1..%d on each of eth0..eth%d, each on a bridge of its own);\n",
		sc.part, l.Prefix, sc.instances, sc.interval, sc.ifaces, sc.perIface(), sc.ifaces-1)
	fmt.Fprintf(w, "n1 Master of all (priority %d), n2 Backup of all (%d), one gratuitous ARP per VIP; measured over %v once the VIPs are up and %v more have passed.\n",
		scaleMaster, scaleBackup, sc.window, scaleSettle)
	fmt.Fprintln(w, cpuMemLegend)
	fmt.Fprintln(w, "Adverts: vipd_adverts_sent_total and vipd_adverts_received_total; keepalived's statistics on SIGUSR2 (Advertisements Sent, Received).")
	fmt.Fprintln(w, "Dropped: what the kernel dropped on the Backup's VRRP sockets, never read (/proc/PID/net/raw).")
	fmt.Fprintln(w, "Transitions: vipd_transitions_total; keepalived's \"Entering … STATE\" log lines. Both nodes, over the window.")
	fmt.Fprintln(w)

	results := map[string]*window{}
	for _, d := range env.bothIn(l) {
		fmt.Fprintf(w, "%-10s %d instances at %v over %d interfaces: starting; CPU over %v\n", d.name, sc.instances, sc.interval, sc.ifaces, sc.window)
		r, err := scaleRun(ctx, l, d, sc)
		if err != nil {
			if err := gaveUp(ctx, w, err, fmt.Sprintf("%-10s %d instances:", d.name, sc.instances)); err != nil {
				return nil, err
			}
			continue
		}
		results[d.name] = r
		share, within := r.received(sc.instances)
		fmt.Fprintf(w, "%-10s %d instances: master sent %.0f adverts/s, backup received %.0f/s (%.2f%% ± %.2f), %d dropped on its %d sockets, %d transitions\n",
			d.name, sc.instances, r.sentRate(), r.receivedRate(), 100*share, 100*within, r.drops(), r.bSockets, r.transitions())
	}
	return rowTable(vsKeepalived, scaleRows(sc, results["vipd"], results["keepalived"])), nil
}

// scaleRun runs sc for one daemon.
func scaleRun(ctx context.Context, l *lab.Lab, d *daemon, sc scaleScenario) (*window, error) {
	defer resetLab(l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := d.start(n2, sc.instancesOf(scaleBackup)...); err != nil {
		return nil, err
	}
	if err := d.start(n1, sc.instancesOf(scaleMaster)...); err != nil {
		return nil, err
	}
	all := map[*lab.Node]int{n1: sc.instances, n2: 0}
	if err := waitVIPs(ctx, all, 90*time.Second); err != nil {
		return nil, err
	}
	if err := sleep(ctx, scaleSettle); err != nil {
		return nil, err
	}
	r := &window{}
	if err := r.roles(n1, n2); err != nil {
		return nil, err
	}
	// The counters are read outside the CPU window: scraping 1,000
	// instances' metrics or writing their statistics costs the daemon.
	if err := r.count(ctx, d, n1, n2, 0); err != nil {
		return nil, err
	}
	if err := r.read(0); err != nil {
		return nil, err
	}
	if err := sleep(ctx, sc.window); err != nil {
		return nil, err
	}
	if err := r.read(1); err != nil {
		return nil, err
	}
	if err := r.count(ctx, d, n1, n2, 1); err != nil {
		return nil, err
	}
	// The roles held throughout, or a transition shows it.
	if err := waitVIPs(ctx, all, time.Second); err != nil {
		return nil, fmt.Errorf("after the window: %w", err)
	}
	return r, nil
}

// scaleRows is the table of sc; v or k is nil when that daemon gave up.
func scaleRows(sc scaleScenario, v, k *window) []row {
	name := sc.label() + ": "
	rows := costRows(name, v, k, fmt.Sprintf("goal ratio <= %.2f", goalCPURatio),
		fmt.Sprintf("%.0f adverts/s received", sc.adverts()), fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio))
	sent := func(r *window) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f/s", r.sentRate())
	}
	received := func(r *window) string {
		if r == nil {
			return "-"
		}
		s := fmt.Sprintf("%.0f/s", r.receivedRate())
		if share, within := r.received(sc.instances); share > 0 {
			s += fmt.Sprintf(" (%.1f%% ± %.1f)", 100*share, 100*within)
		}
		return s
	}
	dropped := func(r *window) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprint(r.drops())
	}
	transitions := func(r *window) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprint(r.transitions())
	}
	rows = append(rows,
		row{name + "adverts sent by the master", sent(v), sent(k), "-",
			fmt.Sprintf("%d inst. / %v = %.0f/s", sc.instances, sc.interval, sc.adverts())},
		row{name + "adverts received by the backup", received(v), received(k), "-",
			"goal 100% of those sent; ± the counters' reading time and burst size"},
		row{name + "adverts dropped by the backup's sockets", dropped(v), dropped(k), "-",
			"goal 0; the kernel's count (/proc/net/raw drops), exact"},
		row{name + "spurious transitions", transitions(v), transitions(k), "-",
			fmt.Sprintf("goal 0 over %v, both nodes", sc.window)},
	)
	return rows
}
