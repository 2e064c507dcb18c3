package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// FRRInstalled says whether FRRouting's daemons are on this machine.
func FRRInstalled() bool {
	_, err := os.Stat("/usr/lib/frr/bgpd")
	return err == nil
}

// FRRConfig is a router to start in a lab namespace.
type FRRConfig struct {
	NS       string // the namespace, also the daemons' pathspace (-N)
	Dir      string // for the logs
	ASN      uint32
	RouterID netip.Addr
	// BFD starts bfdd too, with a profile "fast" of BFDInterval ×
	// BFDMultiplier for the neighbours that use it (NeighborBFD).
	BFD           bool
	BFDInterval   time.Duration
	BFDMultiplier int
}

// FRR is FRRouting's zebra and bgpd (and bfdd) running in a lab namespace,
// with a pathspace of their own (-N) so that several labs never share one.
type FRR struct {
	cfg      FRRConfig
	run, etc string
	daemons  []string
}

// StartFRR starts the router as cfg says, with eBGP accepting routes
// without a policy and up to 8 ECMP paths. Close stops it.
func StartFRR(cfg FRRConfig) (_ *FRR, err error) {
	if !FRRInstalled() {
		return nil, errors.New("FRRouting is not installed (apt-get install frr)")
	}
	f := &FRR{cfg: cfg, run: filepath.Join("/var/run/frr", cfg.NS), etc: filepath.Join("/etc/frr", cfg.NS)}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	for _, d := range []string{f.run, f.etc, cfg.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.Command("chown", "frr:frr", d).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown %s: %v: %s", d, err, out)
		}
	}
	// vtysh refuses to run without it.
	if err := os.WriteFile(filepath.Join(f.etc, "vtysh.conf"), nil, 0o644); err != nil {
		return nil, err
	}
	f.daemons = []string{"zebra", "bgpd"}
	if cfg.BFD {
		f.daemons = []string{"zebra", "bfdd", "bgpd"}
	}
	for _, d := range f.daemons {
		out, err := exec.Command("ip", "netns", "exec", cfg.NS, "/usr/lib/frr/"+d, "-d", "-N", cfg.NS,
			"--log", "file:"+filepath.Join(cfg.Dir, d+".log")).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("starting %s: %v: %s", d, err, out)
		}
	}
	// bgpd answers vtysh once it is up.
	for i := 0; i < 100; i++ {
		if _, err = f.Vtysh("show bgp summary"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("bgpd did not come up: %w", err)
	}
	cmds := []string{fmt.Sprintf("router bgp %d", cfg.ASN),
		"bgp router-id " + cfg.RouterID.String(),
		"no bgp ebgp-requires-policy",
		"no bgp network import-check",
		"address-family ipv4 unicast",
		"maximum-paths 8",
		"exit-address-family"}
	if cfg.BFD {
		ms := strconv.FormatInt(cfg.BFDInterval.Milliseconds(), 10)
		cmds = append(cmds, "exit", "bfd", "profile fast", "receive-interval "+ms, "transmit-interval "+ms,
			"detect-multiplier "+strconv.Itoa(cfg.BFDMultiplier))
	}
	if err := f.Configure(cmds...); err != nil {
		return nil, err
	}
	return f, nil
}

// Close stops the daemons and removes their directories.
func (f *FRR) Close() {
	for _, d := range slices.Backward(f.daemons) {
		b, err := os.ReadFile(filepath.Join(f.run, d+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	os.RemoveAll(f.run)
	os.RemoveAll(f.etc)
}

// LogTail is the last n lines of a daemon's log (zebra, bgpd, bfdd).
func (f *FRR) LogTail(daemon string, n int) string {
	b, _ := os.ReadFile(filepath.Join(f.cfg.Dir, daemon+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Vtysh runs commands and returns their output.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	args := []string{"-N", f.cfg.NS}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %q: %w: %s", cmds, err, out)
	}
	return string(out), nil
}

// Configure runs commands in configuration mode.
func (f *FRR) Configure(cmds ...string) error {
	_, err := f.Vtysh(append([]string{"configure terminal"}, cmds...)...)
	return err
}

// Neighbor adds a BGP neighbour of AS asn, retrying the connection every
// second.
func (f *FRR) Neighbor(addr netip.Addr, asn uint32) error {
	return f.Configure(fmt.Sprintf("router bgp %d", f.cfg.ASN), fmt.Sprintf("neighbor %s remote-as %d", addr, asn),
		fmt.Sprintf("neighbor %s timers connect 1", addr))
}

// NeighborBFD turns on BFD for the neighbour with the profile of
// FRRConfig.
func (f *FRR) NeighborBFD(addr netip.Addr) error {
	return f.Configure(fmt.Sprintf("router bgp %d", f.cfg.ASN), fmt.Sprintf("neighbor %s bfd", addr),
		fmt.Sprintf("neighbor %s bfd profile fast", addr))
}

// Nexthops lists the active next hops of the BGP route to p in zebra's
// table, sorted; none if there is no route.
func (f *FRR) Nexthops(p netip.Prefix) ([]string, error) {
	family := "ip"
	if p.Addr().Is6() {
		family = "ipv6"
	}
	out, err := f.Vtysh("show " + family + " route " + p.String() + " json")
	if err != nil {
		return nil, err
	}
	var routes map[string][]struct {
		Protocol string `json:"protocol"`
		Nexthops []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("show route json: %v: %s", err, out)
	}
	var hops []string
	for _, r := range routes[p.String()] {
		if r.Protocol != "bgp" {
			continue
		}
		for _, h := range r.Nexthops {
			if h.Active {
				hops = append(hops, h.IP)
			}
		}
	}
	slices.Sort(hops)
	return hops, nil
}

// WaitNexthops waits until the router's route to p has exactly want as
// next hops, polling every 20 ms, and returns how long it waited.
func (f *FRR) WaitNexthops(ctx context.Context, p netip.Prefix, want ...netip.Addr) (time.Duration, error) {
	ws := make([]string, len(want))
	for i, a := range want {
		ws[i] = a.String()
	}
	slices.Sort(ws)
	start := time.Now()
	var got []string
	var err error
	for {
		if got, err = f.Nexthops(p); err == nil && slices.Equal(got, ws) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("next hops of %s are %v (%v), want %v: %w", p, got, err, ws, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitKernelRoute waits until the router's kernel has a route to exactly
// p (zebra installs BGP's best paths there) if want, or none if not, and
// returns when it saw that. A netlink dump every millisecond: far
// quicker than vtysh, for timing a withdrawal.
func (f *FRR) WaitKernelRoute(ctx context.Context, p netip.Prefix, want bool) (time.Time, error) {
	h, err := handleAt(f.cfg.NS)
	if err != nil {
		return time.Time{}, err
	}
	defer h.Close()
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	for {
		routes, err := h.RouteList(nil, family)
		if err != nil {
			return time.Time{}, err
		}
		has := slices.ContainsFunc(routes, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.String() == p.String() })
		if has == want {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("route to %s in %s: present %v, want %v: %w", p, f.cfg.NS, has, want, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}
