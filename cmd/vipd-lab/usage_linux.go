package main

// What a daemon costs and counts over a measurement window, and the rows
// that report it: shared by the reliability, scale and auth scenarios.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// cpuMemLegend says how CPU and memory are measured.
const cpuMemLegend = "CPU: every thread's time on a CPU (/proc/PID/task/*/schedstat; utime+stime if a thread exited) per second of wall time;\n" +
	"RSS: VmRSS, RssAnon: its private part (/proc/PID/status). keepalived: parent + VRRP child summed."

// The goals and the reference figures measured here earlier.
const (
	goalCPURatio   = 0.5
	goalRSSRatio   = 1.0
	goalIdleCPU    = 0.5 // ms/s, one instance at 1s
	refKeepalived1 = "ref. keepalived 10 ms/s"
	refKeepalived2 = "ref. keepalived 119 ms/s (200 inst.)"
	refKeepalived3 = "ref. keepalived 13 MB"
)

// vrrpProtocol is VRRP's IP protocol number (RFC 9568 §5.1.1.4).
const vrrpProtocol = 112

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

// cpuRow is a row of CPU per second; vok and kok say whether there is a
// figure for vipd and the other.
func cpuRow(scenario string, v, k time.Duration, vok, kok bool, note string) row {
	r := row{scenario: scenario, vipd: "-", other: "-", note: note}
	if vok {
		r.vipd = msPerSecond(v)
	}
	if kok {
		r.other = msPerSecond(k)
	}
	r.ratio = ratio(float64(v), float64(k), vok && kok)
	return r
}

// memRow is a row of memory in KiB; 0 is no figure.
func memRow(scenario string, v, k int, note string) row {
	r := row{scenario: scenario, vipd: "-", other: "-", note: note}
	if v > 0 {
		r.vipd = mib(v)
	}
	if k > 0 {
		r.other = mib(k)
	}
	r.ratio = ratio(float64(v), float64(k), v > 0 && k > 0)
	return r
}

func countCell(n int) string {
	if n < 0 {
		return "failed"
	}
	return strconv.Itoa(n)
}

// A window is what a Master (n1) and a Backup (n2) cost and counted over a
// measurement.
type window struct {
	master, backup   [2][]lab.Usage // at the window's start and end
	mRoles, bRoles   []lab.Process
	mCounts, bCounts [2]vrrpCounts
	// bSockets and bDrops are the Backup's VRRP sockets and the packets
	// the kernel dropped on them (lab.RawSockets) at the window's start
	// and end.
	bSockets int
	bDrops   [2]int
}

// roles finds the processes of the Master's and the Backup's daemons.
func (r *window) roles(n1, n2 *lab.Node) error {
	var err error
	if r.mRoles, err = n1.Processes(); err != nil {
		return err
	}
	r.bRoles, err = n2.Processes()
	return err
}

// count reads the counters of the Master, then of the Backup, into
// reading i (0: before, 1: after): one at a time, so that each answers as
// soon as it can. Rates are over each node's own readings.
func (r *window) count(ctx context.Context, d *daemon, n1, n2 *lab.Node, i int) error {
	var err error
	if r.mCounts[i], err = d.counts(ctx, n1); err != nil {
		return err
	}
	r.bCounts[i], err = d.counts(ctx, n2)
	return err
}

// read reads both nodes' usage and the Backup's socket drops into reading
// i: the window opens at reading 0 and closes at reading 1.
func (r *window) read(i int) error {
	var err error
	if r.master[i], err = readUsages(r.mRoles); err != nil {
		return err
	}
	if r.backup[i], err = readUsages(r.bRoles); err != nil {
		return err
	}
	var sockets int
	if sockets, r.bDrops[i], err = lab.RawSockets(r.bRoles[0].PID, vrrpProtocol); err != nil {
		return err
	}
	if i == 0 {
		r.bSockets = sockets
	}
	return nil
}

func (r *window) masterCPU() time.Duration { return cpuPerSecond(r.master[0], r.master[1]) }
func (r *window) backupCPU() time.Duration { return cpuPerSecond(r.backup[0], r.backup[1]) }

// drops is how many adverts the Backup's sockets dropped over the window.
func (r *window) drops() int { return r.bDrops[1] - r.bDrops[0] }

// sentRate is the Master's adverts per second over the window.
func (r *window) sentRate() float64 {
	return rate(r.mCounts, func(c vrrpCounts) int { return c.sent })
}

// receivedRate is the Backup's adverts received per second over the window.
func (r *window) receivedRate() float64 {
	return rate(r.bCounts, func(c vrrpCounts) int { return c.received })
}

// transitions is how many state changes both nodes made over the window.
func (r *window) transitions() int {
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
func (r *window) received(instances int) (share, within float64) {
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

// costRows are the CPU and memory rows of a Master and a Backup over a
// window, vipd's (v) beside keepalived's (k), either nil when it gave up;
// the notes are those of the master CPU, backup CPU and master RSS rows.
func costRows(prefix string, v, k *window, masterCPU, backupCPU, masterRSS string) []row {
	end := func(r *window, master bool) ([]lab.Usage, []lab.Process) {
		switch {
		case r == nil:
			return nil, nil
		case master:
			return r.master[1], r.mRoles
		}
		return r.backup[1], r.bRoles
	}
	mem := func(what string, master bool, m memOf, note string) row {
		vu, _ := end(v, master)
		ku, kr := end(k, master)
		return memRow(prefix+what, memSum(vu, m), memSum(ku, m), note+keepalivedSplit(ku, kr, m))
	}
	var vm, vb, km, kb time.Duration
	if v != nil {
		vm, vb = v.masterCPU(), v.backupCPU()
	}
	if k != nil {
		km, kb = k.masterCPU(), k.backupCPU()
	}
	return []row{
		cpuRow(prefix+"master CPU", vm, km, v != nil, k != nil, masterCPU),
		cpuRow(prefix+"backup CPU", vb, kb, v != nil, k != nil, backupCPU),
		mem("master RSS", true, vmRSS, masterRSS),
		mem("master RssAnon", true, rssAnon, "private memory"),
		mem("backup RSS", false, vmRSS, fmt.Sprintf("goal ratio <= %.2f", goalRSSRatio)),
		mem("backup RssAnon", false, rssAnon, "private memory"),
	}
}
