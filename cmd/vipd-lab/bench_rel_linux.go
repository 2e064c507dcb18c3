package main

// The reliability benchmark: what vipd costs and how it behaves when the
// network misbehaves, beside Debian's keepalived in the same lab and the
// same run.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// reliabilitySoak is how long the soak runs (its first relWindow is the CPU
// measurement of the scale scenario). VIPD_LAB_SOAK (a Go duration)
// overrides it, e.g. VIPD_LAB_SOAK=10m for a real soak.
var reliabilitySoak = 40 * time.Second

const (
	// relWindow is the CPU measurement window of the 255-instance scenario.
	relWindow = 15 * time.Second
	// relSingleWindow is the window of the single-instance scenarios.
	relSingleWindow = 10 * time.Second
	// relLossRun is how long each loss rate is applied.
	relLossRun = 15 * time.Second
	// relLossInstances is how many independent instances the loss scenario
	// runs, for ten times the samples at no extra time.
	relLossInstances = 10
	// relHealRuns is how many partitions are healed per daemon.
	relHealRuns = 2
	// relMetrics is where vipd serves metrics inside each node's namespace.
	relMetrics = "127.0.0.1:9405"
)

// The goals and the reference figures measured here earlier.
const (
	goalCPURatio   = 0.5
	goalRSSRatio   = 1.0
	goalIdleCPU    = 0.5 // ms/s, one instance at 1s
	refKeepalived1 = "ref. keepalived 10 ms/s"
	refKeepalived2 = "ref. keepalived 119 ms/s (200 inst.)"
	refKeepalived3 = "ref. keepalived 13 MB"
)

// The priorities of n1, n2 and n3, and the VRID of single-instance scenarios.
var relPriorities = []int{150, 100, 50}

const relVRID = 51

// singleKey names a result of a single-instance scenario.
type singleKey struct {
	daemon   string
	interval time.Duration
}

// relSingles are the single-instance scenarios: one virtual router at the
// fastest interval VRRPv3 has, and at the usual one.
var relSingles = []struct {
	interval time.Duration
	goal     string
}{
	{10 * time.Millisecond, fmt.Sprintf("goal ratio <= %.2f; %s", goalCPURatio, refKeepalived1)},
	{time.Second, fmt.Sprintf("goal <= %.1f ms/s", goalIdleCPU)},
}

// relInstance is the single instance of the 10ms and partition scenarios.
func relInstance(priority int, interval time.Duration) lab.Instance {
	return lab.Instance{VRID: relVRID, Priority: priority, AdvertInterval: interval, Preempt: true, VIPs: []netip.Prefix{lab.VIP}}
}

// scaleAddr is the VIP of instance vrid in the scale and loss scenarios:
// 198.18.0.VRID/32 (RFC 2544 benchmarking range).
func scaleAddr(vrid int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(vrid)}), 32)
}

// scaleRange holds the VIPs of the scale and loss scenarios, and nothing
// else of the lab's (its segment 3 is in 198.19.0.0/24).
var scaleRange = netip.MustParsePrefix("198.18.0.0/16")

// scaleInstances returns instances with VRIDs 1..n, one VIP each.
func scaleInstances(n, priority int, interval time.Duration) []lab.Instance {
	out := make([]lab.Instance, n)
	for i := range out {
		vrid := i + 1
		out[i] = lab.Instance{
			Name:           "v" + strconv.Itoa(vrid),
			VRID:           vrid,
			Priority:       priority,
			AdvertInterval: interval,
			Preempt:        true,
			VIPs:           []netip.Prefix{scaleAddr(vrid)},
		}
	}
	return out
}

func withPriority(ins []lab.Instance, priority int) []lab.Instance {
	out := slices.Clone(ins)
	for i := range out {
		out[i].Priority = priority
	}
	return out
}

// relDaemon runs one implementation with several instances per node.
type relDaemon struct {
	name  string
	start func(n *lab.Node, ins []lab.Instance) error
	// masters counts n's transitions to master logged after offset bytes
	// of its log, and returns the log's length.
	masters func(n *lab.Node, since time.Time, offset int64) (int, int64, error)
	// counts reads n's VRRP counters so far, summed over its instances.
	counts func(ctx context.Context, n *lab.Node) (vrrpCounts, error)
}

// vrrpCounts are a node's counters since its daemon started, summed over
// its instances, and when they were read: at ± spread, as the daemon takes
// its snapshot at some moment while it is asked.
type vrrpCounts struct {
	at                          time.Time
	spread                      time.Duration
	sent, received, transitions int
}

// readBetween sets c's time to the middle of [start, end].
func (c *vrrpCounts) readBetween(start, end time.Time) {
	d := end.Sub(start)
	c.at, c.spread = start.Add(d/2), d/2
}

func relVipd(l *lab.Lab, bin string) relDaemon {
	return relDaemon{
		name: "vipd",
		start: func(n *lab.Node, ins []lab.Instance) error {
			cfg := fmt.Sprintf("metrics: {listen: %q}\n", relMetrics) +
				lab.VipdConfig(filepath.Join(l.Dir, n.Name+".sock"), ins...)
			return n.StartVipd(bin, cfg)
		},
		masters: func(n *lab.Node, since time.Time, _ int64) (int, int64, error) {
			cs, err := n.StateChanges()
			if err != nil {
				return 0, 0, err
			}
			count := 0
			for _, c := range cs {
				if c.To == "master" && !c.Time.Before(since) {
					count++
				}
			}
			st, err := os.Stat(n.LogPath())
			if err != nil {
				return 0, 0, err
			}
			return count, st.Size(), nil
		},
		counts: func(ctx context.Context, n *lab.Node) (vrrpCounts, error) {
			var c vrrpCounts
			// promhttp gathers every counter before it writes a
			// byte: the snapshot is taken before the first byte
			// of the answer, however long the rest takes.
			var first atomic.Int64
			trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first.Store(time.Now().UnixNano()) }}
			start := time.Now()
			text, err := n.Metrics(httptrace.WithClientTrace(ctx, trace), relMetrics)
			if err != nil {
				return c, err
			}
			c.readBetween(start, time.Unix(0, first.Load()))
			// A counter vector has no sample until it first counts: a
			// missing one is 0.
			sent, _ := lab.MetricSum(text, "vipd_adverts_sent_total")
			received, _ := lab.MetricSum(text, "vipd_adverts_received_total")
			transitions, _ := lab.MetricSum(text, "vipd_transitions_total")
			c.sent, c.received, c.transitions = int(sent), int(received), int(transitions)
			return c, nil
		},
	}
}

func relKeepalived() relDaemon {
	return relDaemon{
		name: "keepalived",
		start: func(n *lab.Node, ins []lab.Instance) error {
			return n.StartKeepalived(lab.KeepalivedConfig(n.Name, ins...))
		},
		masters: func(n *lab.Node, _ time.Time, offset int64) (int, int64, error) {
			b, err := os.ReadFile(n.LogPath())
			if err != nil {
				return 0, 0, err
			}
			if offset > int64(len(b)) {
				offset = 0
			}
			return bytes.Count(b[offset:], []byte("Entering MASTER STATE")), int64(len(b)), nil
		},
		counts: func(ctx context.Context, n *lab.Node) (vrrpCounts, error) {
			var c vrrpCounts
			stats, asked, err := n.KeepalivedStats(ctx)
			if err != nil {
				return c, err
			}
			c.readBetween(asked, time.Now())
			for _, s := range stats {
				c.sent += s.AdvertsSent
				c.received += s.AdvertsReceived
			}
			log, err := n.Log()
			if err != nil {
				return c, err
			}
			c.transitions = keepalivedTransitions(log)
			return c, nil
		},
	}
}

// keepalivedTransitions counts the state changes keepalived logged since the
// lab last started it ("(s0v1) Entering MASTER STATE", also BACKUP and
// FAULT).
func keepalivedTransitions(log string) int {
	if i := strings.LastIndex(log, " starting keepalived "); i >= 0 { // the lab's line
		log = log[i:]
	}
	count := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ") Entering ") && strings.Contains(line, " STATE") {
			count++
		}
	}
	return count
}

// readUsages reads every process of procs.
func readUsages(procs []lab.Process) ([]lab.Usage, error) {
	out := make([]lab.Usage, len(procs))
	for i, p := range procs {
		var err error
		if out[i], err = lab.ReadUsage(p.PID); err != nil {
			return nil, fmt.Errorf("%s (pid %d): %w", p.Role, p.PID, err)
		}
	}
	return out, nil
}

// cpuPerSecond is the CPU time the processes used per second of wall time
// between two readings, summed over the processes.
func cpuPerSecond(a, b []lab.Usage) time.Duration {
	var cpu time.Duration
	var wall time.Duration
	for i := range a {
		cpu += lab.CPUTime(a[i], b[i])
		wall = max(wall, b[i].At.Sub(a[i].At))
	}
	if wall <= 0 {
		return 0
	}
	return time.Duration(float64(cpu) / wall.Seconds())
}

// A memory figure of a reading: VmRSS or RssAnon.
type memOf func(lab.Usage) uint64

var (
	vmRSS   memOf = func(u lab.Usage) uint64 { return u.RSS }
	rssAnon memOf = func(u lab.Usage) uint64 { return u.Anon }
)

// memSum is f summed over the processes, in KiB.
func memSum(us []lab.Usage, f memOf) int {
	total := uint64(0)
	for _, u := range us {
		total += f(u)
	}
	return int(total / 1024)
}

func rssSum(us []lab.Usage) int { return memSum(us, vmRSS) }

// goroutines reads go_goroutines from vipd's metrics on n, retrying for 5s
// while the listener comes up.
func goroutines(ctx context.Context, n *lab.Node) (int, error) {
	var last error
	for range 20 {
		text, err := n.Metrics(ctx, relMetrics)
		if err == nil {
			if v, ok := lab.MetricValue(text, "go_goroutines"); ok {
				return int(v), nil
			}
			return 0, fmt.Errorf("%s: no go_goroutines in the metrics", n.Name)
		}
		last = err
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, last
}

// vipCount counts n's addresses in scaleRange, on all its interfaces.
func vipCount(n *lab.Node) (int, error) {
	count := 0
	for _, iface := range n.Ifaces() {
		addrs, err := n.Addrs(iface)
		if err != nil {
			return 0, err
		}
		for _, p := range addrs {
			if scaleRange.Contains(p.Addr()) {
				count++
			}
		}
	}
	return count, nil
}

// waitVIPs waits until every node has its wanted number of scale VIPs.
func waitVIPs(ctx context.Context, want map[*lab.Node]int, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		ok := true
		var state []string
		for n, w := range want {
			c, err := vipCount(n)
			if err != nil {
				return err
			}
			state = append(state, fmt.Sprintf("%s %d/%d", n.Name, c, w))
			ok = ok && c == w
		}
		if ok {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			slices.Sort(state)
			return fmt.Errorf("waiting for the VIPs (%s): %w", strings.Join(state, ", "), err)
		}
	}
}

// resetLab stops every daemon and removes what they may have left: VIPs, nft
// tables, cut links.
func resetLab(l *lab.Lab) {
	for _, n := range l.Nodes {
		_, _ = n.Stop()
		_ = n.RestoreLink()
		for _, iface := range n.Ifaces() {
			_, _ = n.IP("addr", "flush", "dev", iface, "to", scaleRange.String())
		}
		_, _ = n.IP("addr", "del", lab.VIP.String(), "dev", "eth0")
	}
	_ = l.UnblockVRRP()
	for _, table := range []string{"vipdloss", "vipdheal"} {
		_, _ = exec.Command("ip", "netns", "exec", l.Switch, "nft", "delete", "table", "bridge", table).CombinedOutput()
	}
}

// healWinnerFirstRules makes n1's advert the first to cross the heal: after
// l.UnblockVRRP the switch still drops every advert until one from n1 has
// passed, and from then on none (its chain runs after BlockVRRP's, so
// nothing before the heal counts). It is a heal at the moment n1 sends,
// without racing the adverts' phases.
func healWinnerFirstRules(l *lab.Lab, n1 *lab.Node) error {
	rules := fmt.Sprintf(`table bridge vipdheal {
	set healed {
		type ipv4_addr
		flags dynamic
	}
	chain forward {
		type filter hook forward priority 1; policy accept;
		ether type ip ip protocol 112 ip saddr %s add @healed { ip daddr }
		ether type ip ip protocol 112 ip daddr != @healed drop
	}
}
`, n1.Addr.Addr())
	cmd := exec.Command("ip", "netns", "exec", l.Switch, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft table vipdheal: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// nftBridge makes the switch drop the VRRP packets that also match match (an
// nftables expression), in a bridge table of its own called table.
func nftBridge(l *lab.Lab, table, match string) error {
	rules := fmt.Sprintf(`table bridge %s {
	chain forward {
		type filter hook forward priority -1; policy accept;
		ether type ip ip protocol 112 %s drop
	}
}
`, table, match)
	cmd := exec.Command("ip", "netns", "exec", l.Switch, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft table %s: %w: %s", table, err, bytes.TrimSpace(out))
	}
	return nil
}

// cpuMemLegend says how CPU and memory are measured.
const cpuMemLegend = "CPU: every thread's time on a CPU (/proc/PID/task/*/schedstat; utime+stime if a thread exited) per second of wall time;\n" +
	"RSS: VmRSS, RssAnon: its private part (/proc/PID/status). keepalived: parent + VRRP child summed."

// relRow is one line of the table.
type relRow struct {
	scenario, vipd, keepalived, ratio, note string
}

// benchReliability measures cost, a soak, packet loss and partition heals for
// vipd and keepalived and prints one table. It takes about five minutes with
// the default soak.
func benchReliability(ctx context.Context, w io.Writer, vipdPath string) error {
	bin, err := vipdBinary(vipdPath)
	if err != nil {
		return err
	}
	if err := needKeepalived(); err != nil {
		return err
	}
	soak := reliabilitySoak
	if s := os.Getenv("VIPD_LAB_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < relWindow+10*time.Second || d > 24*time.Hour {
			return fmt.Errorf("VIPD_LAB_SOAK=%q: want a duration from %v to 24h", s, relWindow+10*time.Second)
		}
		soak = d
	}
	l, err := lab.New(lab.Config{Nodes: 3})
	if err != nil {
		return err
	}
	defer l.Close()
	defer resetLab(l)
	daemons := []relDaemon{relVipd(l, bin), relKeepalived()}

	fmt.Fprintf(w, "vipd-lab bench (reliability), lab %s: vipd beside Debian's keepalived, one at a time, same lab.\n", l.Prefix)
	fmt.Fprintln(w, cpuMemLegend)
	fmt.Fprintln(w)

	type scaleRes struct {
		master, backup     []lab.Usage // at the window's start
		masterE, backupE   []lab.Usage // at its end
		soakMid, soakEnd   []lab.Usage
		gStart, gEnd       int
		cycles             int
		masterRoles        []lab.Process
		backupRoles        []lab.Process
		scaleErr, soakNote string
	}
	scale := map[string]*scaleRes{}
	single := map[singleKey][2][]lab.Usage{}
	singleRoles := map[singleKey][]lab.Process{}
	loss := map[string]map[int]int{}
	heal := map[string]map[string][]healRun{}

	for _, d := range daemons {
		// 255 instances at 100ms: n1 master of all, n2 backup of all; the
		// soak continues on the same daemons with failovers of all 255.
		res := &scaleRes{gStart: -1, gEnd: -1}
		scale[d.name] = res
		fmt.Fprintf(w, "%-10s 255 instances at 100ms: starting; CPU over %v, then a soak to %v with a failover of all 255 every 5s\n", d.name, relWindow, soak)
		if err := func() error {
			defer resetLab(l)
			n1, n2 := l.Nodes[0], l.Nodes[1]
			ins := scaleInstances(255, 150, 100*time.Millisecond)
			if err := d.start(n2, withPriority(ins, 100)); err != nil {
				return err
			}
			if err := d.start(n1, ins); err != nil {
				return err
			}
			if err := waitVIPs(ctx, map[*lab.Node]int{n1: 255, n2: 0}, 60*time.Second); err != nil {
				return err
			}
			if err := sleep(ctx, 3*time.Second); err != nil { // announcements end
				return err
			}
			mp, err := n1.Processes()
			if err != nil {
				return err
			}
			bp, err := n2.Processes()
			if err != nil {
				return err
			}
			res.masterRoles, res.backupRoles = mp, bp
			if d.name == "vipd" {
				if res.gStart, err = goroutines(ctx, n1); err != nil {
					return err
				}
			}
			start := time.Now()
			if res.master, err = readUsages(mp); err != nil {
				return err
			}
			if res.backup, err = readUsages(bp); err != nil {
				return err
			}
			if err := sleep(ctx, relWindow); err != nil {
				return err
			}
			if res.masterE, err = readUsages(mp); err != nil {
				return err
			}
			if res.backupE, err = readUsages(bp); err != nil {
				return err
			}
			// The soak: a failover of every instance and back, every 5s.
			for res.cycles = 0; time.Since(start) < soak-5*time.Second && res.cycles < 10000; res.cycles++ {
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
					if res.soakMid, err = readUsages(mp); err != nil {
						return err
					}
				}
			}
			if err := sleep(ctx, 2*time.Second); err != nil {
				return err
			}
			if res.soakEnd, err = readUsages(mp); err != nil {
				return err
			}
			if d.name == "vipd" {
				if res.gEnd, err = goroutines(ctx, n1); err != nil {
					return err
				}
			}
			res.soakNote = fmt.Sprintf("%v, %d failovers of 255", time.Since(start).Round(time.Second), res.cycles)
			return nil
		}(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.scaleErr = err.Error()
			fmt.Fprintf(w, "%-10s 255 instances: gave up: %v\n", d.name, err)
		}

		// One instance, at each interval of relSingles.
		for _, sc := range relSingles {
			fmt.Fprintf(w, "%-10s 1 instance at %v: CPU over %v, from %v after the takeover\n", d.name, sc.interval, relSingleWindow, singleSettle(sc.interval))
			k := singleKey{d.name, sc.interval}
			if err := func() error {
				defer resetLab(l)
				n1, n2 := l.Nodes[0], l.Nodes[1]
				if err := d.start(n2, []lab.Instance{relInstance(100, sc.interval)}); err != nil {
					return err
				}
				if err := d.start(n1, []lab.Instance{relInstance(150, sc.interval)}); err != nil {
					return err
				}
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if _, err := l.WaitHolders(wctx, lab.VIP, lab.Only(n1)); err != nil {
					return err
				}
				// The steady state: the announcements are over, and so is
				// what a daemon does once after start-up (vipd returns the
				// memory start-up left behind once the elections have been
				// quiet for a while, which at a 1 s interval is ~12 s in).
				if err := sleep(ctx, singleSettle(sc.interval)); err != nil {
					return err
				}
				mp, err := n1.Processes()
				if err != nil {
					return err
				}
				a, err := readUsages(mp)
				if err != nil {
					return err
				}
				if err := sleep(ctx, relSingleWindow); err != nil {
					return err
				}
				b, err := readUsages(mp)
				if err != nil {
					return err
				}
				single[k] = [2][]lab.Usage{a, b}
				singleRoles[k] = mp
				return nil
			}(); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(w, "%-10s 1 instance at %v: gave up: %v\n", d.name, sc.interval, err)
			}
		}

		// Packet loss.
		loss[d.name] = map[int]int{}
		for _, pct := range []int{20, 50} {
			n, err := lossRun(ctx, l, d, pct)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(w, "%-10s %d%% loss: gave up: %v\n", d.name, pct, err)
				loss[d.name][pct] = -1
				continue
			}
			loss[d.name][pct] = n
			fmt.Fprintf(w, "%-10s %d%% loss for %v, %d instances: %d spurious takeovers (RFC estimate %.0f)\n",
				d.name, pct, relLossRun, relLossInstances, n, lossEstimate(pct))
		}

		// Partition heals.
		heal[d.name] = map[string][]healRun{}
		for _, mode := range healModes {
			runs, err := healRuns(ctx, w, l, d, mode)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(w, "%-10s partition heal (%s): gave up: %v\n", d.name, mode, err)
			}
			heal[d.name][mode] = runs
		}
	}

	// The table.
	var rows []relRow
	vs, ks := scale["vipd"], scale["keepalived"]
	vok, kok := vs.masterE != nil, ks.masterE != nil
	var vm, km, vb, kb time.Duration
	if vok {
		vm, vb = cpuPerSecond(vs.master, vs.masterE), cpuPerSecond(vs.backup, vs.backupE)
	}
	if kok {
		km, kb = cpuPerSecond(ks.master, ks.masterE), cpuPerSecond(ks.backup, ks.backupE)
	}
	rows = append(rows,
		cpuRow("255 inst. @100ms: master CPU", vm, km, vok, kok, fmt.Sprintf("goal ratio <= %.2f; %s", goalCPURatio, refKeepalived2)),
		cpuRow("255 inst. @100ms: backup CPU", vb, kb, vok, kok, "2550 adverts/s received"),
		memRow("255 inst. @100ms: master RSS", memSum(vs.masterE, vmRSS), memSum(ks.masterE, vmRSS),
			fmt.Sprintf("goal ratio <= %.2f; %s", goalRSSRatio, refKeepalived3)+keepalivedSplit(ks.masterE, ks.masterRoles, vmRSS)),
		memRow("255 inst. @100ms: master RssAnon", memSum(vs.masterE, rssAnon), memSum(ks.masterE, rssAnon),
			"private memory"+keepalivedSplit(ks.masterE, ks.masterRoles, rssAnon)),
		memRow("255 inst. @100ms: backup RSS", memSum(vs.backupE, vmRSS), memSum(ks.backupE, vmRSS),
			fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)+keepalivedSplit(ks.backupE, ks.backupRoles, vmRSS)),
		memRow("255 inst. @100ms: backup RssAnon", memSum(vs.backupE, rssAnon), memSum(ks.backupE, rssAnon),
			"private memory"+keepalivedSplit(ks.backupE, ks.backupRoles, rssAnon)),
	)
	for _, sc := range relSingles {
		v, k := single[singleKey{"vipd", sc.interval}], single[singleKey{"keepalived", sc.interval}]
		var vc, kc time.Duration
		if v[1] != nil {
			vc = cpuPerSecond(v[0], v[1])
		}
		if k[1] != nil {
			kc = cpuPerSecond(k[0], k[1])
		}
		name := fmt.Sprintf("1 inst. @%v: master ", sc.interval)
		rows = append(rows, cpuRow(name+"CPU", vc, kc, v[1] != nil, k[1] != nil, sc.goal))
		if sc.interval == 10*time.Millisecond {
			rows = append(rows, memRow(name+"RSS", memSum(v[1], vmRSS), memSum(k[1], vmRSS),
				fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)+keepalivedSplit(k[1], singleRoles[singleKey{"keepalived", sc.interval}], vmRSS)))
		}
	}
	soakCell := func(s *scaleRes) string {
		if s.soakEnd == nil {
			return "-"
		}
		mid := "-"
		if s.soakMid != nil {
			mid = mib(rssSum(s.soakMid))
		}
		return fmt.Sprintf("%s → %s → %s", mib(rssSum(s.masterE)), mid, mib(rssSum(s.soakEnd)))
	}
	note := "after the CPU window → after 1st failover → end"
	if vs.soakNote != "" {
		note += "; vipd " + vs.soakNote
	}
	if ks.soakNote != "" {
		note += "; keepalived " + ks.soakNote
	}
	soakRatio := "-"
	if vs.soakMid != nil && vs.soakEnd != nil && ks.soakMid != nil && ks.soakEnd != nil {
		soakRatio = fmt.Sprintf("growth %+d / %+d KiB", rssSum(vs.soakEnd)-rssSum(vs.soakMid), rssSum(ks.soakEnd)-rssSum(ks.soakMid))
	}
	rows = append(rows, relRow{"soak: master RSS", soakCell(vs), soakCell(ks), soakRatio, note})
	g := "-"
	if vs.gStart >= 0 && vs.gEnd >= 0 {
		g = fmt.Sprintf("%d → %d", vs.gStart, vs.gEnd)
	}
	rows = append(rows, relRow{"soak: master goroutines", g, "n/a", "-", "go_goroutines from /metrics, start → end (same state)"})
	for _, pct := range []int{20, 50} {
		v, k := loss["vipd"][pct], loss["keepalived"][pct]
		r := relRow{scenario: fmt.Sprintf("%d%% advert loss: spurious takeovers", pct), vipd: countCell(v), keepalived: countCell(k), ratio: "-",
			note: fmt.Sprintf("RFC ≈ %.0f = %d inst. × 2 backups × %v/100ms × (1−p)·p³ (p³ alone: %.0f)", lossEstimate(pct), relLossInstances, relLossRun, lossEstimateP3(pct))}
		if v > 0 && k > 0 {
			r.ratio = fmt.Sprintf("%.2f", float64(v)/float64(k))
		}
		rows = append(rows, r)
	}
	for _, mode := range healModes {
		hv, hk := heal["vipd"][mode], heal["keepalived"][mode]
		r := relRow{scenario: fmt.Sprintf("partition heal, %s: client outage", mode), vipd: healCell(hv), keepalived: healCell(hk), ratio: "-",
			note: fmt.Sprintf("median (max) of %d; 3 Masters at 100ms, client on the last announcer", relHealRuns)}
		if len(hv) > 0 && len(hk) > 0 && medianHeal(hk) > 0 {
			r.ratio = fmt.Sprintf("%.2f", float64(medianHeal(hv))/float64(medianHeal(hk)))
		}
		rows = append(rows, r)
		rows = append(rows, relRow{fmt.Sprintf("partition heal, %s: client back on n1", mode), healNeighCell(hv), healNeighCell(hk), "-",
			"until the client's ARP entry for the VIP is n1's MAC (ARP alone: ~5-8s)"})
	}

	fmt.Fprintln(w)
	return printRows(w, rows)
}

// printRows prints the table of a benchmark beside keepalived.
func printRows(w io.Writer, rows []relRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tvipd\tkeepalived\tvipd/keepalived\tRFC / goal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.scenario, r.vipd, r.keepalived, r.ratio, r.note)
	}
	return tw.Flush()
}

// cpuRow is a row of CPU per second; vok and kok say whether there is a
// figure for vipd and keepalived.
func cpuRow(scenario string, v, k time.Duration, vok, kok bool, note string) relRow {
	r := relRow{scenario: scenario, vipd: "-", keepalived: "-", ratio: "-", note: note}
	if vok {
		r.vipd = msPerSecond(v)
	}
	if kok {
		r.keepalived = msPerSecond(k)
	}
	if vok && kok && k > 0 {
		r.ratio = fmt.Sprintf("%.2f", float64(v)/float64(k))
	}
	return r
}

// msPerSecond formats CPU time per second: two decimals below 1 ms/s.
func msPerSecond(d time.Duration) string {
	f := float64(d) / 1e6
	if f < 1 {
		return fmt.Sprintf("%.2f ms/s", f)
	}
	return fmt.Sprintf("%.1f ms/s", f)
}

// memRow is a row of memory in KiB; 0 is no figure.
func memRow(scenario string, v, k int, note string) relRow {
	r := relRow{scenario: scenario, vipd: "-", keepalived: "-", ratio: "-", note: note}
	if v > 0 {
		r.vipd = mib(v)
	}
	if k > 0 {
		r.keepalived = mib(k)
	}
	if v > 0 && k > 0 {
		r.ratio = fmt.Sprintf("%.2f", float64(v)/float64(k))
	}
	return r
}

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func countCell(n int) string {
	if n < 0 {
		return "failed"
	}
	return strconv.Itoa(n)
}

// keepalivedSplit says what the keepalived figure is made of.
func keepalivedSplit(us []lab.Usage, roles []lab.Process, f memOf) string {
	if us == nil || len(roles) != len(us) {
		return ""
	}
	var parts []string
	for i, r := range roles {
		parts = append(parts, fmt.Sprintf("%s %s", r.Role, mib(int(f(us[i])/1024))))
	}
	return "; keepalived = " + strings.Join(parts, " + ")
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
	return float64(relLossInstances) * 2 * float64(relLossRun/(100*time.Millisecond)) * math.Pow(p, 3)
}

// lossRun runs relLossInstances instances at 100ms on three nodes (150, 100,
// 50), drops pct% of VRRP on every port of the switch for relLossRun, and
// returns how often n2 and n3 became master meanwhile.
func lossRun(ctx context.Context, l *lab.Lab, d relDaemon, pct int) (int, error) {
	defer resetLab(l)
	ins := scaleInstances(relLossInstances, 150, 100*time.Millisecond)
	for i := len(l.Nodes) - 1; i >= 0; i-- {
		if err := d.start(l.Nodes[i], withPriority(ins, relPriorities[i])); err != nil {
			return 0, err
		}
	}
	want := map[*lab.Node]int{l.Nodes[0]: relLossInstances, l.Nodes[1]: 0, l.Nodes[2]: 0}
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
	if err := nftBridge(l, "vipdloss", fmt.Sprintf("numgen random mod 100 < %d", pct)); err != nil {
		return 0, err
	}
	if err := sleep(ctx, relLossRun); err != nil {
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

type healRun struct {
	outage, neigh, sole time.Duration
}

func medianHeal(rs []healRun) time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = r.outage
	}
	return relMedian(ds)
}

func relMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func healCell(rs []healRun) string {
	if len(rs) == 0 {
		return "-"
	}
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = r.outage
	}
	return fmt.Sprintf("%s (%s)", ms(relMedian(ds)), ms(slices.Max(ds)))
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

// healRuns splits VRRP between three nodes relHealRuns times and heals it
// the given way, measuring the client's outage across each heal, how long
// until n1 is the only holder and until the client's neighbour entry is n1's.
func healRuns(ctx context.Context, w io.Writer, l *lab.Lab, d relDaemon, mode string) ([]healRun, error) {
	defer resetLab(l)
	n1 := l.Nodes[0]
	for i := len(l.Nodes) - 1; i >= 0; i-- {
		if err := d.start(l.Nodes[i], []lab.Instance{relInstance(relPriorities[i], 100*time.Millisecond)}); err != nil {
			return nil, err
		}
	}
	p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	var out []healRun
	for run := 1; run <= relHealRuns; run++ {
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
		for err == nil {
			mac, nerr := l.Client.NeighMAC(lab.VIP.Addr())
			if nerr == nil && mac.String() == n1.MAC().String() {
				break
			}
			err = sleep(wctx, 5*time.Millisecond)
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
		_, _ = exec.Command("ip", "netns", "exec", l.Switch, "nft", "delete", "table", "bridge", "vipdheal").CombinedOutput()
		r.outage = p.Stats().Outage
		out = append(out, r)
		fmt.Fprintf(w, "%-10s partition heal (%s) %d/%d: client followed %s; n1 alone after %s, client's ARP entry on n1 after %s, outage %s\n",
			d.name, mode, run, relHealRuns, follows, ms(r.sole), ms(r.neigh), ms(r.outage))
	}
	return out, nil
}

// singleSettle is how long a single-instance scenario waits after the
// takeover before its CPU window, for both daemons alike.
func singleSettle(interval time.Duration) time.Duration { return max(2*time.Second, 12*interval) }
