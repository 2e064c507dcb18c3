package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// nobody is the unprivileged user the capability tests run vipd as.
const nobody = 65534

// unprivileged returns a directory everyone can read, holding a copy of the
// vipd binary and a wrapper that runs it as nobody with only the given
// capabilities (ambient, as systemd's AmbientCapabilities gives them), the
// way the systemd unit runs it.
func unprivileged(t *testing.T, caps ...string) (dir, wrapper string) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	dir, err := os.MkdirTemp("", "vipd-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(vipdBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vipd"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	// The lab writes configs mode 0600 as root: hand them to nobody first.
	script := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do case "$a" in *.yaml) chown %d "$a";; esac; done
exec setpriv --reuid=%d --regid=%d --clear-groups --inh-caps=%s --ambient-caps=%s --bounding-set=%s %s "$@"
`, nobody, nobody, nobody, set, set, set, filepath.Join(dir, "vipd"))
	wrapper = filepath.Join(dir, "vipd-as-nobody")
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, wrapper
}

// vipd runs as an unprivileged user with only CAP_NET_ADMIN and CAP_NET_RAW
// through a whole failover: it wins, loses its link, preempts back, and
// hands over gracefully, removing its VIP.
func TestRunsWithTwoCapabilitiesOnly(t *testing.T) {
	testenv.Privileged(t)
	dir, wrapper := unprivileged(t, "net_admin", "net_raw")
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	// nobody must reach its config in the lab's directory (t.TempDir is
	// private to root).
	for _, d := range []string{l.Dir, filepath.Dir(l.Dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A notify hook records the capabilities it runs with: none, although
	// vipd itself has two (it clears its ambient set at start).
	hookCaps := filepath.Join(dir, "hook-caps")
	// A virtual route too: the routes manager's netlink works without
	// CAP_SYS_ADMIN.
	cfg := lab.VipdConfig(filepath.Join(dir, "n1.sock"), instance(150, true)) +
		fmt.Sprintf("    notify: {master: [/bin/sh, -c, 'grep ^Cap /proc/self/status > %s']}\n", hookCaps) +
		"    routes: [{to: 203.0.113.0/24, type: blackhole}]\n"
	if err := n1.StartVipd(wrapper, cfg); err != nil {
		t.Fatal(err)
	}
	startVipd(t, l, n2, instance(100, true))
	waitHolders(t, l, "the unprivileged n1 holds the VIP", lab.Only(n1))
	if uid := processUID(t, l, n1); uid != nobody {
		t.Fatalf("n1's vipd runs as uid %d, want %d", uid, nobody)
	}
	var routes []byte
	for i := 0; i < 100 && !strings.Contains(string(routes), "blackhole 203.0.113.0/24"); i++ {
		routes, _ = exec.Command("ip", "-n", n1.NS, "route", "show", "table", "all", "proto", "249").CombinedOutput()
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(routes), "blackhole 203.0.113.0/24") {
		t.Errorf("the unprivileged Master did not add its virtual route: %q", routes)
	}
	var caps []byte
	for i := 0; i < 100 && len(caps) == 0; i++ {
		caps, _ = os.ReadFile(hookCaps)
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(caps)), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "CapEff:" || f[0] == "CapPrm:" || f[0] == "CapAmb:") && strings.Trim(f[1], "0") != "" {
			t.Errorf("the notify hook runs with capabilities: %s", line)
		}
	}
	if len(caps) == 0 {
		t.Error("the master notify hook did not run")
	}

	if err := n1.CutLink(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n2 takes over from the cut-off n1", includes(n2))
	if err := n1.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, l, "n1 preempts back", lab.Only(n1))

	took, err := n1.Stop()
	if err != nil {
		t.Fatalf("stopping the unprivileged vipd: %v (after %v)", err, took)
	}
	waitHolders(t, l, "n2 takes over after the graceful stop", lab.Only(n2))
	if has, err := n1.Has(lab.VIP); err != nil || has {
		t.Fatalf("n1 still has the VIP after stopping (%v, %v): removing it needs only CAP_NET_ADMIN", has, err)
	}
}

// Without its capabilities vipd refuses to start and names what is missing.
func TestMissingCapabilityIsNamed(t *testing.T) {
	testenv.Privileged(t)
	dir, wrapper := unprivileged(t, "net_admin")
	cfg := filepath.Join(dir, "vipd.yaml")
	if err := os.WriteFile(cfg, []byte(lab.VipdConfig(filepath.Join(dir, "x.sock"), instance(100, true))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrapper, "run", "--config", cfg).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d (%v), want 1; output:\n%s", code, err, out)
	}
	if !strings.Contains(string(out), "missing CAP_NET_RAW") || strings.Contains(string(out), "CAP_NET_ADMIN (") {
		t.Errorf("output does not name exactly CAP_NET_RAW as missing:\n%s", out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return -1
}

// processUID reads the real uid of the vipd process running with the
// node's config file.
func processUID(t *testing.T, l *lab.Lab, n *lab.Node) int {
	t.Helper()
	cfg := filepath.Join(l.Dir, n.Name+".yaml")
	pids, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	pid := 0
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && filepath.Base(args[0]) == "vipd" && strings.Contains(string(b), cfg) {
			fmt.Sscanf(p, "/proc/%d/cmdline", &pid)
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no vipd process runs with %s", cfg)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			var uid int
			fmt.Sscan(f[1], &uid)
			return uid
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return -1
}
