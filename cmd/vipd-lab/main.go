// Command vipd-lab shows and measures vipd in a lab of network namespaces:
// "vipd-lab demo" walks through a failover a person can follow, and
// "vipd-lab bench" measures outages against Debian's keepalived. Both need
// root and Linux.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const usage = `vipd-lab runs vipd in a lab of network namespaces (needs root).

Usage:
  vipd-lab demo  --vipd PATH [--logs DIR]    a failover walk-through, ~10s
  vipd-lab bench --vipd PATH [--runs N] [--intervals 10ms,100ms,1s]
                 [--only failover,health,reliability,scale1000,auth,lb,bgp]
                 [--vipd-nobgp PATH]           (bgp: a build without GoBGP, for its memory rows)
                                             vipd beside keepalived: failover outages (IPv4, IPv6),
                                             health-check failover, CPU and memory at scale, soak,
                                             packet loss, partition heals, 1,000 instances over
                                             4 interfaces; then auth_hmac's cost and a forged
                                             flood (vipd alone); load balancing beside HAProxy and
                                             nginx stream; BGP withdrawal against FRR; ~21 minutes
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case lbServerCmd:
		return lbServer(args, stderr)
	case wakeFloorCmd:
		return wakeFloor(args, stderr)
	}
	fs := flag.NewFlagSet("vipd-lab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vipd := fs.String("vipd", "bin/vipd", "vipd `binary` to run in the nodes")
	var runs int
	var intervals, logDir, only, noBGP string
	switch cmd {
	case "demo":
		fs.StringVar(&logDir, "logs", "", "keep configs and daemon logs in `dir` (default: a temporary directory, removed)")
	case "bench":
		fs.IntVar(&runs, "runs", 3, "measurements per scenario, interval and daemon")
		fs.StringVar(&noBGP, "vipd-nobgp", "", "vipd `binary` built without GoBGP (make build BGP=no), measured beside --vipd in the bgp part")
		fs.StringVar(&intervals, "intervals", "10ms,100ms,1s", "comma-separated advert `intervals`")
		fs.StringVar(&only, "only", strings.Join(scenarioNames(), ","), "comma-separated `parts` of the benchmark to run")
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vipd-lab: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipd-lab %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "vipd-lab %s: needs root (network namespaces, raw sockets)\n", cmd)
		return 1
	}

	// Ctrl-C or SIGTERM cancels the context; the lab is torn down on the
	// way out either way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "demo":
		if logDir != "" {
			err = os.MkdirAll(logDir, 0o755)
		}
		if err == nil {
			err = demo(ctx, stdout, *vipd, logDir)
		}
	case "bench":
		env := &benchEnv{w: stdout, runs: runs}
		if env.intervals, err = parseIntervals(intervals); err != nil {
			break
		}
		if runs < 1 || runs > 50 {
			err = fmt.Errorf("--runs %d: want 1 to 50", runs)
			break
		}
		if noBGP != "" {
			if env.vipdNoBGP, err = vipdBinary(noBGP); err != nil {
				break
			}
		}
		if env.vipd, err = vipdBinary(*vipd); err == nil {
			err = bench(ctx, env, only)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "vipd-lab %s: interrupted; the lab is removed\n", cmd)
			return 130
		}
		fmt.Fprintf(stderr, "vipd-lab %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--intervals: %w", err)
		}
		// VRRPv3 counts the interval in centiseconds (RFC 9568 §5.2.7).
		if d < 10*time.Millisecond || d > 40950*time.Millisecond || d%(10*time.Millisecond) != 0 {
			return nil, fmt.Errorf("--intervals: %v is not a VRRPv3 interval (10ms to 40.95s in steps of 10ms)", d)
		}
		out = append(out, d)
	}
	return out, nil
}

// vipdBinary resolves the --vipd flag to an absolute path of an executable.
func vipdBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("vipd binary: %w (build it with 'make build')", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("vipd binary %s is not an executable file", abs)
	}
	return abs, nil
}
