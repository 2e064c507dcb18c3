package main

// The scale benchmark: many instances over several interfaces, a Master
// node and a Backup node, vipd beside Debian's keepalived in the same lab
// and the same run.

import (
	"context"
	"fmt"
	"io"
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

// scaleScenarios are the parts of the scale benchmark.
var scaleScenarios = []scaleScenario{
	{part: "scale1000", instances: 1000, ifaces: 4, interval: 100 * time.Millisecond, window: 12 * time.Second},
}

// The priorities of the Master and the Backup.
const (
	scaleMaster = 150
	scaleBackup = 100
	// vrrpProtocol is VRRP's IP protocol number (RFC 9568 §5.1.1.4).
	vrrpProtocol = 112
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

// scaleResult is one daemon's measurement.
type scaleResult struct {
	master, backup   [2][]lab.Usage // at the window's start and end
	mRoles, bRoles   []lab.Process
	mCounts, bCounts [2]vrrpCounts
	// bSockets and bDrops are the Backup's VRRP sockets and the packets
	// the kernel dropped on them (lab.RawSockets) at the window's start
	// and end.
	bSockets int
	bDrops   [2]int
}

// drops is how many adverts the Backup's sockets dropped over the window.
func (r *scaleResult) drops() int { return r.bDrops[1] - r.bDrops[0] }

// sentRate is the Master's adverts per second over the window.
func (r *scaleResult) sentRate() float64 {
	return rate(r.mCounts, func(c vrrpCounts) int { return c.sent })
}

// receivedRate is the Backup's adverts received per second over the window.
func (r *scaleResult) receivedRate() float64 {
	return rate(r.bCounts, func(c vrrpCounts) int { return c.received })
}

// transitions is how many state changes both nodes made over the window.
func (r *scaleResult) transitions() int {
	return r.mCounts[1].transitions - r.mCounts[0].transitions + r.bCounts[1].transitions - r.bCounts[0].transitions
}

// rate is a counter's growth per second between two readings: each node's
// over its own readings' times, so that reading the Master and the Backup
// a moment apart does not count as lost adverts.
func rate(cs [2]vrrpCounts, f func(vrrpCounts) int) float64 {
	d := cs[1].at.Sub(cs[0].at)
	if d <= 0 {
		return 0
	}
	return float64(f(cs[1])-f(cs[0])) / d.Seconds()
}

// received is the Backup's received rate as a share of the Master's sent
// rate, and how far off it can be. Each reading is a snapshot taken at some
// moment while the daemon was asked (at ± spread), and a counter grows in
// bursts of up to one advert per instance (instances that became Master
// together advertise together), so each node's count over its window is off
// by up to rate × (spread₀ + spread₁) + instances.
func (r *scaleResult) received(instances int) (share, within float64) {
	sent := r.sentRate()
	if sent <= 0 {
		return 0, 0
	}
	off := func(cs [2]vrrpCounts, f func(vrrpCounts) int) float64 {
		n := float64(f(cs[1]) - f(cs[0]))
		if n <= 0 {
			return 0
		}
		return float64(cs[0].spread+cs[1].spread)/float64(cs[1].at.Sub(cs[0].at)) + float64(instances)/n
	}
	within = off(r.mCounts, func(c vrrpCounts) int { return c.sent }) + off(r.bCounts, func(c vrrpCounts) int { return c.received })
	return r.receivedRate() / sent, within
}

// benchScale measures sc for vipd and keepalived and prints a table.
func benchScale(ctx context.Context, w io.Writer, vipdPath string, sc scaleScenario) error {
	bin, err := vipdBinary(vipdPath)
	if err != nil {
		return err
	}
	if err := needKeepalived(); err != nil {
		return err
	}
	l, err := lab.New(lab.Config{Nodes: 2, Segments: sc.ifaces})
	if err != nil {
		return err
	}
	defer l.Close()
	defer resetLab(l)

	fmt.Fprintf(w, "vipd-lab bench (%s), lab %s: %d instances at %v over %d interfaces (VRIDs 1..%d on each of eth0..eth%d, each on a bridge of its own);\n",
		sc.part, l.Prefix, sc.instances, sc.interval, sc.ifaces, sc.perIface(), sc.ifaces-1)
	fmt.Fprintf(w, "n1 Master of all (priority %d), n2 Backup of all (%d), one gratuitous ARP per VIP; measured over %v once the VIPs are up and %v more have passed.\n",
		scaleMaster, scaleBackup, sc.window, scaleSettle)
	fmt.Fprintln(w, cpuMemLegend)
	fmt.Fprintln(w, "Adverts: vipd_adverts_sent_total and vipd_adverts_received_total; keepalived's statistics on SIGUSR2 (Advertisements Sent, Received).")
	fmt.Fprintln(w, "Dropped: what the kernel dropped on the Backup's VRRP sockets, never read (/proc/PID/net/raw).")
	fmt.Fprintln(w, "Transitions: vipd_transitions_total; keepalived's \"Entering … STATE\" log lines. Both nodes, over the window.")
	fmt.Fprintln(w)

	results := map[string]*scaleResult{}
	for _, d := range []relDaemon{relVipd(l, bin), relKeepalived()} {
		fmt.Fprintf(w, "%-10s %d instances at %v over %d interfaces: starting; CPU over %v\n", d.name, sc.instances, sc.interval, sc.ifaces, sc.window)
		r, err := scaleRun(ctx, l, d, sc)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(w, "%-10s %d instances: gave up: %v\n", d.name, sc.instances, err)
			continue
		}
		results[d.name] = r
		share, within := r.received(sc.instances)
		fmt.Fprintf(w, "%-10s %d instances: master sent %.0f adverts/s, backup received %.0f/s (%.2f%% ± %.2f), %d dropped on its %d sockets, %d transitions\n",
			d.name, sc.instances, r.sentRate(), r.receivedRate(), 100*share, 100*within, r.drops(), r.bSockets, r.transitions())
	}
	fmt.Fprintln(w)
	return printRows(w, scaleRows(sc, results["vipd"], results["keepalived"]))
}

// scaleRun runs sc for one daemon.
func scaleRun(ctx context.Context, l *lab.Lab, d relDaemon, sc scaleScenario) (*scaleResult, error) {
	defer resetLab(l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := d.start(n2, sc.instancesOf(scaleBackup)); err != nil {
		return nil, err
	}
	if err := d.start(n1, sc.instancesOf(scaleMaster)); err != nil {
		return nil, err
	}
	all := map[*lab.Node]int{n1: sc.instances, n2: 0}
	if err := waitVIPs(ctx, all, 90*time.Second); err != nil {
		return nil, err
	}
	if err := sleep(ctx, scaleSettle); err != nil {
		return nil, err
	}
	r := &scaleResult{}
	var err error
	if r.mRoles, err = n1.Processes(); err != nil {
		return nil, err
	}
	if r.bRoles, err = n2.Processes(); err != nil {
		return nil, err
	}
	// The counters are read outside the CPU window: scraping 1,000
	// instances' metrics or writing their statistics costs the daemon.
	if err := bothCounts(ctx, d, n1, n2, &r.mCounts[0], &r.bCounts[0]); err != nil {
		return nil, err
	}
	if err := readBoth(r.mRoles, r.bRoles, &r.master[0], &r.backup[0]); err != nil {
		return nil, err
	}
	if r.bSockets, r.bDrops[0], err = lab.RawSockets(r.bRoles[0].PID, vrrpProtocol); err != nil {
		return nil, err
	}
	if err := sleep(ctx, sc.window); err != nil {
		return nil, err
	}
	if err := readBoth(r.mRoles, r.bRoles, &r.master[1], &r.backup[1]); err != nil {
		return nil, err
	}
	if _, r.bDrops[1], err = lab.RawSockets(r.bRoles[0].PID, vrrpProtocol); err != nil {
		return nil, err
	}
	if err := bothCounts(ctx, d, n1, n2, &r.mCounts[1], &r.bCounts[1]); err != nil {
		return nil, err
	}
	// The roles held throughout, or a transition shows it.
	if err := waitVIPs(ctx, all, time.Second); err != nil {
		return nil, fmt.Errorf("after the window: %w", err)
	}
	return r, nil
}

func readBoth(mp, bp []lab.Process, m, b *[]lab.Usage) error {
	var err error
	if *m, err = readUsages(mp); err != nil {
		return err
	}
	*b, err = readUsages(bp)
	return err
}

// bothCounts reads the counters of the Master, then of the Backup: one at
// a time, so that each answers as soon as it can. Rates are over each
// node's own readings.
func bothCounts(ctx context.Context, d relDaemon, n1, n2 *lab.Node, m, b *vrrpCounts) error {
	var err error
	if *m, err = d.counts(ctx, n1); err != nil {
		return err
	}
	*b, err = d.counts(ctx, n2)
	return err
}

// scaleRows is the table of sc; v or k is nil when that daemon gave up.
func scaleRows(sc scaleScenario, v, k *scaleResult) []relRow {
	name := sc.label() + ": "
	cpu := func(f func(*scaleResult) [2][]lab.Usage) (time.Duration, time.Duration) {
		var vc, kc time.Duration
		if v != nil {
			vc = cpuPerSecond(f(v)[0], f(v)[1])
		}
		if k != nil {
			kc = cpuPerSecond(f(k)[0], f(k)[1])
		}
		return vc, kc
	}
	mem := func(f func(*scaleResult) [2][]lab.Usage, roles func(*scaleResult) []lab.Process, m memOf, note string) (int, int, string) {
		var vm, km int
		if v != nil {
			vm = memSum(f(v)[1], m)
		}
		if k != nil {
			km = memSum(f(k)[1], m)
			note += keepalivedSplit(f(k)[1], roles(k), m)
		}
		return vm, km, note
	}
	master := func(r *scaleResult) [2][]lab.Usage { return r.master }
	backup := func(r *scaleResult) [2][]lab.Usage { return r.backup }
	mRoles := func(r *scaleResult) []lab.Process { return r.mRoles }
	bRoles := func(r *scaleResult) []lab.Process { return r.bRoles }

	mc, mk := cpu(master)
	bc, bk := cpu(backup)
	rows := []relRow{
		cpuRow(name+"master CPU", mc, mk, v != nil, k != nil, fmt.Sprintf("goal ratio <= %.2f", goalCPURatio)),
		cpuRow(name+"backup CPU", bc, bk, v != nil, k != nil, fmt.Sprintf("%.0f adverts/s received", sc.adverts())),
	}
	for _, m := range []struct {
		what  string
		f     func(*scaleResult) [2][]lab.Usage
		roles func(*scaleResult) []lab.Process
		mem   memOf
		note  string
	}{
		{"master RSS", master, mRoles, vmRSS, fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)},
		{"master RssAnon", master, mRoles, rssAnon, "private memory"},
		{"backup RSS", backup, bRoles, vmRSS, fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)},
		{"backup RssAnon", backup, bRoles, rssAnon, "private memory"},
	} {
		vm, km, note := mem(m.f, m.roles, m.mem, m.note)
		rows = append(rows, memRow(name+m.what, vm, km, note))
	}

	sent := func(r *scaleResult) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f/s", r.sentRate())
	}
	received := func(r *scaleResult) string {
		if r == nil {
			return "-"
		}
		s := fmt.Sprintf("%.0f/s", r.receivedRate())
		if share, within := r.received(sc.instances); share > 0 {
			s += fmt.Sprintf(" (%.1f%% ± %.1f)", 100*share, 100*within)
		}
		return s
	}
	dropped := func(r *scaleResult) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprint(r.drops())
	}
	transitions := func(r *scaleResult) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprint(r.transitions())
	}
	rows = append(rows,
		relRow{name + "adverts sent by the master", sent(v), sent(k), "-",
			fmt.Sprintf("%d inst. / %v = %.0f/s", sc.instances, sc.interval, sc.adverts())},
		relRow{name + "adverts received by the backup", received(v), received(k), "-",
			"goal 100% of those sent; ± the counters' reading time and burst size"},
		relRow{name + "adverts dropped by the backup's sockets", dropped(v), dropped(k), "-",
			"goal 0; the kernel's count (/proc/net/raw drops), exact"},
		relRow{name + "spurious transitions", transitions(v), transitions(k), "-",
			fmt.Sprintf("goal 0 over %v, both nodes", sc.window)},
	)
	return rows
}
