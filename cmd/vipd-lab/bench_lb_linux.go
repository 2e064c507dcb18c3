package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/vipd/vipd/internal/lab"
)

// The lb scenario's lab: n1 is the load-balancing node holding the VIP, n2,
// n3 and n4 are the real servers, each running "vipd-lab lb-server" on
// lbRSPort. Every balancer on n1 listens on the VIP, on a port of its own.
const (
	lbRSPort      = 9000
	lbHAProxyPort = 8001
	lbNginxPort   = 8002
	lbWorkers     = 16                     // concurrent client connections
	lbRateFor     = 3 * time.Second        // new connections per second
	lbPace        = 2000                   // connections per second while CPU is measured
	lbPaceFor     = 2 * time.Second        // a paced run
	lbPaceRounds  = 3                      // paced runs, each after one direct
	lbBulkFor     = 2 * time.Second        // one bulk download
	lbKillFor     = 3 * time.Second        // load while a real server is killed
	lbKillAt      = time.Second            // into lbKillFor
	lbRejoin      = 2 * time.Second        // after a restart, for checks to see it up
	lbIOTimeout   = time.Second            // per connection, connect to close
	lbCheckEvery  = 200 * time.Millisecond // every balancer's check interval
	lbCheckFall   = 2
)

// An lbRow is a way vipd balances the virtual server: one line each in
// lbRows. A mode the vipd binary refuses is skipped with a printed reason.
type lbRow struct {
	mode, scheduler string
	port            int
}

var lbRows = []lbRow{
	{"nat", "round_robin", 8000},
	{"proxy", "least_conn", 8003},
}

func (r lbRow) name() string { return "vipd " + r.mode }

// An lbTarget is one way through n1 (or around it) that is measured.
type lbTarget struct {
	name  string
	addrs []string // the client connects to these in turn
	pids  func() ([]int, error)
}

// lbResult is what was measured through one target.
type lbResult struct {
	rate        float64       // new connections per second
	rateFailed  int           // failed connections in the rate run
	paced       int           // connections in the paced run
	busy        time.Duration // system-wide busy CPU in the paced run
	procCPU     time.Duration // the balancer's processes in the paced run
	node        float64       // ms per 10,000 connections more than direct
	bulk        float64       // bytes per second, one connection
	killOK      int
	killFailed  int
	killReasons map[string]int
}

// benchLB measures vipd's virtual servers beside HAProxy and nginx stream on
// the same node, to the same three real servers, in one lab and run.
func benchLB(ctx context.Context, env *benchEnv) (*table, error) {
	if err := needLBAnchors(); err != nil {
		return nil, err
	}
	w := env.w
	l, err := lab.New(lab.Config{Nodes: 4})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	lb := l.Nodes[0]
	rss := l.Nodes[1:]
	if err := lbSysctls(l); err != nil {
		return nil, err
	}

	var rsAddrs []string
	for _, n := range rss {
		rsAddrs = append(rsAddrs, net.JoinHostPort(n.Addr.Addr().String(), strconv.Itoa(lbRSPort)))
	}
	servers := make([]*lbProc, len(rss))
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	startRS := func(i int) error {
		servers[i].stop()
		var err error
		servers[i], err = startLBServer(l, rss[i], self, rsAddrs[i])
		return err
	}
	for i := range rss {
		if err := startRS(i); err != nil {
			return nil, err
		}
	}

	var rows []lbRow
	for _, r := range lbRows {
		if err := lbModeAvailable(l, env.vipd, r); err != nil {
			fmt.Fprintf(w, "%s: not available in this build; skipped (vipd validate: %v)\n", r.mode, err)
			continue
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, errors.New("the vipd binary accepts no virtual server mode")
	}
	if err := lb.StartVipd(env.vipd, lbVipdConfig(l, rows, rsAddrs)); err != nil {
		return nil, err
	}
	defer func() { _, _ = lb.Stop() }()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = l.WaitHolders(wctx, lab.VIP, lab.Only(lb))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("vipd on %s did not take the VIP: %w\n%s", lb.Name, err, l.LogTails(20))
	}
	vip := lab.VIP.Addr().String()
	haproxy, err := startAnchor(l, lb, "haproxy", lbHAProxyConfig(vip, rsAddrs), func(cfg string) []string {
		return []string{"haproxy", "-db", "-f", cfg}
	})
	if err != nil {
		return nil, err
	}
	defer haproxy.stop()
	nginx, err := startAnchor(l, lb, "nginx", lbNginxConfig(l.Dir, vip, rsAddrs), func(cfg string) []string {
		return []string{"nginx", "-p", l.Dir, "-c", cfg, "-g", "daemon off;"}
	})
	if err != nil {
		return nil, err
	}
	defer nginx.stop()

	vipdPIDs := func() ([]int, error) {
		pid, err := lb.PID()
		return []int{pid}, err
	}
	at := func(port int) []string { return []string{net.JoinHostPort(vip, strconv.Itoa(port))} }
	direct := lbTarget{"direct", rsAddrs, nil}
	targets := []lbTarget{direct}
	for _, r := range rows {
		targets = append(targets, lbTarget{r.name(), at(r.port), vipdPIDs})
	}
	targets = append(targets,
		lbTarget{"haproxy", at(lbHAProxyPort), haproxy.tree},
		lbTarget{"nginx", at(lbNginxPort), nginx.tree})

	fmt.Fprintf(w, "vipd-lab bench lb: client %s → node %s (VIP %s) → real servers %s (lab %s).\n",
		l.Client.Addr.Addr(), lb.Name, vip, strings.Join(rsAddrs, ", "), l.Prefix)
	fmt.Fprintf(w, "Each target in turn: %d workers connect/request/read/close for %v; %d× %d conn/s paced for %v, direct then through it (CPU);\n",
		lbWorkers, lbRateFor, lbPaceRounds, lbPace, lbPaceFor)
	fmt.Fprintf(w, "one bulk download for %v; %d workers for %v with %s's server SIGKILLed after %v.\n\n",
		lbBulkFor, lbWorkers, lbKillFor, rss[len(rss)-1].Name, lbKillAt)

	// Let every balancer's checks see the real servers up.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	results := map[string]*lbResult{}
	for _, t := range targets {
		res, err := lbMeasure(ctx, l, t, rsAddrs, func() error {
			servers[len(servers)-1].kill()
			return nil
		}, func() error { return startRS(len(servers) - 1) })
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		results[t.name] = res
		fmt.Fprintf(w, "%-10s %7.0f conn/s (%d failed), paced %d conn %v busy (+%.0f ms/10k over direct), bulk %s, kill: %d ok %d failed %s\n",
			t.name, res.rate, res.rateFailed, res.paced, res.busy.Round(time.Millisecond), res.node, mbps(res.bulk),
			res.killOK, res.killFailed, reasons(res.killReasons))
		if res.killFailed > lbWorkers && (t.name == "haproxy" || t.name == "nginx") {
			p, log := haproxy, haproxy.log
			if t.name == "nginx" {
				p, log = nginx, filepath.Join(l.Dir, "nginx-error.log")
			}
			fmt.Fprintf(w, "%s's log, last lines:\n%s\n", p.name, lastLines(log, 5))
		}
		if err := sleep(ctx, lbRejoin); err != nil {
			return nil, err
		}
	}
	return lbTable(rows, results), nil
}

// lbMeasure runs every measurement through t; kill and restart act on the
// third real server.
func lbMeasure(ctx context.Context, l *lab.Lab, t lbTarget, direct []string, kill, restart func() error) (*lbResult, error) {
	ns := l.Client.NS
	res := &lbResult{}
	r := lbLoad(ctx, ns, t.addrs, lbWorkers, lbRateFor, 0, nil)
	res.rate, res.rateFailed = float64(r.ok)/lbRateFor.Seconds(), r.failed

	var pids []int
	if t.pids != nil {
		var err error
		if pids, err = t.pids(); err != nil {
			return nil, err
		}
	}
	// Paced rounds, each straight to the real servers and then through t:
	// the other load on the machine changes slowly, so a pair sees about
	// the same, and the median of the pairs' differences is t's cost.
	var diffs []float64
	for range lbPaceRounds {
		var dBusy time.Duration
		var dConns int
		if t.pids != nil {
			b0, err := busyCPU()
			if err != nil {
				return nil, err
			}
			r := lbLoad(ctx, ns, direct, lbWorkers, lbPaceFor, lbPace, nil)
			b1, err := busyCPU()
			if err != nil {
				return nil, err
			}
			dBusy, dConns = b1-b0, r.ok+r.failed
		}
		before, err := readPIDs(pids)
		if err != nil {
			return nil, err
		}
		b0, err := busyCPU()
		if err != nil {
			return nil, err
		}
		r := lbLoad(ctx, ns, t.addrs, lbWorkers, lbPaceFor, lbPace, nil)
		b1, err := busyCPU()
		if err != nil {
			return nil, err
		}
		after, err := readPIDs(pids)
		if err != nil {
			return nil, err
		}
		res.paced += r.ok + r.failed
		res.busy += b1 - b0
		for i := range before {
			res.procCPU += lab.CPUTime(before[i], after[i])
		}
		if t.pids != nil {
			diffs = append(diffs, per10k(b1-b0, r.ok+r.failed)-per10k(dBusy, dConns))
		}
	}
	res.node = median(diffs)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	var err error
	if res.bulk, err = lbBulk(ctx, ns, t.addrs[0], lbBulkFor); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}

	addrs := t.addrs
	if len(addrs) > 1 {
		// Direct: the killed server is one of the client's three.
		addrs = addrs[:3]
	}
	var once sync.Once
	var killErr error
	r = lbLoad(ctx, ns, addrs, lbWorkers, lbKillFor, 0, func(elapsed time.Duration) {
		if elapsed >= lbKillAt {
			once.Do(func() { killErr = kill() })
		}
	})
	if killErr != nil {
		return nil, killErr
	}
	res.killOK, res.killFailed, res.killReasons = r.ok, r.failed, r.reasons
	if err := restart(); err != nil {
		return nil, fmt.Errorf("restarting the real server: %w", err)
	}
	return res, ctx.Err()
}

// lbCounts is what a load run counted.
type lbCounts struct {
	ok, failed int
	reasons    map[string]int
}

// lbLoad runs workers clients in namespace ns for d, each opening one
// connection after the other to addrs in turn, sending a request and
// reading the whole reply. pace, when not 0, is the connections per second
// of all workers together. tick, when not nil, is called by the first
// worker after each connection with the time since the start.
func lbLoad(ctx context.Context, ns string, addrs []string, workers int, d time.Duration, pace float64, tick func(time.Duration)) lbCounts {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	reasons := map[string]int{}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every socket of the worker is opened on its locked thread,
			// in the client's namespace.
			_ = lab.InNS(ns, func() error {
				var gap time.Duration
				if pace > 0 {
					gap = time.Duration(float64(workers) / pace * float64(time.Second))
				}
				next := start.Add(time.Duration(i) * gap / time.Duration(workers))
				for k := i; ctx.Err() == nil; k++ {
					if gap > 0 {
						if sleep(ctx, time.Until(next)) != nil {
							break
						}
						next = next.Add(gap)
					}
					if reason := lbRequest(addrs[k%len(addrs)]); reason == "" {
						ok.Add(1)
					} else if ctx.Err() == nil {
						failed.Add(1)
						mu.Lock()
						reasons[reason]++
						mu.Unlock()
					}
					if i == 0 && tick != nil {
						tick(time.Since(start))
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	return lbCounts{int(ok.Load()), int(failed.Load()), reasons}
}

// lbRequest is one short request/response: "" when it went well, else why
// it failed.
func lbRequest(addr string) string {
	deadline := time.Now().Add(lbIOTimeout)
	c, err := net.DialTimeout("tcp", addr, lbIOTimeout)
	if err != nil {
		return "connect: " + errReason(err)
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "r\n"); err != nil {
		return "write: " + errReason(err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 64))
	if err != nil {
		return "read: " + errReason(err)
	}
	if string(b) != lbReply {
		return "short reply"
	}
	return ""
}

// errReason names a connection error briefly.
func errReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	}
	return err.Error()
}

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var s []string
	for k, v := range m {
		s = append(s, fmt.Sprintf("%s %d", k, v))
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// lbBulk downloads from addr over one connection for d and returns bytes
// per second.
func lbBulk(ctx context.Context, ns, addr string, d time.Duration) (float64, error) {
	var rate float64
	err := lab.InNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, lbIOTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, "b\n"); err != nil {
			return err
		}
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(d))
		n, err := io.Copy(io.Discard, c)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		rate = float64(n) / time.Since(start).Seconds()
		return nil
	})
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return rate, err
}

// per10k is CPU time in milliseconds per 10,000 connections.
func per10k(cpu time.Duration, conns int) float64 {
	if conns == 0 {
		return 0
	}
	return float64(cpu) / float64(time.Millisecond) * 10000 / float64(conns)
}

// busyCPU is the machine's CPU time that was not idle so far, every CPU
// and every namespace together (/proc/stat: user, nice, system, irq,
// softirq, steal): the kernel's packet work in softirq included, which no
// process is charged with.
func busyCPU() (time.Duration, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, err
	}
	c := st.CPUTotal
	s := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return time.Duration(s * float64(time.Second)), nil
}

func readPIDs(pids []int) ([]lab.Usage, error) {
	out := make([]lab.Usage, len(pids))
	for i, pid := range pids {
		var err error
		if out[i], err = lab.ReadUsage(pid); err != nil {
			return nil, fmt.Errorf("pid %d: %w", pid, err)
		}
	}
	return out, nil
}

// lbSysctls sets what short connections need in every namespace of the
// lab (ephemeral ports, see LAB-NOTES), and forwarding on the balancer for
// nat's real servers on other hosts. Conntrack's TIME_WAIT on n1 is cut
// from 120s to 65s so that masquerade's source ports towards the real
// servers do not run out over the runs, yet stays above the real servers'
// own 60s TIME_WAIT: a port reused sooner would meet a socket still in
// TIME_WAIT there, and its SYN would stall.
func lbSysctls(l *lab.Lab) error {
	for _, n := range append([]*lab.Node{l.Client}, l.Nodes...) {
		args := []string{"netns", "exec", n.NS, "sysctl", "-q", "-w",
			"net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1"}
		if n == l.Nodes[0] {
			args = append(args, "net.ipv4.ip_forward=1")
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("sysctl in %s: %w: %s", n.NS, err, out)
		}
	}
	// The conntrack sysctls exist once the module is loaded, which vipd's
	// table does; load it first so the setting does not depend on order.
	_ = exec.Command("modprobe", "nf_conntrack").Run()
	out, err := exec.Command("ip", "netns", "exec", l.Nodes[0].NS, "sysctl", "-q", "-w",
		"net.netfilter.nf_conntrack_tcp_timeout_time_wait=65").CombinedOutput()
	if err != nil {
		return fmt.Errorf("conntrack TIME_WAIT in %s: %w: %s", l.Nodes[0].NS, err, out)
	}
	return nil
}

// needLBAnchors fails with what to install when HAProxy or nginx's stream
// module is missing.
func needLBAnchors() error {
	var missing []string
	if _, err := exec.LookPath("haproxy"); err != nil {
		missing = append(missing, "haproxy")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		missing = append(missing, "nginx")
	}
	if _, err := os.Stat(lbNginxStream); err != nil {
		missing = append(missing, "libnginx-mod-stream")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the anchors are missing: apt-get install %s", strings.Join(missing, " "))
	}
	return nil
}

const lbNginxStream = "/usr/lib/nginx/modules/ngx_stream_module.so"

// lbVSConfig is r's virtual server in vipd's configuration.
func lbVSConfig(r lbRow, vip string, rsAddrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: lb_%s\n    address: %s\n    port: %d\n    protocol: tcp\n", r.mode, vip, r.port)
	fmt.Fprintf(&b, "    mode: %s\n    scheduler: %s\n", r.mode, r.scheduler)
	fmt.Fprintf(&b, "    check: {tcp: {}, interval: %s, timeout: %s, fall: %d, rise: 2}\n", lbCheckEvery, lbCheckEvery/2, lbCheckFall)
	b.WriteString("    real_servers:\n")
	for _, a := range rsAddrs {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&b, "      - {address: %s, port: %s}\n", host, port)
	}
	return b.String()
}

// lbVipdConfig is n1's configuration: the VIP, and a virtual server per
// row.
func lbVipdConfig(l *lab.Lab, rows []lbRow, rsAddrs []string) string {
	in := lab.Instance{VRID: vrid, Priority: 150, AdvertInterval: time.Second, Preempt: true, VIPs: []netip.Prefix{lab.VIP}}
	s := lab.VipdConfig(filepath.Join(l.Dir, "n1.sock"), in)
	if len(rows) == 0 {
		return s
	}
	s += "virtual_servers:\n"
	for _, r := range rows {
		s += lbVSConfig(r, lab.VIP.Addr().String(), rsAddrs)
	}
	return s
}

// lbModeAvailable asks the vipd binary whether it accepts r's virtual
// server.
func lbModeAvailable(l *lab.Lab, bin string, r lbRow) error {
	file := filepath.Join(l.Dir, "check-"+r.mode+".yaml")
	cfg := lbVipdConfig(l, []lbRow{r}, []string{"192.0.2.12:9000"})
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		return err
	}
	out, err := exec.Command(bin, "validate", "--config", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func lbHAProxyConfig(vip string, rsAddrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn 8000
defaults
	mode tcp
	timeout connect 1s
	timeout client 10s
	timeout server 10s
	retries 3
	option redispatch
listen lb
	bind %s:%d
	balance roundrobin
	default-server inter %dms fall %d rise 2
`, vip, lbHAProxyPort, lbCheckEvery.Milliseconds(), lbCheckFall)
	for i, a := range rsAddrs {
		fmt.Fprintf(&b, "\tserver rs%d %s check\n", i+1, a)
	}
	return b.String()
}

// lbNginxConfig: open-source nginx has no active checks; a failed connect
// marks a server failed for fail_timeout and proxy_next_upstream retries
// the next one.
func lbNginxConfig(dir, vip string, rsAddrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `load_module %s;
worker_processes auto;
worker_rlimit_nofile 20000;
pid %s;
error_log %s warn;
events { worker_connections 8000; }
stream {
	upstream rs {
`, lbNginxStream, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-error.log"))
	for _, a := range rsAddrs {
		fmt.Fprintf(&b, "\t\tserver %s max_fails=1 fail_timeout=1s;\n", a)
	}
	fmt.Fprintf(&b, `	}
	server {
		listen %s:%d;
		proxy_pass rs;
		proxy_connect_timeout 1s;
		proxy_next_upstream on;
		proxy_next_upstream_tries 3;
	}
}
`, vip, lbNginxPort)
	return b.String()
}

// lbProc is a process the scenario started in a namespace.
type lbProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// stop ends the process and its children and waits for it; nil or stopped
// is fine. SIGTERM first, as a killed nginx master leaves its workers
// running; after 3s SIGKILL, to the children it had at the start too.
func (p *lbProc) stop() {
	if p == nil || p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	pids, _ := p.tree()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		for _, pid := range pids[min(1, len(pids)):] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// kill is SIGKILL to the process alone: a real server dying.
func (p *lbProc) kill() {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tree is the process and its children (nginx's workers).
func (p *lbProc) tree() ([]int, error) {
	pid := p.cmd.Process.Pid
	procs, err := procfs.AllProcs()
	if err != nil {
		return nil, err
	}
	out := []int{pid}
	for _, q := range procs {
		if st, err := q.Stat(); err == nil && st.PPID == pid {
			out = append(out, q.PID)
		}
	}
	return out, nil
}

// startIn starts argv in n's namespace ("ip netns exec" execs it, so the
// pid is the program's), its output to a log file in the lab's directory.
func startIn(l *lab.Lab, n *lab.Node, name string, stdout io.Writer, argv ...string) (*lbProc, error) {
	logPath := filepath.Join(l.Dir, n.Name+"-"+name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS}, argv...)...)
	cmd.Stderr = f
	cmd.Stdout = f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", name, n.NS, err)
	}
	p := &lbProc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// startLBServer starts a real server in n and waits until it listens.
func startLBServer(l *lab.Lab, n *lab.Node, self, addr string) (*lbProc, error) {
	pr, pw := io.Pipe()
	p, err := startIn(l, n, "rs", pw, self, lbServerCmd, addr)
	if err != nil {
		return nil, err
	}
	go func() {
		<-p.done
		pw.Close()
	}()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "listening") {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case err = <-ready:
	case <-time.After(5 * time.Second):
		err = errors.New("not listening after 5s")
	}
	if err != nil {
		p.stop()
		b, _ := os.ReadFile(p.log)
		return nil, fmt.Errorf("real server %s in %s: %w: %s", addr, n.NS, err, strings.TrimSpace(string(b)))
	}
	return p, nil
}

// startAnchor writes name's configuration and starts it in n, then waits
// until its port on the VIP accepts connections.
func startAnchor(l *lab.Lab, n *lab.Node, name, conf string, argv func(cfg string) []string) (*lbProc, error) {
	cfg := filepath.Join(l.Dir, name+".conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startIn(l, n, name, nil, argv(cfg)...)
	if err != nil {
		return nil, err
	}
	port := lbHAProxyPort
	if name == "nginx" {
		port = lbNginxPort
	}
	addr := net.JoinHostPort(lab.VIP.Addr().String(), strconv.Itoa(port))
	for range 50 {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			return nil, fmt.Errorf("%s exited at start: %s", name, strings.TrimSpace(string(b)))
		default:
		}
		var reason string
		_ = lab.InNS(l.Client.NS, func() error { reason = lbRequest(addr); return nil })
		if reason == "" {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	b, _ := os.ReadFile(p.log)
	return nil, fmt.Errorf("%s does not answer on %s after 5s: %s", name, addr, strings.TrimSpace(string(b)))
}

// lastLines is the end of a log file, or why it cannot be read.
func lastLines(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func mbps(bytesPerSecond float64) string {
	return fmt.Sprintf("%.2f Gbit/s", bytesPerSecond*8/1e9)
}

// lbTable puts each vipd row beside HAProxy and nginx.
func lbTable(rows []lbRow, res map[string]*lbResult) *table {
	t := &table{header: []string{"figure", "vipd", "value", "HAProxy", "×HAProxy", "nginx", "×nginx", "direct", "goal"}}
	h, n, d := res["haproxy"], res["nginx"], res["direct"]
	node := func(r *lbResult) float64 { return r.node }
	proc := func(r *lbResult) float64 { return per10k(r.procCPU, r.paced) }
	fails := func(r *lbResult) string { return strconv.Itoa(r.killFailed) }
	f0 := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	msf := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	type fig struct {
		name string
		val  func(*lbResult) float64
		cell func(float64) string
		goal map[string]string
		dir  bool
	}
	figs := []fig{
		{"new conn/s", func(r *lbResult) float64 { return r.rate }, f0,
			map[string]string{"nat": "≥ 1.0× HAProxy", "proxy": "≥ 1.0× HAProxy"}, true},
		{"node CPU per 10k conn", node, msf, map[string]string{"nat": "≤ 0.25× HAProxy"}, false},
		{"process CPU per 10k conn", proc, msf, nil, false},
		{"bulk, one connection", func(r *lbResult) float64 { return r.bulk }, mbps,
			map[string]string{"nat": "≥ 0.9× direct", "proxy": "≥ 0.9× direct"}, true},
	}
	for _, f := range figs {
		for _, r := range rows {
			v := res[r.name()]
			dir := "-"
			if f.dir {
				dir = f.cell(f.val(d)) + " (" + ratio(f.val(v), f.val(d), true) + "×)"
			}
			t.add(f.name, r.mode, f.cell(f.val(v)), f.cell(f.val(h)), ratio(f.val(v), f.val(h), true),
				f.cell(f.val(n)), ratio(f.val(v), f.val(n), true), dir, f.goal[r.mode])
		}
	}
	for _, r := range rows {
		v := res[r.name()]
		goal := "in flight only"
		if r.mode == "nat" {
			// A third of the connections reach the killed server until
			// the check takes it out.
			goal = fmt.Sprintf("≲ %d (⅓ × rate × fall × interval)", int(v.rate/3*float64(lbCheckFall)*lbCheckEvery.Seconds()))
		}
		t.add("failed conns, a real server killed", r.mode, fails(v), fails(h), "-", fails(n), "-", fails(d), goal)
	}
	t.notes = []string{
		"",
		fmt.Sprintf("new conn/s: %d workers, each connect, send a line, read the %q reply to EOF, close; %v; through the VIP", lbWorkers, lbReply, lbRateFor),
		"(direct: the client to the three real servers in turn).",
		fmt.Sprintf("node CPU: the client paced at %d conn/s for %v, %d times, each right after the same paced load sent direct to the real servers;", lbPace, lbPaceFor, lbPaceRounds),
		"the machine's busy CPU from /proc/stat (user+nice+system+irq+softirq+steal, every namespace) per 10,000 connections,",
		"through the balancer less direct, median of the pairs: what the balancer adds, kernel softirq work included (nat has",
		"no process doing it). Other load on the machine shows up here: run it twice.",
		"process CPU: the balancer's processes only (vipd; HAProxy; nginx master+workers) during the paced run, from procfs.",
		fmt.Sprintf("bulk: one connection reading for %v, through the VIP and direct to one real server.", lbBulkFor),
		fmt.Sprintf("failed: connect errors, resets, timeouts and short replies over %v of %d workers, the third real server SIGKILLed at %v;", lbKillFor, lbWorkers, lbKillAt),
		fmt.Sprintf("every balancer checks every %v, fall %d, rise 2 (nginx: passive, max_fails=1 fail_timeout=1s, proxy_next_upstream);", lbCheckEvery, lbCheckFall),
		"HAProxy: mode tcp, balance roundrobin, retries 3, option redispatch. direct: a third of the client's connections still go to the dead server.",
	}
	return t
}
