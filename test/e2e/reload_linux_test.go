package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
	"github.com/vipd/vipd/internal/lab"
)

// TestReload reloads the master under a 2ms ping of the VIP: by SIGHUP and by
// "vipd reload" with changes that do not concern the running instance (a
// second instance; a notify command and a check's interval), which must cost
// no echo reply and no transition; with an invalid file, which is refused
// with file:line errors while the daemon runs on untouched; and with a lower
// priority, which hands the VIP over.
func TestReload(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	dir := t.TempDir()
	h := svcStartHealthHTTP(t, n1.NS, "127.0.0.1:8080")
	hookLog := filepath.Join(dir, "hooks.log")
	notify := svcWriteScript(t, dir, "notify.sh", fmt.Sprintf("printf '%%s\\n' \"$*\" >> %s\n", hookLog))

	web := svcCheck{Name: "web", HTTP: h.URL, InitialUp: true}
	api := svcInst(150, true)
	api.TrackChecks = []svcTrack{{Name: "web", Weight: -60}}
	cfg := svcConfig{Socket: svcSocket(l, n1), Metrics: svcMetricsAddr(0), Checks: []svcCheck{web}, Instances: []svcInstance{api}}
	svcStartPair(t, l, cfg, true)
	sock := svcSocket(l, n1)

	p := probe(t, l)
	waitReply(t, p)
	waitNeigh(t, l, n1)
	time.Sleep(3 * interval)

	// undisturbed applies a reload and checks that, for a second after it,
	// the client lost no echo reply, n1 alone held the VIP and neither node
	// logged a state change of api.
	undisturbed := func(what string, reload func() time.Time) time.Time {
		t.Helper()
		c1, c2 := len(svcChanges(t, n1, "api")), len(svcChanges(t, n2, "api"))
		p.ResetOutage()
		at := reload()
		holdSteady(t, l, n1, time.Second)
		if s := p.Stats(); s.Outage > 0 {
			t.Errorf("%s: the client lost echo replies for %v from %s", what, s.Outage.Round(time.Millisecond), s.OutageStart.Format(time.StampMicro))
		}
		if cs := svcChanges(t, n1, "api"); len(cs) != c1 {
			t.Errorf("%s: n1 changed state: %+v", what, cs[c1:])
		}
		if cs := svcChanges(t, n2, "api"); len(cs) != c2 {
			t.Errorf("%s: n2 changed state: %+v", what, cs[c2:])
		}
		if !n1.Running() {
			t.Fatalf("%s: vipd on n1 exited; log:\n%s", what, n1.LogTail(30))
		}
		return at
	}
	// reloaded waits until n1 has logged its n-th "reloaded".
	reloaded := func(n int) {
		t.Helper()
		svcWaitFor(t, fmt.Sprintf("n1 logs its reload #%d", n), patience, func() (bool, string) {
			got := len(svcLogRecords(t, n1, "reloaded"))
			return got >= n, fmt.Sprintf("%d reloads logged", got)
		})
	}
	reloadCmd := func() (int, string, string) {
		t.Helper()
		return svcRunVipd(t, "reload", "--socket", sock)
	}

	// A: SIGHUP, a second instance on another VRID.
	api2 := svcInst(150, true)
	api2.Name, api2.VRID, api2.VIPs = "api2", 52, []netip.Prefix{netip.MustParsePrefix("192.0.2.52/24")}
	cfg.Instances = []svcInstance{api, api2}
	undisturbed("SIGHUP adding api2", func() time.Time {
		svcWriteConfig(t, n1, cfg.YAML())
		if err := syscall.Kill(nodePID(t, n1), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloaded(1)
		return time.Now()
	})
	if st := svcWaitState(t, sock, "api2", "master"); st.VRID != 52 || st.Priority != 150 {
		t.Errorf("api2 after the reload: %+v", st)
	}
	if len(svcLogRecords(t, n1, "reload: adding instance")) != 1 {
		t.Errorf("n1 did not log \"reload: adding instance\" once")
	}

	// B: vipd reload, a notify command for api and another interval for
	// its check, which restarts from the state it had reached (up).
	api.Notify = &svcNotify{Command: []string{notify}}
	cfg.Instances = []svcInstance{api, api2}
	cfg.Checks[0].Interval = 120 * time.Millisecond
	prioChanges := len(svcLogRecords(t, n1, "effective priority changed"))
	undisturbed("vipd reload changing notify and a check", func() time.Time {
		svcWriteConfig(t, n1, cfg.YAML())
		code, out, errOut := reloadCmd()
		if code != 0 || out != "reloaded\n" {
			t.Errorf("vipd reload: exit %d, stdout %q, stderr %q; want 0 and \"reloaded\"", code, out, errOut)
		}
		reloaded(2)
		return time.Now()
	})
	if got := svcLogRecords(t, n1, "effective priority changed"); len(got) != prioChanges {
		var why []string
		for _, msg := range []string{"reload: restarting check", "effective priority changed", "health check down", "health check up"} {
			for _, r := range svcLogRecords(t, n1, msg) {
				why = append(why, fmt.Sprintf("%v %s %v", r["time"], msg, r))
			}
		}
		slices.Sort(why)
		t.Errorf("the reload changed n1's effective priority (%d changes logged, was %d): the restarted check did not keep its state:\n%s",
			len(got), prioChanges, strings.Join(why, "\n"))
	}
	if len(svcLogRecords(t, n1, "reload: updating instance in place")) != 1 {
		t.Errorf("n1 did not log \"reload: updating instance in place\" once")
	}
	if len(svcLogRecords(t, n1, "reload: restarting check")) != 1 {
		t.Errorf("n1 did not log \"reload: restarting check\" once")
	}

	// C: an invalid file, by vipd reload and by SIGHUP.
	good := cfg.YAML()
	bad := strings.Replace(good, "    priority: 150\n", "    priority: 300\n", 1)
	line := slices.Index(strings.Split(bad, "\n"), "    priority: 300") + 1
	before := svcStatus(t, sock, "api")
	refused := len(svcLogRecords(t, n1, "reload refused; keeping the running configuration"))
	undisturbed("refused reload", func() time.Time {
		path := svcWriteConfig(t, n1, bad)
		code, out, errOut := reloadCmd()
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `:` + strconv.Itoa(line) + `: instances\[0\]\.priority: \S.*$`)
		if code != 1 || out != "" || !re.MatchString(errOut) {
			t.Errorf("vipd reload of an invalid file: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %s:%d: instances[0].priority: ...", code, out, errOut, path, line)
		}
		if err := syscall.Kill(nodePID(t, n1), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		svcWaitFor(t, "n1 logs both refusals", patience, func() (bool, string) {
			got := len(svcLogRecords(t, n1, "reload refused; keeping the running configuration"))
			return got >= refused+2, fmt.Sprintf("%d refusals logged, want %d", got, refused+2)
		})
		return time.Now()
	})
	if after := svcStatus(t, sock, "api"); after.State != "master" || after.Priority != 150 || after.ConfiguredPriority != 150 || !after.Since.Equal(before.Since) {
		t.Errorf("api after the refused reloads: %+v, want it untouched: %+v", after, before)
	}
	if insts, err := svcStatusOf(sock); err != nil || len(insts) != 2 {
		t.Errorf("after the refused reloads: %d instances (%v), want api and api2", len(insts), err)
	}

	// D: a lower priority than n2's hands the VIP over after n2's
	// Master_Down_Interval, and the notify command added in B reports it.
	api.Priority = 60
	cfg.Instances = []svcInstance{api, api2}
	svcWriteConfig(t, n1, cfg.YAML())
	p.ResetOutage()
	start := time.Now()
	if code, out, errOut := reloadCmd(); code != 0 {
		t.Fatalf("vipd reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	waitHolders(t, l, "n2 takes over from n1 at 60", lab.Only(n2))
	took := time.Since(start)
	waitNeigh(t, l, n2)
	waitReply(t, p)
	s := p.Stats()
	t.Logf("priority 150→60 on n1: n2 alone held the VIP after %v (Master_Down_Interval %v); the client's longest outage %v",
		took.Round(time.Millisecond), lab.MasterDownInterval(100, interval), s.Outage.Round(100*time.Microsecond))
	if bound := lab.MasterDownInterval(100, interval) + interval + 700*time.Millisecond; took > bound {
		t.Errorf("n2 took over %v after the reload, want within %v", took.Round(time.Millisecond), bound)
	}
	svcWantChange(t, n1, "api", "master", "backup", "higher priority seen")
	svcWantChange(t, n2, "api", "", "master", "master down timer")
	if st := svcStatus(t, sock, "api"); st.State != "backup" || st.Priority != 60 || st.ConfiguredPriority != 60 || st.Master != svcAddr(n2.Addr) {
		t.Errorf("n1's api after the handover: %+v, want backup at 60/60 following n2", st)
	}
	svcWaitFor(t, "the notify command reports the handover", patience, func() (bool, string) {
		got := svcReadLines(t, hookLog)
		return slices.Equal(got, []string{"INSTANCE api BACKUP 60"}), fmt.Sprintf("hook log %q", got)
	})
	if st := svcStatus(t, sock, "api2"); st.State != "master" {
		t.Errorf("api2 after api's handover: %+v, want master", st)
	}

	// E: removing api2 releases its VIP and its series, and leaves api
	// alone.
	vip2 := api2.VIPs[0]
	if ok, err := n1.Has(vip2); err != nil || !ok {
		t.Fatalf("n1 does not hold api2's VIP %s (%v)", vip2, err)
	}
	if ps := svcMustScrape(t, n1, svcMetricsAddr(0)); len(ps.find("vipd_instance_state", "instance", "api2")) == 0 {
		t.Errorf("no vipd_instance_state series of api2 before its removal")
	}
	c1 := len(svcChanges(t, n1, "api"))
	cfg.Instances = []svcInstance{api}
	svcWriteConfig(t, n1, cfg.YAML())
	if code, out, errOut := reloadCmd(); code != 0 {
		t.Fatalf("vipd reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if ok, err := n1.Has(vip2); err != nil || ok {
		t.Errorf("n1 still holds the removed api2's VIP %s once vipd reload returned (%v)", vip2, err)
	}
	if insts, err := svcStatusOf(sock); err != nil || len(insts) != 1 || insts[0].Name != "api" {
		t.Errorf("status after removing api2: %+v (%v), want api alone", insts, err)
	}
	ps := svcMustScrape(t, n1, svcMetricsAddr(0))
	for _, name := range []string{"vipd_instance_state", "vipd_instance_priority", "vipd_transitions_total", "vipd_adverts_sent_total", "vipd_instance_master_info"} {
		if f := ps.find(name, "instance", "api2"); len(f) != 0 {
			t.Errorf("%d %s series of the removed api2 remain: %+v", len(f), name, f)
		}
	}
	if c := svcChanges(t, n1, "api2"); len(c) == 0 || c[len(c)-1].To != "init" {
		t.Errorf("api2's state changes %+v, want a last one to init (shutdown)", c)
	}
	if cs := svcChanges(t, n1, "api"); len(cs) != c1 {
		t.Errorf("removing api2 changed api's state: %+v", cs[c1:])
	}
}

// TestReloadWhileChecksFlap reloads, again and again, a configuration that
// changes the interval of checks whose state changes at almost every run.
// Each reload restarts them; the daemon must keep answering reloads, status
// requests and /healthz, and stop on SIGTERM.
//
// Daemon.Reload holds the daemon's lock while checkSet.apply stops a changed
// check and waits for its goroutines, and a check's goroutine that is
// passing on a state change needs that lock (Daemon.broadcast): a state change
// just as a reload starts deadlocks the daemon. The goroutine dump taken
// when that happens is in the failure message.
func TestReloadWhileChecksFlap(t *testing.T) {
	l := newLab(t, 1)
	n1 := l.Nodes[0]
	ln, err := svcListenIn(n1.NS, "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	const checks = 6
	config := func(iv time.Duration) svcConfig {
		cfg := svcConfig{Metrics: svcMetricsAddr(0), Socket: svcSocket(l, n1), Instances: []svcInstance{svcInst(150, true)}}
		for i := range checks {
			// fall 1, rise 1: every failure and every success in a row
			// changes the state.
			cfg.Checks = append(cfg.Checks, svcCheck{Name: fmt.Sprintf("flap%d", i), HTTP: "http://127.0.0.1:8080/",
				Interval: iv, Timeout: iv / 2, Fall: 1, Rise: 1})
		}
		return cfg
	}
	startSvc(t, l, n1, config(10*time.Millisecond))
	sock := svcSocket(l, n1)

	const maxReloads, maxTime = 1500, 8 * time.Second
	start := time.Now()
	var stuck error
	var took time.Duration // until the last answered reload
	reloads := 0
	for ; reloads < maxReloads && time.Since(start) < maxTime; reloads++ {
		iv := 10 * time.Millisecond
		if reloads%2 == 0 {
			iv = 20 * time.Millisecond
		}
		svcWriteConfig(t, n1, config(iv).YAML())
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := control.Reload(ctx, sock)
		cancel()
		if err != nil {
			stuck = err
			break
		}
		took = time.Since(start)
	}
	t.Logf("%d reloads answered in %v; the endpoint answered %d check runs", reloads, took.Round(time.Millisecond), hits.Load())
	if stuck == nil {
		if st := svcStatus(t, sock, "api"); st.State != "master" {
			t.Errorf("api after the reloads: %+v, want master", st)
		}
		return
	}

	t.Errorf("reload #%d got no answer: %v", reloads+1, stuck)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = control.Status(ctx, sock)
	cancel()
	t.Errorf("status request after the stuck reload: %v", err)
	if resp, err := svcHTTPClient(n1.NS).Get("http://" + svcMetricsAddr(0) + "/healthz"); err != nil {
		t.Errorf("/healthz after the stuck reload: %v", err)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		t.Errorf("/healthz after the stuck reload: %s %q", resp.Status, strings.TrimSpace(string(body)))
	}
	pid := nodePID(t, n1)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if !n1.Running() {
		return
	}
	t.Errorf("vipd still running 2s after SIGTERM")
	// A goroutine dump (SIGQUIT) shows who waits for whom.
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	svcWaitFor(t, "vipd exits on SIGQUIT", patience, func() (bool, string) { return !n1.Running(), "running" })
	t.Errorf("the daemon's goroutines that hold each other up:\n%s", svcStacks(t, n1, "daemon.(*Daemon).Reload", "daemon.(*Daemon).broadcast"))
}

// svcStacks returns the goroutines of the Go runtime's dump in n's log whose
// stack contains one of the functions, without runtime and sync frames;
// goroutines with the same stack are shown once, with their number.
func svcStacks(t *testing.T, n *lab.Node, funcs ...string) string {
	t.Helper()
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	count := map[string]int{}
	for _, g := range strings.Split(string(b), "\n\n") {
		if !strings.HasPrefix(g, "goroutine ") || !slices.ContainsFunc(funcs, func(f string) bool { return strings.Contains(g, f) }) {
			continue
		}
		lines := strings.Split(g, "\n")
		var stack strings.Builder
		if i, j := strings.IndexByte(lines[0], '['), strings.LastIndexByte(lines[0], ']'); i >= 0 && j > i {
			fmt.Fprintf(&stack, "[%s]\n", lines[0][i+1:j])
		}
		for i := 1; i+1 < len(lines); i += 2 {
			fn := lines[i]
			if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/sync.") || strings.HasPrefix(fn, "sync.") {
				continue
			}
			if j := strings.LastIndexByte(fn, '('); j > 0 && strings.HasSuffix(fn, ")") {
				fn = fn[:j]
			}
			file := strings.TrimSpace(lines[i+1])
			if j := strings.IndexByte(file, ' '); j > 0 {
				file = file[:j]
			}
			fmt.Fprintf(&stack, "\t%s  %s\n", fn, file)
		}
		if count[stack.String()] == 0 {
			order = append(order, stack.String())
		}
		count[stack.String()]++
	}
	var out strings.Builder
	for _, st := range order {
		fmt.Fprintf(&out, "%d goroutine(s) %s", count[st], st)
	}
	return out.String()
}
