// Command vipd keeps virtual IP addresses highly available across hosts with
// VRRP version 3 (RFC 9568). See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/control"
	"github.com/vipd/vipd/internal/daemon"
	"github.com/vipd/vipd/internal/metrics"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const defaultConfig = "/etc/vipd/vipd.yaml"

const usage = `vipd keeps virtual IP addresses highly available with VRRPv3 (RFC 9568).

Usage:
  vipd run      [--config FILE] [--log-format text|json] [--log-level LEVEL]
  vipd validate [--config FILE]
  vipd cleanup  [--config FILE]    remove this config's VIPs and load-balancing table (after a crash)
  vipd status   [--socket PATH | --config FILE] [--json] [--virtual-servers]
  vipd reload   [--socket PATH | --config FILE]
  vipd watch    --interface IF [--json] [--refresh 1s] [--count N] [--forget DURATION]
                show every VRRP router heard on a link and flag conflicts
  vipd convert-keepalived [--output FILE] [--config-id ID] KEEPALIVED_CONF
                write the vipd YAML equivalent of a keepalived.conf
  vipd version

The default config file is ` + defaultConfig + `.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "cleanup":
		return cmdCleanup(args, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "reload":
		return cmdReload(args, stdout, stderr)
	case "watch":
		return cmdWatch(args, stdout, stderr)
	case "convert-keepalived":
		return cmdConvertKeepalived(args, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "vipd", buildVersion())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vipd: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// commonFlags are the flags every command that reads a config takes.
type commonFlags struct {
	fs        *flag.FlagSet
	config    string
	logFormat string
	logLevel  string
}

func newFlags(name string, stderr io.Writer, logging bool) *commonFlags {
	f := &commonFlags{fs: flag.NewFlagSet("vipd "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.config, "config", defaultConfig, "configuration `file`")
	f.logFormat, f.logLevel = "text", "info"
	if logging {
		f.fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
		f.fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	}
	return f
}

func (f *commonFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
		fmt.Fprintf(f.fs.Output(), "vipd: %v\n", err)
		return err
	}
	return nil
}

// logger builds the slog logger the flags ask for.
func (f *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", f.logFormat)
}

// setup is what run and cleanup share: flags, logging, the config, the
// capabilities and the system. code is the exit code when ok is false.
type setup struct {
	f        *commonFlags
	log      *slog.Logger
	cfg      *config.Config
	sys      daemon.System
	closeSys func() error
}

func newSetup(name string, args []string, stderr io.Writer) (s setup, code int, ok bool) {
	s.f = newFlags(name, stderr, true)
	if err := s.f.parse(args); err != nil {
		return s, 2, false
	}
	var err error
	if s.log, err = s.f.logger(stderr); err != nil {
		fmt.Fprintln(stderr, "vipd:", err)
		return s, 2, false
	}
	if s.cfg, err = config.Load(s.f.config); err != nil {
		fmt.Fprintln(stderr, err)
		return s, 1, false
	}
	logWarnings(s.log, s.cfg)
	switch msg, err := missingCapabilities(); {
	case err != nil:
		s.log.Error("cannot run", "err", err)
		return s, 1, false
	case msg != "":
		s.log.Error("cannot run: " + msg)
		return s, 1, false
	}
	if err := dropAmbientCapabilities(); err != nil {
		s.log.Warn("cannot clear the ambient capabilities; checks and hooks inherit them", "err", err)
	}
	if s.sys, s.closeSys, err = daemon.NewSystem(s.log); err != nil {
		s.log.Error("netlink unavailable", "err", err)
		return s, 1, false
	}
	return s, 0, true
}

func cmdRun(args []string, stderr io.Writer) int {
	s, code, ok := newSetup("run", args, stderr)
	if !ok {
		return code
	}
	defer s.closeSys()
	f, log, cfg, sys := s.f, s.log, s.cfg, s.sys

	// A soft limit keeps the heap close to what is live: vipd's live heap
	// is a few MiB, and the default pacing lets short-lived garbage (a
	// failover of hundreds of instances) grow the process well beyond it.
	// GOMEMLIMIT in the environment overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(24 << 20)
	}
	// And a heap that may grow by half its live size, not by all of it,
	// before a collection: a Master of 255 instances at 100 ms allocates
	// about 0.3 MB/s, so this is one more collection every ten seconds
	// (well under 1% of its CPU) for 0.5 MiB less private memory (5.9 →
	// 5.3 MiB measured). GOGC in the environment overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	setProcs(log, cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP reloads. It is caught from here until vipd exits, so that
	// one during startup or shutdown does not kill vipd.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, buildVersion())
	d := daemon.New(cfg, sys, m, log)
	a := &app{path: f.config, running: cfg, d: d, log: log}
	r := newRunner(log)

	// The listeners open here, before any task runs: the control socket
	// first, so that a second vipd on the same config refuses to start,
	// and a listener that cannot open stops vipd before the daemon touches
	// a VIP. Listening, they are ready as they are.
	ctl, err := control.Listen(cfg.ControlSocket, a, log)
	if err != nil {
		log.Error("control socket", "err", err)
		return 1
	}
	r.add(task{name: "control socket", run: ctl.Serve})
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			log.Error("metrics listener", "err", err)
			ctl.Close() // removes the socket file
			return 1
		}
		log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		r.add(task{name: "metrics", run: func(ctx context.Context) error {
			return metrics.Serve(ctx, ln, reg, d.Ping, log)
		}})
	}
	// READY=1 waits for every task's ready: the daemon's is Started.
	r.add(
		task{name: "daemon", run: d.Run, ready: d.Started()},
		task{name: "memory", run: func(ctx context.Context) error {
			returnIdleMemory(ctx, d.Started(), settleTicker(settleTime(cfg)), d.Transitions, freeMemory)
			return nil
		}},
		task{name: "reload", run: reloadOnHangup(hup, a.Reload)},
		task{name: "systemd", run: func(ctx context.Context) error {
			notifySystemd(ctx, r.Ready(), d.Ping, log)
			return nil
		}},
	)

	log.Info("starting", "version", buildVersion(), "config", f.config, "instances", len(cfg.Instances))
	if err := r.run(ctx); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// app is the running daemon as the signal handler and the control socket
// see it.
type app struct {
	path string
	d    *daemon.Daemon
	log  *slog.Logger

	mu      sync.Mutex // serialises reloads
	running *config.Config
}

// Status reports every instance for the control socket.
func (a *app) Status() []control.Instance {
	st := a.d.Status()
	out := make([]control.Instance, 0, len(st))
	for _, s := range st {
		ci := control.Instance{
			Name:               s.Name,
			Interface:          s.Interface,
			VRID:               s.VRID,
			Family:             s.Family,
			State:              s.State.String(),
			Priority:           s.Priority,
			ConfiguredPriority: s.ConfiguredPriority,
			Since:              s.Since,
			VIPs:               make([]string, 0, len(s.VIPs)),
			FailingChecks:      s.FailingChecks,
			Auth:               s.Auth,
			SyncGroup:          s.SyncGroup,
		}
		if s.Master.IsValid() {
			ci.Master = s.Master.String()
		}
		for _, v := range s.VIPs {
			ci.VIPs = append(ci.VIPs, v.String())
		}
		out = append(out, ci)
	}
	return out
}

// VirtualServers reports every virtual server for the control socket.
func (a *app) VirtualServers() []control.VirtualServer {
	st := a.d.VirtualServers()
	out := make([]control.VirtualServer, 0, len(st))
	for _, v := range st {
		cv := control.VirtualServer{Name: v.Name, Address: v.Address.String(), Port: v.Port, Protocol: v.Protocol, Mode: v.Mode,
			Scheduler: v.Scheduler, Quorum: v.Quorum, Healthy: v.Healthy, Up: v.Up, Error: v.Error,
			RealServers: make([]control.RealServer, 0, len(v.RealServers))}
		for _, r := range v.RealServers {
			cr := control.RealServer{Address: r.Address.String(), Port: r.Port, Weight: r.Weight, Up: r.Up, Local: r.Local,
				Connections: r.Connections}
			if v.Mode == "proxy" {
				cr.LiveConnections = &r.Live
			}
			cv.RealServers = append(cv.RealServers, cr)
		}
		out = append(out, cv)
	}
	return out
}

// BGP reports the BGP speaker for the control socket; nil without a bgp
// section.
func (a *app) BGP() *control.BGP {
	st, ok := a.d.BGP()
	if !ok {
		return nil
	}
	out := &control.BGP{Peers: []control.BGPPeer{}, Announced: []string{}}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, control.BGPPeer{Address: p.Address.String(), ASN: p.ASN, State: p.State, Since: p.Since, Reason: p.Reason,
			BFD: p.BFD, ConnectFailures: p.ConnectFailures})
	}
	for _, p := range st.Announced {
		out.Announced = append(out.Announced, p.String())
	}
	return out
}

// Reload reads and validates the config file again and applies it. An
// invalid file is refused and the running configuration kept, untouched.
func (a *app) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, err := config.Load(a.path)
	if err != nil {
		a.log.Error("reload refused; keeping the running configuration", "config", a.path, "err", err)
		return err
	}
	if cfg.ControlSocket != a.running.ControlSocket || cfg.Metrics != a.running.Metrics {
		a.log.Warn("reload: control_socket and metrics take effect only after a restart")
	}
	if err := a.d.CheckVirtualServers(cfg); err != nil {
		a.log.Error("reload refused; keeping the running configuration", "config", a.path, "err", err)
		return fmt.Errorf("virtual servers: %w", err)
	}
	logWarnings(a.log, cfg)
	a.d.Reload(cfg)
	setProcs(a.log, cfg)
	a.running = cfg
	a.log.Info("reloaded", "config", a.path, "instances", len(cfg.Instances))
	return nil
}

// setProcs sets how many threads run Go code at once, unless GOMAXPROCS
// in the environment does. One, for the protocol loops alone: each
// interface's loop is one goroutine, so a second P buys no throughput,
// only wakeups — the scheduler hands every timer and packet between
// threads, and re-reads the CPU affinity every second (docs/design.md,
// "What a wakeup costs"). The runtime's default (every CPU vipd may use)
// while a proxy-mode virtual server moves connections, which are many
// goroutines: new connections per second 1,884 → 2,738 on two CPUs,
// against HAProxy's 3,007 (vipd-lab bench --only lb).
func setProcs(log *slog.Logger, cfg *config.Config) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	proxy := slices.ContainsFunc(cfg.VirtualServers, func(v config.VirtualServer) bool { return v.Mode == "proxy" })
	before := runtime.GOMAXPROCS(0)
	if proxy {
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(1)
	}
	if n := runtime.GOMAXPROCS(0); n != before {
		log.Debug("GOMAXPROCS", "procs", n, "proxy", proxy)
	}
}

// logWarnings logs what the config allows but warns of.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn("config: "+strings.TrimPrefix(w.Msg, "warning: "), "config", w.File, "line", w.Line, "field", w.Field)
	}
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	f := newFlags("validate", stderr, false)
	if err := f.parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d instances)\n", f.config, len(cfg.Instances))
	return 0
}

func cmdCleanup(args []string, stderr io.Writer) int {
	s, code, ok := newSetup("cleanup", args, stderr)
	if !ok {
		return code
	}
	defer s.closeSys()
	if err := daemon.Cleanup(s.cfg, s.sys, s.log); err != nil {
		return 1
	}
	s.log.Info("cleanup done: no VIP of this config is left on its interfaces", "config", s.f.config)
	return 0
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
