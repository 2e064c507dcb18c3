package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
	"github.com/vipd/vipd/internal/lab"
)

// The helpers of the service tests (health checks, hooks, metrics, status,
// watch, reload): full vipd configurations, services and clients inside a
// node's namespace, the control socket and the node's process.

// Check timing shared by the service tests: fast enough for a test of a few
// seconds, with a timeout well above what a loopback request takes on a
// busy machine.
const (
	svcCheckInterval = 100 * time.Millisecond
	svcCheckTimeout  = 90 * time.Millisecond
	svcCheckFall     = 2
	svcCheckRise     = 2
)

// svcConfig is one node's whole vipd configuration.
type svcConfig struct {
	Socket     string
	Metrics    string // metrics.listen; "" for none
	Checks     []svcCheck
	Instances  []svcInstance
	SyncGroups []svcGroup
	// VirtualServers is the virtual_servers list, as YAML lines.
	VirtualServers string
}

// svcGroup is a sync group.
type svcGroup struct {
	Name      string
	Instances []string
	Notify    *svcNotify
}

// svcCheck is a health check; exactly one of HTTP, TCP and Exec is set.
// Zero timing fields take the package's check timing.
type svcCheck struct {
	Name      string
	HTTP      string // URL
	TCP       string // host:port
	Exec      []string
	Interval  time.Duration
	Timeout   time.Duration
	Fall      int
	Rise      int
	InitialUp bool
}

// svcTrack is one track_checks or track_interfaces entry; Weight 0 is
// written as no weight (FAULT mode).
type svcTrack struct {
	Name   string
	Weight int
}

// svcNotify is an instance's notify mapping.
type svcNotify struct {
	Command, Master, Backup, Fault, Stop []string
	Timeout                              time.Duration
}

// svcInstance is an instance with what lab.Instance cannot describe.
type svcInstance struct {
	lab.Instance
	TrackChecks     []svcTrack
	TrackInterfaces []svcTrack
	// TrackVirtualServers are track_virtual_servers entries.
	TrackVirtualServers []svcTrack
	Notify              *svcNotify
	VirtualMAC          bool
}

func svcYAMLList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func svcYAMLTracks(key string, ts []svcTrack) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		if t.Weight == 0 {
			parts[i] = fmt.Sprintf("{%s: %s}", key, strconv.Quote(t.Name))
		} else {
			parts[i] = fmt.Sprintf("{%s: %s, weight: %d}", key, strconv.Quote(t.Name), t.Weight)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// YAML renders the configuration in vipd's format.
func (c svcConfig) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "control_socket: %s\n", strconv.Quote(c.Socket))
	if c.Metrics != "" {
		fmt.Fprintf(&b, "metrics:\n  listen: %s\n", strconv.Quote(c.Metrics))
	}
	if len(c.Checks) > 0 {
		b.WriteString("checks:\n")
	}
	for _, ch := range c.Checks {
		interval, timeout := svcOr(ch.Interval, svcCheckInterval), svcOr(ch.Timeout, svcCheckTimeout)
		fmt.Fprintf(&b, "  - name: %s\n", strconv.Quote(ch.Name))
		switch {
		case ch.HTTP != "":
			fmt.Fprintf(&b, "    http: {url: %s}\n", strconv.Quote(ch.HTTP))
		case ch.TCP != "":
			fmt.Fprintf(&b, "    tcp: {address: %s}\n", strconv.Quote(ch.TCP))
		default:
			fmt.Fprintf(&b, "    exec: {command: %s}\n", svcYAMLList(ch.Exec))
		}
		fmt.Fprintf(&b, "    interval: %s\n    timeout: %s\n", interval, timeout)
		fmt.Fprintf(&b, "    fall: %d\n    rise: %d\n", svcOr(ch.Fall, svcCheckFall), svcOr(ch.Rise, svcCheckRise))
		if ch.InitialUp {
			b.WriteString("    initial_state: up\n")
		}
	}
	b.WriteString("instances:\n")
	for _, in := range c.Instances {
		name := svcOr(in.Name, "api")
		vips := make([]string, len(in.VIPs))
		for i, p := range in.VIPs {
			vips[i] = p.String()
		}
		fmt.Fprintf(&b, "  - name: %s\n", name)
		fmt.Fprintf(&b, "    interface: %s\n", svcOr(in.Interface, "eth0"))
		fmt.Fprintf(&b, "    vrid: %d\n", in.VRID)
		fmt.Fprintf(&b, "    priority: %d\n", in.Priority)
		fmt.Fprintf(&b, "    advert_interval: %s\n", svcOr(in.AdvertInterval, interval))
		fmt.Fprintf(&b, "    preempt: %t\n", in.Preempt)
		fmt.Fprintf(&b, "    vips: %s\n", svcYAMLList(vips))
		if in.VirtualMAC {
			b.WriteString("    virtual_mac: true\n")
		}
		if len(in.TrackChecks) > 0 {
			fmt.Fprintf(&b, "    track_checks: %s\n", svcYAMLTracks("check", in.TrackChecks))
		}
		if len(in.TrackInterfaces) > 0 {
			fmt.Fprintf(&b, "    track_interfaces: %s\n", svcYAMLTracks("interface", in.TrackInterfaces))
		}
		if len(in.TrackVirtualServers) > 0 {
			fmt.Fprintf(&b, "    track_virtual_servers: %s\n", svcYAMLTracks("virtual_server", in.TrackVirtualServers))
		}
		in.Notify.yaml(&b)
	}
	if len(c.SyncGroups) > 0 {
		b.WriteString("sync_groups:\n")
	}
	for _, g := range c.SyncGroups {
		fmt.Fprintf(&b, "  - name: %s\n    instances: %s\n", strconv.Quote(g.Name), svcYAMLList(g.Instances))
		g.Notify.yaml(&b)
	}
	if c.VirtualServers != "" {
		b.WriteString("virtual_servers:\n" + c.VirtualServers)
	}
	return b.String()
}

// yaml writes n as the notify field of an instance or a sync group; nothing
// for nil.
func (n *svcNotify) yaml(b *strings.Builder) {
	if n == nil {
		return
	}
	b.WriteString("    notify:\n")
	for _, kv := range []struct {
		key  string
		argv []string
	}{{"command", n.Command}, {"master", n.Master}, {"backup", n.Backup}, {"fault", n.Fault}, {"stop", n.Stop}} {
		if len(kv.argv) > 0 {
			fmt.Fprintf(b, "      %s: %s\n", kv.key, svcYAMLList(kv.argv))
		}
	}
	if n.Timeout > 0 {
		fmt.Fprintf(b, "      timeout: %s\n", n.Timeout)
	}
}

func svcOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// svcInst is the usual instance of the service tests: VRID 51, the lab's
// VIP, 100ms adverts.
func svcInst(priority int, preempt bool) svcInstance {
	return svcInstance{Instance: instance(priority, preempt)}
}

// svcSocket is where node n's control socket lives: a path on the shared
// filesystem, reachable from the root namespace.
func svcSocket(l *lab.Lab, n *lab.Node) string {
	return filepath.Join(l.Dir, n.Name+".sock")
}

// startSvc starts vipd on n with cfg (its socket defaults to svcSocket) and
// waits until its control socket answers, so that status, reload and
// signals can be used at once.
func startSvc(t *testing.T, l *lab.Lab, n *lab.Node, cfg svcConfig) svcConfig {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = svcSocket(l, n)
	}
	if err := n.StartVipd(vipdBin, cfg.YAML()); err != nil {
		t.Fatal(err)
	}
	svcWaitFor(t, n.Name+"'s control socket answers", patience, func() (bool, string) {
		if !n.Running() {
			t.Fatalf("vipd on %s exited at start; log:\n%s", n.Name, n.LogTail(30))
		}
		_, err := svcStatusOf(cfg.Socket)
		return err == nil, fmt.Sprint(err)
	})
	return cfg
}

// svcWaitFor polls cond every 10ms until it holds, or fails t after timeout
// with what and cond's last explanation.
func svcWaitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v until %s: %s", timeout, what, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// svcStatusOf asks the daemon at sock for its instances through "vipd status
// --json", the way an operator would.
func svcStatusOf(sock string) ([]control.Instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, vipdBin, "status", "--socket", sock, "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vipd status --socket %s --json: %w: %s", sock, err, strings.TrimSpace(stderr.String()))
	}
	var insts []control.Instance
	if err := json.Unmarshal(stdout.Bytes(), &insts); err != nil {
		return nil, fmt.Errorf("vipd status --json: %w in %q", err, stdout.String())
	}
	return insts, nil
}

// svcStatus returns the named instance from the daemon at sock.
func svcStatus(t *testing.T, sock, name string) control.Instance {
	t.Helper()
	insts, err := svcStatusOf(sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		if in.Name == name {
			return in
		}
	}
	t.Fatalf("vipd status at %s: no instance %q in %+v", sock, name, insts)
	return control.Instance{}
}

// svcWaitState waits until the named instance at sock is in state.
func svcWaitState(t *testing.T, sock, name, state string) control.Instance {
	t.Helper()
	var last control.Instance
	svcWaitFor(t, fmt.Sprintf("%s is %s at %s", name, state, filepath.Base(sock)), patience, func() (bool, string) {
		insts, err := svcStatusOf(sock)
		if err != nil {
			return false, err.Error()
		}
		for _, in := range insts {
			if in.Name == name {
				last = in
				return in.State == state, fmt.Sprintf("%+v", in)
			}
		}
		return false, fmt.Sprintf("no instance %q in %+v", name, insts)
	})
	return last
}

// svcRunVipd runs the vipd binary with args from the root namespace and
// returns its exit code and output.
func svcRunVipd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, vipdBin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("vipd %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// svcChanges returns n's state changes of the named instance, oldest first.
func svcChanges(t *testing.T, n *lab.Node, name string) []lab.StateChange {
	t.Helper()
	all, err := n.StateChanges()
	if err != nil {
		t.Fatal(err)
	}
	var out []lab.StateChange
	for _, c := range all {
		if c.Instance == name {
			out = append(out, c)
		}
	}
	return out
}

func svcLastChange(t *testing.T, n *lab.Node, name string) lab.StateChange {
	t.Helper()
	cs := svcChanges(t, n, name)
	if len(cs) == 0 {
		t.Fatalf("%s: no state change of %s logged", n.Name, name)
	}
	return cs[len(cs)-1]
}

// svcWantChange waits up to two seconds for n's last state change of the
// named instance to go to to for reason (and from from, unless empty): the
// line is logged after the VIPs are added and announced, so a test that saw
// them move may read the log a moment too early.
func svcWantChange(t *testing.T, n *lab.Node, name, from, to, reason string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c := svcLastChange(t, n, name)
		if (from == "" || c.From == from) && c.To == to && c.Reason == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s's last state change %+v, want %s to %s for %q", n.Name, c, svcOr(from, "any"), to, reason)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// svcLogRecords returns the JSON log records of n whose msg is msg.
func svcLogRecords(t *testing.T, n *lab.Node, msg string) []map[string]any {
	t.Helper()
	f, err := os.Open(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	quoted, _ := json.Marshal(msg)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), quoted) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// svcConfigPath returns the file vipd on n was started with: the lab logs each
// start as "=== lab: TIME starting vipd BINARY run --config FILE ...".
func svcConfigPath(t *testing.T, n *lab.Node) string {
	t.Helper()
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "=== lab: ") || !strings.Contains(line, " starting vipd ") {
			continue
		}
		f := strings.Fields(line)
		for i := range f[:len(f)-1] {
			if f[i] == "--config" {
				path = f[i+1]
			}
		}
	}
	if path == "" {
		t.Fatalf("%s: no vipd start with --config in %s", n.Name, n.LogPath())
	}
	return path
}

// svcWriteConfig replaces the config file of n's running vipd, for a reload.
func svcWriteConfig(t *testing.T, n *lab.Node, yaml string) string {
	t.Helper()
	path := svcConfigPath(t, n)
	// Written whole and renamed, so a reload never reads half a file.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// svcListenIn opens a TCP listener on addr inside namespace ns.
func svcListenIn(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := lab.InNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, ns, err)
	}
	return ln, nil
}

// svcHTTPClient returns an HTTP client whose connections are opened inside
// namespace ns (lab.HTTPClient).
func svcHTTPClient(ns string) *http.Client { return lab.HTTPClient(ns, 10*time.Second) }

// Modes of a svcHealthHTTP endpoint.
const (
	svcHealthOK   int32 = iota // 200
	svcHealthFail              // 500
	svcHealthHang              // never answers
)

// svcHealthHTTP is an HTTP health endpoint served inside a node's namespace.
type svcHealthHTTP struct {
	URL  string
	mode atomic.Int32
	hits atomic.Int64
	// release unblocks hanging handlers when the test ends.
	release chan struct{}
}

// svcStartHealthHTTP serves http://addr/healthz inside ns until t ends.
func svcStartHealthHTTP(t *testing.T, ns, addr string) *svcHealthHTTP {
	t.Helper()
	ln, err := svcListenIn(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &svcHealthHTTP{URL: "http://" + addr + "/healthz", release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		switch h.mode.Load() {
		case svcHealthFail:
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
		case svcHealthHang:
			select {
			case <-r.Context().Done():
			case <-h.release:
			}
		default:
			_, _ = io.WriteString(w, "ok\n")
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		close(h.release)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
		<-done
	})
	return h
}

func (h *svcHealthHTTP) set(mode int32) { h.mode.Store(mode) }

// svcTCPService is a TCP listener inside a node's namespace that accepts and
// closes connections, and can be closed and opened again.
type svcTCPService struct {
	ns, addr string

	mu sync.Mutex
	ln net.Listener
	wg sync.WaitGroup
}

// svcStartTCPService listens on addr inside ns until t ends.
func svcStartTCPService(t *testing.T, ns, addr string) *svcTCPService {
	t.Helper()
	s := &svcTCPService{ns: ns, addr: addr}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func (s *svcTCPService) open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := svcListenIn(s.ns, s.addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

func (s *svcTCPService) close() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
		s.wg.Wait()
	}
}

// svcSample is one sample of the Prometheus text format.
type svcSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// svcSamples is the samples of one scrape.
type svcSamples []svcSample

// svcParseProm parses a Prometheus text exposition (lab.Samples, expfmt).
func svcParseProm(text string) (svcSamples, error) {
	ss, err := lab.Samples([]byte(text))
	if err != nil {
		return nil, err
	}
	out := make(svcSamples, len(ss))
	for i, x := range ss {
		out[i] = svcSample{Name: x.Name, Labels: x.Labels, Value: x.Value}
	}
	return out, nil
}

// find returns the samples of name whose labels include kv (pairs of label
// name and value).
func (ps svcSamples) find(name string, kv ...string) svcSamples {
	var out svcSamples
next:
	for _, s := range ps {
		if s.Name != name {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := s.Labels[kv[i]]; !ok || v != kv[i+1] {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// value returns the value of the one sample of name with labels kv.
func (ps svcSamples) value(name string, kv ...string) (float64, error) {
	f := ps.find(name, kv...)
	if len(f) != 1 {
		return 0, fmt.Errorf("%d samples of %s%v, want 1 (of %d %s samples)", len(f), name, kv, len(ps.find(name)), name)
	}
	return f[0].Value, nil
}

// svcScrape fetches and parses http://listen/metrics from inside ns.
func svcScrape(ns, listen string) (svcSamples, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := lab.HTTPGet(ctx, ns, "http://"+listen+"/metrics")
	if err != nil {
		return nil, err
	}
	return svcParseProm(body)
}

// svcMustScrape is svcScrape, failing t on error.
func svcMustScrape(t *testing.T, n *lab.Node, listen string) svcSamples {
	t.Helper()
	ps, err := svcScrape(n.NS, listen)
	if err != nil {
		t.Fatalf("scraping %s's metrics at %s: %v", n.Name, listen, err)
	}
	return ps
}

// svcMetric scrapes n and returns one sample's value, failing t if it is
// missing.
func svcMetric(t *testing.T, n *lab.Node, listen, name string, kv ...string) float64 {
	t.Helper()
	v, err := svcMustScrape(t, n, listen).value(name, kv...)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return v
}

// svcMetricsAddr is node i's (0-based) metrics listener on its own loopback.
func svcMetricsAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 9401+i) }

// svcWriteScript writes an executable shell script into dir.
func svcWriteScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// svcReadLines returns the lines of a file, none if it does not exist.
func svcReadLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// svcAlive reports whether pid exists and is not a zombie.
func svcAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// svcAddr is the address of a node prefix without its length.
func svcAddr(p netip.Prefix) string { return p.Addr().String() }

// nodePID is n's running vipd's pid (lab.Node.PID), or the test fails.
func nodePID(t *testing.T, n *lab.Node) int {
	t.Helper()
	pid, err := n.PID()
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// svcLines is what a hook log must hold so far.
type svcLines struct {
	t    *testing.T
	path string
	want []string
}

func svcExpectLines(t *testing.T, path string) *svcLines { return &svcLines{t: t, path: path} }

// expect waits until the log at path holds what it held before, then
// lines, exactly.
func (l *svcLines) expect(what string, lines ...string) {
	l.t.Helper()
	l.want = append(l.want, lines...)
	svcWaitFor(l.t, what, patience, func() (bool, string) {
		got := svcReadLines(l.t, l.path)
		return slices.Equal(got, l.want), fmt.Sprintf("hook log %q, want %q", got, l.want)
	})
}
