package main

// The auth benchmark: what auth_hmac costs vipd at scale, and what a flood
// of forged adverts costs an authenticated Backup. vipd alone: keepalived
// 2.2.7, the one the lab runs, has no auth_hmac, so the anchor is vipd
// without auth in the same run and the same lab.

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
)

const (
	authInstances = 255
	authInterval  = 100 * time.Millisecond
	// authKeyID is the id of the one key both nodes share, and the id the
	// forged adverts claim.
	authKeyID = 1
	// authFloodRate is how many adverts per second n3 floods with, in
	// batches every authFloodTick.
	authFloodRate = 3000
	authFloodTick = 10 * time.Millisecond
	// authFloodPriority is the forged adverts' priority: above the
	// Master's, so that one that got through would take every VIP.
	authFloodPriority = 254
	// authFloodLead is how long a flood runs before the CPU window opens,
	// and authFloodTail how long the counters wait after it stops, so that
	// the drop counters see the whole flood.
	authFloodLead = time.Second
	authFloodTail = 300 * time.Millisecond
	// authTimeout bounds the whole part.
	authTimeout = 6 * time.Minute
	// authLogLevel is vipd's --log-level here: its default.
	authLogLevel = "info"
	// authGoalRatio is the goal for auth/none CPU.
	authGoalRatio = 1.3
)

// An authFlood is what n3 floods the segment with.
type authFlood struct {
	what string
	// reason is the drop reason each of its adverts should be counted
	// under.
	reason drop.Reason
	// build appends the i-th advert of the flood, sent at now, to b.
	build func(b []byte, i int, now time.Time) ([]byte, error)
}

// An authPhase is one measurement: the daemons with or without auth_hmac,
// under a flood or not. Phases run in order; consecutive phases with the
// same auth share the daemons.
type authPhase struct {
	name  string
	auth  bool
	flood func(*authFloods) *authFlood // nil: no flood
}

// authFloods are the floods of a run, built with its addresses and keys.
type authFloods struct{ forged, malformed authFlood }

// authPhases measure none and auth twice, in mirrored order around the
// floods, so that the machine's drift over the run weighs on both alike;
// the table averages the phases of a name.
var authPhases = []authPhase{
	{name: "none", auth: false},
	{name: "auth", auth: true},
	{name: "forged", auth: true, flood: func(f *authFloods) *authFlood { return &f.forged }},
	{name: "malformed", auth: true, flood: func(f *authFloods) *authFlood { return &f.malformed }},
	{name: "auth", auth: true},
	{name: "none", auth: false},
}

func phaseNames() []string {
	s := make([]string, len(authPhases))
	for i, p := range authPhases {
		s[i] = p.name
	}
	return s
}

// phaseLabel names phase i in the progress lines: its name, and which of
// the phases of that name it is when there are several.
func phaseLabel(i int) string {
	name := authPhases[i].name
	nth, of := 0, 0
	for j, p := range authPhases {
		if p.name == name {
			of++
			if j <= i {
				nth++
			}
		}
	}
	if of == 1 {
		return name
	}
	return fmt.Sprintf("%s %d/%d", name, nth, of)
}

// reasonCounts are a node's vipd_packets_dropped_total by reason, summed
// over its interfaces.
type reasonCounts [drop.Count]int

func (rc reasonCounts) sub(o reasonCounts) reasonCounts {
	for i := range rc {
		rc[i] -= o[i]
	}
	return rc
}

// auth is how many auth_* drops rc counts.
func (rc reasonCounts) auth() int {
	total := 0
	for r, n := range rc {
		if drop.Reason(r).Auth() {
			total += n
		}
	}
	return total
}

func (rc reasonCounts) String() string {
	var s []string
	for r, n := range rc {
		if n != 0 {
			s = append(s, fmt.Sprintf("%s %d", drop.Reason(r), n))
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// readReasons scrapes n's drop counters.
func readReasons(ctx context.Context, n *lab.Node) (reasonCounts, error) {
	var rc reasonCounts
	text, err := n.Metrics(ctx, metricsListen)
	if err != nil {
		return rc, err
	}
	for r := drop.None + 1; r < drop.Count; r++ {
		v, _ := lab.MetricSum(text, "vipd_packets_dropped_total", "reason", r.String())
		rc[r] = int(v)
	}
	return rc, nil
}

// floodStats is what a flood sent.
type floodStats struct {
	reason     drop.Reason // the flood's: authFlood.reason
	sent, errs int
	first      error
	took       time.Duration
}

func (s floodStats) rate() float64 {
	if s.took <= 0 {
		return 0
	}
	return float64(s.sent) / s.took.Seconds()
}

// authResult is one phase's measurement.
type authResult struct {
	window
	// mReasons and bReasons are the Master's and the Backup's drop
	// counters before and after the phase (the whole flood, if any).
	mReasons, bReasons [2]reasonCounts
	flood              *floodStats
}

func (r *authResult) mDrops() reasonCounts   { return r.mReasons[1].sub(r.mReasons[0]) }
func (r *authResult) bDropped() reasonCounts { return r.bReasons[1].sub(r.bReasons[0]) }

// benchAuth measures auth_hmac's cost at 255 instances and an authenticated
// Backup under a flood, in one table. About two and a half minutes.
func benchAuth(parent context.Context, env *benchEnv) (*table, error) {
	ctx, cancel := context.WithTimeout(parent, authTimeout)
	defer cancel()
	l, err := lab.New(lab.Config{Nodes: 3})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	defer resetLab(l)
	n3 := l.Nodes[2]

	secret, wrong := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(secret)
	_, _ = rand.Read(wrong)
	keyFile := filepath.Join(l.Dir, "auth.key")
	if err := lab.WriteSecret(keyFile, secret, false); err != nil {
		return nil, err
	}
	auth := &lab.AuthHMAC{Keys: []lab.AuthKey{{ID: authKeyID, SecretFile: keyFile}}, Mode: "enforce"}
	wrongKey, err := vrrp.NewKey(authKeyID, wrong)
	if err != nil {
		return nil, err
	}
	adv, err := lab.NewAdvertiser(n3)
	if err != nil {
		return nil, err
	}
	defer adv.Close()
	floods := &authFloods{
		forged:    authFlood{"forged (bad HMAC)", drop.AuthBadHMAC, forgedAdvert(wrongKey, n3.Addr.Addr())},
		malformed: authFlood{"malformed (bad checksum)", drop.Checksum, malformedAdvert(n3.Addr.Addr())},
	}
	// At vipd's default log level: the lab's other parts run it at debug,
	// which logs every packet it drops but for auth refusals, and so
	// would charge the malformed flood a log line per advert.
	d := vipdIn(l, env.vipd)
	d.logLevel = authLogLevel
	w := env.w

	fmt.Fprintf(w, "vipd-lab bench (auth), lab %s: vipd alone (keepalived 2.2.7 has no auth_hmac); the anchor is vipd without auth, same run, same lab.\n", l.Prefix)
	fmt.Fprintf(w, "%d instances at %v, n1 Master of all (priority %d), n2 Backup of all (%d); auth: auth_hmac mode enforce, one key (id %d, 32 random bytes, one file for both).\n",
		authInstances, authInterval, scaleMaster, scaleBackup, authKeyID)
	fmt.Fprintf(w, "Floods: n3 (no daemon) sends %d adverts/s to 224.0.0.18 (%d every %v), VRIDs 1..%d in turn, priority %d, against the authenticated nodes:\n",
		authFloodRate, authFloodRate*int(authFloodTick)/int(time.Second), authFloodTick, authInstances, authFloodPriority)
	fmt.Fprintln(w, "forged: signed with key id 1, a wrong secret and the current time (each one costs an HMAC); malformed: unsigned, bad checksum.")
	fmt.Fprintf(w, "vipd runs at --log-level %s, its default (the other parts run it at debug, which logs each dropped packet but auth refusals).\n", authLogLevel)
	fmt.Fprintf(w, "CPU over %v, %v after the VIPs are up (under a flood: from %v after it starts): every thread's time on a CPU (/proc/PID/task/*/schedstat) per second.\n",
		relWindow, scaleSettle, authFloodLead)
	fmt.Fprintf(w, "Phases, in order: %s (the daemons restart when auth changes); the table averages the phases of a name.\n", strings.Join(phaseNames(), ", "))
	fmt.Fprintln(w, "Drops: vipd_packets_dropped_total by reason over the phase; transitions: vipd_transitions_total, both nodes.")
	fmt.Fprintln(w)

	results := make([]*authResult, len(authPhases))
	running, runningAuth := false, false
	for i, p := range authPhases {
		var f *authFlood
		if p.flood != nil {
			f = p.flood(floods)
		}
		what := "no flood"
		if f != nil {
			what = "flood " + f.what
		}
		label := phaseLabel(i)
		fmt.Fprintf(w, "%-11s auth %t, %s: CPU over %v\n", label, p.auth, what, relWindow)
		err := func() error {
			if !running || runningAuth != p.auth {
				running = false
				var a *lab.AuthHMAC
				if p.auth {
					a = auth
				}
				if err := authStart(ctx, l, d, a); err != nil {
					return err
				}
				running, runningAuth = true, p.auth
			}
			r, err := authMeasure(ctx, l, d, adv, f)
			if err != nil {
				running = false
				return err
			}
			results[i] = r
			return nil
		}()
		if err != nil {
			if parent.Err() != nil {
				return nil, parent.Err()
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: over %v: %w", label, authTimeout, err)
			}
			fmt.Fprintf(w, "%-11s gave up: %v\n", label, err)
			continue
		}
		r := results[i]
		share, within := r.received(authInstances)
		fmt.Fprintf(w, "%-11s master %s, backup %s; master sent %.0f adverts/s, backup received %.0f/s (%.2f%% ± %.2f), %d dropped on its sockets, %d transitions\n",
			label, msPerSecond(r.masterCPU()), msPerSecond(r.backupCPU()), r.sentRate(), r.receivedRate(), 100*share, 100*within, r.drops(), r.transitions())
		fmt.Fprintf(w, "%-11s drops: backup %s; master %s\n", label, r.bDropped(), r.mDrops())
		if s := r.flood; s != nil {
			fmt.Fprintf(w, "%-11s flood: %d sent in %v (%.0f/s), %d send errors%s\n", label, s.sent, s.took.Round(time.Millisecond), s.rate(), s.errs, firstErr(s.first))
		}
	}
	t := rowTable(vsAnchor, authRows(results))
	t.notes = []string{authSummary(results)}
	return t, nil
}

func firstErr(err error) string {
	if err == nil {
		return ""
	}
	return " (first: " + err.Error() + ")"
}

// authStart starts the 255 instances afresh, auth_hmac a on both nodes (nil
// for none), and waits until n1 holds every VIP and the announcements are
// over.
func authStart(ctx context.Context, l *lab.Lab, d *daemon, a *lab.AuthHMAC) error {
	resetLab(l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ins := scaleInstances(authInstances, scaleMaster, authInterval)
	for i := range ins {
		ins[i].AuthHMAC = a
	}
	if err := d.start(n2, withPriority(ins, scaleBackup)...); err != nil {
		return err
	}
	if err := d.start(n1, ins...); err != nil {
		return err
	}
	if err := waitVIPs(ctx, map[*lab.Node]int{n1: authInstances, n2: 0}, 60*time.Second); err != nil {
		return err
	}
	return sleep(ctx, scaleSettle)
}

// authMeasure measures the running daemons over relWindow, under flood f
// from adv if f is not nil, and checks that n1 still holds every VIP.
func authMeasure(ctx context.Context, l *lab.Lab, d *daemon, adv *lab.Advertiser, f *authFlood) (*authResult, error) {
	n1, n2 := l.Nodes[0], l.Nodes[1]
	r := &authResult{}
	if err := r.roles(n1, n2); err != nil {
		return nil, err
	}
	// Every counter is read outside the CPU window: scraping 255
	// instances' metrics costs the daemon.
	if err := r.count(ctx, d, n1, n2, 0); err != nil {
		return nil, err
	}
	var err error
	if r.mReasons[0], err = readReasons(ctx, n1); err != nil {
		return nil, err
	}
	if r.bReasons[0], err = readReasons(ctx, n2); err != nil {
		return nil, err
	}

	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	if f != nil {
		r.flood = &floodStats{}
		wg.Go(func() { *r.flood = runFlood(fctx, adv, f) })
		if err := sleep(ctx, authFloodLead); err != nil {
			return nil, err
		}
	}
	if err := r.read(0); err != nil {
		return nil, err
	}
	if err := sleep(ctx, relWindow); err != nil {
		return nil, err
	}
	if err := r.read(1); err != nil {
		return nil, err
	}
	if f != nil {
		stop()
		wg.Wait()
		if err := sleep(ctx, authFloodTail); err != nil {
			return nil, err
		}
	}

	if err := r.count(ctx, d, n1, n2, 1); err != nil {
		return nil, err
	}
	if r.mReasons[1], err = readReasons(ctx, n1); err != nil {
		return nil, err
	}
	if r.bReasons[1], err = readReasons(ctx, n2); err != nil {
		return nil, err
	}
	// The roles held throughout, or a transition shows it.
	if err := waitVIPs(ctx, map[*lab.Node]int{n1: authInstances, n2: 0}, time.Second); err != nil {
		return nil, fmt.Errorf("after the window: %w", err)
	}
	return r, nil
}

// runFlood sends f's adverts from adv to the VRRP group at authFloodRate
// until ctx ends: a batch every authFloodTick, catching up by at most one
// batch after a late tick.
func runFlood(ctx context.Context, adv *lab.Advertiser, f *authFlood) floodStats {
	s := floodStats{reason: f.reason}
	batch := authFloodRate * int(authFloodTick) / int(time.Second)
	dst := netip.AddrFrom4([4]byte{224, 0, 0, 18}) // RFC 9568 §5.1.1.2
	buf := make([]byte, 0, 256)
	t := time.NewTicker(authFloodTick)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			s.took = time.Since(start)
			return s
		case now := <-t.C:
			tried := s.sent + s.errs
			due := int(float64(authFloodRate)*now.Sub(start).Seconds()) - tried
			for i := range min(due, 2*batch) {
				b, err := f.build(buf[:0], tried+i, now)
				if err == nil {
					err = adv.SendMessage(netip.Addr{}, dst, b)
				}
				if err != nil {
					s.errs++
					if s.first == nil {
						s.first = err
					}
					continue
				}
				s.sent++
			}
		}
	}
}

// floodPacket is the i-th advert of a flood: VRIDs 1..authInstances in
// turn, each with its instance's VIP, at authFloodPriority.
func floodPacket(i int) vrrp.Packet {
	vrid := i%authInstances + 1
	return vrrp.Packet{
		Version:   3,
		Type:      vrrp.TypeAdvertisement,
		VRID:      uint8(vrid),
		Priority:  authFloodPriority,
		Interval:  uint16(authInterval / (10 * time.Millisecond)),
		Addresses: []netip.Addr{scaleAddr(vrid).Addr()},
	}
}

// forgedAdvert builds adverts from src signed with k, a key with the right
// id and a wrong secret, and the current time: the receiver passes every
// cheaper check and computes the HMAC.
func forgedAdvert(k *vrrp.Key, src netip.Addr) func([]byte, int, time.Time) ([]byte, error) {
	dst := netip.AddrFrom4([4]byte{224, 0, 0, 18})
	return func(b []byte, i int, now time.Time) ([]byte, error) {
		p := floodPacket(i)
		return k.Append(b, &p, src, dst, vrrp.ChecksumPseudoHeader, vrrp.SeqAt(now))
	}
}

// malformedAdvert builds unsigned adverts from src whose checksum is off by
// one bit.
func malformedAdvert(src netip.Addr) func([]byte, int, time.Time) ([]byte, error) {
	dst := netip.AddrFrom4([4]byte{224, 0, 0, 18})
	return func(b []byte, i int, _ time.Time) ([]byte, error) {
		p := floodPacket(i)
		start := len(b)
		b, err := p.Append(b, src, dst, vrrp.ChecksumPseudoHeader)
		if err != nil {
			return b, err
		}
		b[start+7] ^= 1 // the checksum's low byte (RFC 9568 §5.2.8)
		return b, nil
	}
}

// phasesOf returns the results of the phases called name that did not
// give up.
func phasesOf(res []*authResult, name string) []*authResult {
	var out []*authResult
	for i, p := range authPhases {
		if p.name == name && res[i] != nil {
			out = append(out, res[i])
		}
	}
	return out
}

// meanOf is f averaged over rs, whose windows are equally long.
func meanOf(rs []*authResult, f func(*authResult) time.Duration) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	var total time.Duration
	for _, r := range rs {
		total += f(r)
	}
	return total / time.Duration(len(rs))
}

// eachOf is f of each of rs, in ms/s.
func eachOf(rs []*authResult, f func(*authResult) time.Duration) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strings.TrimSuffix(msPerSecond(f(r)), " ms/s")
	}
	return strings.Join(s, ", ")
}

// authRows is the table; a phase that gave up is nil.
func authRows(res []*authResult) []row {
	none, auth := phasesOf(res, "none"), phasesOf(res, "auth")
	forged, malformed := phasesOf(res, "forged"), phasesOf(res, "malformed")
	master := (*authResult).masterCPU
	backup := (*authResult).backupCPU
	cpu := func(scenario string, v, a []*authResult, f func(*authResult) time.Duration, note string) row {
		return cpuRow(scenario, meanOf(v, f), meanOf(a, f), len(v) > 0, len(a) > 0, note)
	}
	windows := func(v, a []*authResult, f func(*authResult) time.Duration) string {
		return fmt.Sprintf("mean of %d and %d windows: %s vs %s", len(v), len(a), eachOf(v, f), eachOf(a, f))
	}
	received := func(rs []*authResult) string {
		if len(rs) == 0 {
			return "-"
		}
		var s []string
		off := 0.0
		for _, r := range rs {
			share, within := r.received(authInstances)
			s = append(s, fmt.Sprintf("%.1f%%", 100*share))
			off = max(off, within)
		}
		return fmt.Sprintf("%s ± %.1f", strings.Join(s, ", "), 100*off)
	}
	checks := func(rs []*authResult) string {
		if len(rs) == 0 {
			return "-"
		}
		a, sock, trans := 0, 0, 0
		for _, r := range rs {
			a += r.bDropped().auth()
			sock += r.drops()
			trans += r.transitions()
		}
		return fmt.Sprintf("%d auth, %d socket drops; %d trans.", a, sock, trans)
	}
	floodCell := func(rs []*authResult) string {
		if len(rs) == 0 || rs[0].flood == nil {
			return "-"
		}
		r, s := rs[0], rs[0].flood
		n := r.bDropped()[s.reason]
		cell := fmt.Sprintf("%.0f/s; %s %d", s.rate(), s.reason, n)
		if s.sent > 0 {
			cell += fmt.Sprintf(" (%.1f%%)", 100*float64(n)/float64(s.sent))
		}
		return cell
	}
	goal := fmt.Sprintf("goal ratio <= %.2f", authGoalRatio)
	adverts := float64(authInstances) * float64(time.Second) / float64(authInterval)
	return []row{
		cpu("255 @100ms Master CPU: auth vs none", auth, none, master, goal+"; "+windows(auth, none, master)),
		cpu("255 @100ms Backup CPU: auth vs none", auth, none, backup, goal+"; "+windows(auth, none, backup)),
		{"255 @100ms Backup adverts received: auth vs none", received(auth), received(none), "-",
			fmt.Sprintf("goal 100%% of the Master's (%.0f/s) in each window; ± reading time and bursts", adverts)},
		{"255 @100ms Backup: auth_* drops, socket drops, transitions", checks(auth), checks(none), "-", "goal 0 each (transitions: both nodes)"},
		cpu("Backup CPU, 3000/s forged (bad HMAC) vs 3000/s malformed", forged, malformed, backup,
			fmt.Sprintf("auth on; besides the Master's %.0f adverts/s", adverts)),
		cpu("Master CPU, 3000/s forged (bad HMAC) vs 3000/s malformed", forged, malformed, master,
			"the flood is multicast: the Master checks it too"),
		{"flood: achieved rate; Backup drops of its kind", floodCell(forged), floodCell(malformed), "-",
			fmt.Sprintf("goal %d/s; drops as a share of those sent, goal ≈ 100%%", authFloodRate)},
		{"flood: Backup adverts received", received(forged), received(malformed), "-", "goal 100% of the Master's"},
		{"flood: auth_* drops but its own, socket drops, transitions", floodChecks(forged), floodChecks(malformed), "-",
			"goal 0 each (both nodes), and n1 kept every VIP (checked after the window)"},
	}
}

// floodChecks is the first of rs's Backup auth_* drops other than the
// flood's own, socket drops and transitions.
func floodChecks(rs []*authResult) string {
	if len(rs) == 0 || rs[0].flood == nil {
		return "-"
	}
	r := rs[0]
	d := r.bDropped()
	auth := d.auth()
	if own := r.flood.reason; own.Auth() {
		auth -= d[own]
	}
	return fmt.Sprintf("%d auth, %d socket drops; %d trans.", auth, r.drops(), r.transitions())
}

// authSummary is a line with every phase's drops and transitions.
func authSummary(res []*authResult) string {
	var s []string
	for i, r := range res {
		if r == nil {
			s = append(s, phaseLabel(i)+": gave up")
			continue
		}
		part := fmt.Sprintf("%s: backup %s | master %s; %d transitions", phaseLabel(i), r.bDropped(), r.mDrops(), r.transitions())
		if r.flood != nil {
			part += fmt.Sprintf("; %d sent", r.flood.sent)
		}
		s = append(s, part)
	}
	return "Drops (backup | master) and transitions (both nodes) per phase: " + strings.Join(s, ". ") + "."
}
