package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// frr is lab.FRR failing t on errors.
type frr struct {
	*lab.FRR
	t *testing.T
}

// startFRR starts zebra and bgpd in ns as AS asn, router ID id; they are
// stopped and their directories removed when t ends.
func startFRR(t *testing.T, l *lab.Lab, ns string, asn uint32, id netip.Addr) *frr {
	t.Helper()
	return startFRRWith(t, lab.FRRConfig{NS: ns, Dir: filepath.Join(l.Dir, "frr"), ASN: asn, RouterID: id})
}

func startFRRWith(t *testing.T, cfg lab.FRRConfig) *frr {
	t.Helper()
	if !lab.FRRInstalled() {
		t.Skip("FRRouting is not installed (apt-get install frr)")
	}
	f, err := lab.StartFRR(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bgpd log:\n%s", f.LogTail("bgpd", 40))
			if cfg.BFD {
				t.Logf("bfdd log:\n%s", f.LogTail("bfdd", 20))
			}
		}
		f.Close()
	})
	return &frr{FRR: f, t: t}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (f *frr) vtysh(cmds ...string) (string, error) { return f.Vtysh(cmds...) }

// configure runs commands in configuration mode.
func (f *frr) configure(cmds ...string) {
	f.t.Helper()
	if err := f.Configure(cmds...); err != nil {
		f.t.Fatal(err)
	}
}

// neighbor adds a BGP neighbour of AS asn under router bgp asn0.
func (f *frr) neighbor(asn0 uint32, addr netip.Addr, asn uint32) {
	f.t.Helper()
	f.configure(fmt.Sprintf("router bgp %d", asn0), fmt.Sprintf("neighbor %s remote-as %d", addr, asn),
		fmt.Sprintf("neighbor %s timers connect 1", addr))
}

// nexthops lists the active next hops of the route to p installed in
// the router's table (zebra's view), sorted; none if there is no route.
func (f *frr) nexthops(p netip.Prefix) []string {
	f.t.Helper()
	hops, err := f.Nexthops(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return hops
}

// nexthops6 is nexthops in the IPv6 table.
func (f *frr) nexthops6(p netip.Prefix) []string {
	f.t.Helper()
	return f.nexthops(p)
}

// waitNexthops waits until the router's route to p has exactly want.
func (f *frr) waitNexthops(p netip.Prefix, what string, want ...netip.Addr) time.Duration {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	took, err := f.WaitNexthops(ctx, p, want...)
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
	return took
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
