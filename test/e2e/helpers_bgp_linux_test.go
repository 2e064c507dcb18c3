package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// frr is FRRouting's zebra and bgpd running in a lab namespace, with a
// pathspace of their own (-N) so that several labs never share one.
type frr struct {
	t    *testing.T
	ns   string
	name string // pathspace
	dir  string
}

// startFRR starts zebra and bgpd in ns as AS asn, router ID id; they are
// stopped and their directories removed when t ends.
func startFRR(t *testing.T, l *lab.Lab, ns string, asn uint32, id netip.Addr) *frr {
	t.Helper()
	if _, err := os.Stat("/usr/lib/frr/bgpd"); err != nil {
		t.Skip("FRRouting is not installed (apt-get install frr)")
	}
	f := &frr{t: t, ns: ns, name: ns, dir: filepath.Join(l.Dir, "frr")}
	run := filepath.Join("/var/run/frr", f.name)
	etc := filepath.Join("/etc/frr", f.name)
	t.Cleanup(func() {
		for _, d := range []string{"bgpd", "zebra"} {
			b, err := os.ReadFile(filepath.Join(run, d+".pid"))
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
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(f.dir, "bgpd.log"))
			t.Logf("bgpd log:\n%s", tail(string(b), 40))
		}
		os.RemoveAll(run)
		os.RemoveAll(etc)
	})
	for _, d := range []string{run, etc, f.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("chown", "frr:frr", d).Run(); err != nil {
			t.Fatalf("chown %s: %v", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"zebra", "bgpd"} {
		out, err := exec.Command("ip", "netns", "exec", ns, "/usr/lib/frr/"+d, "-d", "-N", f.name,
			"--log", "file:"+filepath.Join(f.dir, d+".log")).CombinedOutput()
		if err != nil {
			t.Fatalf("starting %s: %v: %s", d, err, out)
		}
	}
	// bgpd answers vtysh once it is up.
	var err error
	for i := 0; i < 100; i++ {
		if _, err = f.vtysh("show bgp summary"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bgpd did not come up: %v", err)
	}
	f.configure(fmt.Sprintf("router bgp %d", asn),
		"bgp router-id "+id.String(),
		"no bgp ebgp-requires-policy",
		"no bgp network import-check",
		"address-family ipv4 unicast",
		"maximum-paths 8",
		"exit-address-family")
	return f
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (f *frr) vtysh(cmds ...string) (string, error) {
	args := []string{"-N", f.name}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %q: %w: %s", cmds, err, out)
	}
	return string(out), nil
}

// configure runs commands in configuration mode.
func (f *frr) configure(cmds ...string) {
	f.t.Helper()
	if _, err := f.vtysh(append([]string{"configure terminal"}, cmds...)...); err != nil {
		f.t.Fatal(err)
	}
}

// neighbor adds a BGP neighbour of AS asn under router bgp asn0.
func (f *frr) neighbor(asn0 uint32, addr netip.Addr, asn uint32) {
	f.configure(fmt.Sprintf("router bgp %d", asn0), fmt.Sprintf("neighbor %s remote-as %d", addr, asn),
		fmt.Sprintf("neighbor %s timers connect 1", addr))
}

// nexthops lists the active next hops of the route to p installed in
// the router's table (zebra's view), sorted; none if there is no route.
func (f *frr) nexthops(p netip.Prefix) []string {
	f.t.Helper()
	return f.routeNexthops("ip", p)
}

// nexthops6 is nexthops in the IPv6 table.
func (f *frr) nexthops6(p netip.Prefix) []string {
	f.t.Helper()
	return f.routeNexthops("ipv6", p)
}

func (f *frr) routeNexthops(family string, p netip.Prefix) []string {
	f.t.Helper()
	out, err := f.vtysh("show " + family + " route " + p.String() + " json")
	if err != nil {
		f.t.Fatal(err)
	}
	var routes map[string][]struct {
		Protocol string `json:"protocol"`
		Nexthops []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		f.t.Fatalf("show ip route json: %v: %s", err, out)
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
	return hops
}

// waitNexthops waits until the router's route to p has exactly want.
func (f *frr) waitNexthops(p netip.Prefix, what string, want ...netip.Addr) time.Duration {
	f.t.Helper()
	ws := make([]string, len(want))
	for i, a := range want {
		ws[i] = a.String()
	}
	slices.Sort(ws)
	start := time.Now()
	var got []string
	for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = f.nexthops(p); slices.Equal(got, ws) {
			return time.Since(start)
		}
	}
	f.t.Fatalf("%s: next hops of %s are %v, want %v", what, p, got, ws)
	return 0
}

// bgpVipdConfig is a vipd file for node n: the instance in with bgp:
// true, peering with the router at peer (AS peerASN) from AS 65001.
func bgpVipdConfig(l *lab.Lab, n *lab.Node, in lab.Instance, peer netip.Addr, peerASN uint32) string {
	f := lab.VipdFile{ControlSocket: filepath.Join(l.Dir, n.Name+".sock"), MetricsListen: metricsListen, Instances: []lab.Instance{in}}
	return f.YAML() + "    bgp: true\n" + fmt.Sprintf("bgp:\n  asn: 65001\n  router_id: %s\n  peers:\n    - {address: %s, asn: %d, hold_time: 3s}\n",
		n.Addr.Addr(), peer, peerASN)
}

// metric reads one series from n's metrics.
func metric(t *testing.T, n *lab.Node, name string, labels ...string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := n.Metrics(ctx, metricsListen)
	if err != nil {
		return 0, false
	}
	return lab.MetricValue(body, name, labels...)
}
