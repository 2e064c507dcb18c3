package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// bgpVIP is announced as a /32; it is in no subnet of the lab, so the
// router reaches it only through the route vipd announces.
var bgpVIP = netip.MustParsePrefix("203.0.113.10/32")

// routerID and routerASN are the FRR router's, in the client namespace.
var routerID = lab.ClientAddr.Addr()

const routerASN = 65000

// TestBGPMasterMode: only the VRRP Master's path is at the router and
// installed; the router reaches the VIP through it; a SIGTERM withdraws
// it at once and the new Master's path replaces it.
func TestBGPMasterMode(t *testing.T) {
	l := newLab(t, 2)
	r := startFRR(t, l, l.Client.NS, routerASN, routerID)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for _, n := range l.Nodes {
		r.neighbor(routerASN, n.Addr.Addr(), 65001)
	}
	in := func(prio int) lab.Instance {
		in := instance(prio, true)
		in.VIPs = []netip.Prefix{bgpVIP}
		return in
	}
	if err := n1.StartVipd(vipdBin, bgpVipdConfig(l, n1, in(150), routerID, routerASN)); err != nil {
		t.Fatal(err)
	}
	if err := n2.StartVipd(vipdBin, bgpVipdConfig(l, n2, in(100), routerID, routerASN)); err != nil {
		t.Fatal(err)
	}
	took := r.waitNexthops(bgpVIP, "master n1 announces", n1.Addr.Addr())
	t.Logf("route installed %v after the start", took)
	// Stays the Master's alone.
	time.Sleep(2 * time.Second)
	r.waitNexthops(bgpVIP, "still only the Master's", n1.Addr.Addr())
	if v, _ := metric(t, n1, "vipd_bgp_routes_announced"); v != 1 {
		t.Errorf("n1 vipd_bgp_routes_announced = %v, want 1", v)
	}
	if v, _ := metric(t, n2, "vipd_bgp_routes_announced"); v != 0 {
		t.Errorf("n2 (Backup) vipd_bgp_routes_announced = %v, want 0", v)
	}
	if v, _ := metric(t, n1, "vipd_bgp_peer_state", "peer="+routerID.String()); v != 5 {
		t.Errorf("vipd_bgp_peer_state = %v, want 5", v)
	}
	ping := func() error {
		return exec.Command("ip", "netns", "exec", l.Client.NS, "ping", "-c", "1", "-W", "1", bgpVIP.Addr().String()).Run()
	}
	if err := ping(); err != nil {
		t.Errorf("the router does not reach the VIP through n1: %v", err)
	}

	// SIGTERM: n1 withdraws first; n2 becomes Master and announces.
	start := time.Now()
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(start)
	took = r.waitNexthops(bgpVIP, "failover to n2", n2.Addr.Addr())
	t.Logf("n1 exited %v after SIGTERM; the router had only n2's path %v later", stopped, took)
	// The session was closed with a CEASE NOTIFICATION (RFC 4486).
	if out, err := r.vtysh("show bgp neighbors " + n1.Addr.Addr().String()); err != nil || !strings.Contains(out, "Cease") {
		t.Errorf("the router saw no CEASE from n1 (%v):\n%s", err, tail(out, 30))
	}
	var err error
	for i := 0; i < 20; i++ {
		if err = ping(); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("the router does not reach the VIP through n2: %v", err)
	}
}

// TestBGPBadPeers: a router that expects another ASN and a peer that
// never answers get a clear log line and a metric; VRRP is unaffected.
func TestBGPBadPeers(t *testing.T) {
	l := newLab(t, 1)
	r := startFRR(t, l, l.Client.NS, routerASN, routerID)
	n := l.Nodes[0]
	r.neighbor(routerASN, n.Addr.Addr(), 65009) // vipd is 65001
	silent := netip.MustParseAddr("192.0.2.99")
	in := instance(150, true)
	in.VIPs = []netip.Prefix{bgpVIP}
	cfg := lab.VipdFile{ControlSocket: filepath.Join(l.Dir, n.Name+".sock"), MetricsListen: metricsListen, Instances: []lab.Instance{in}}.YAML() +
		"    bgp: true\nbgp:\n  asn: 65001\n  router_id: 192.0.2.11\n  peers:\n" +
		"    - {address: " + routerID.String() + ", asn: 65000}\n" +
		"    - {address: " + silent.String() + ", asn: 65000}\n"
	start := time.Now()
	if err := n.StartVipd(vipdBin, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := l.WaitHolders(ctx, bgpVIP, lab.Only(n)); err != nil {
		t.Fatalf("VRRP did not make n1 Master: %v", err)
	}
	t.Logf("n1 Master %v after the start, with both peers down", time.Since(start))
	var logged bool
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !logged; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(n.LogPath())
		logged = strings.Contains(string(b), "BGP session not established") && strings.Contains(string(b), `"peer":"`+routerID.String()+`"`)
	}
	if !logged {
		t.Error("no log line about the refused session")
	}
	for _, p := range []netip.Addr{routerID, silent} {
		v, ok := metric(t, n, "vipd_bgp_peer_state", "peer="+p.String())
		if !ok || v == 5 {
			t.Errorf("vipd_bgp_peer_state{peer=%s} = %v (present %v), want below 5", p, v, ok)
		}
	}
	if hops := r.nexthops(bgpVIP); len(hops) != 0 {
		t.Errorf("route at the router through a refused session: %v", hops)
	}
	if !n.Running() {
		t.Error("vipd exited")
	}
}

// TestBGPAnycast: every node whose check passes has a path and the
// router installs them as ECMP; a failing check withdraws that node's
// path; a SIGTERM withdraws at once and takes the VIP off lo; a restart
// announces again.
func TestBGPAnycast(t *testing.T) {
	l := newLab(t, 2)
	r := startFRR(t, l, l.Client.NS, routerASN, routerID)
	anyVIP := netip.MustParsePrefix("198.51.100.10/32")
	cfgOf := func(n *lab.Node) string {
		ok := filepath.Join(l.Dir, n.Name+".ok")
		if err := os.WriteFile(ok, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r.neighbor(routerASN, n.Addr.Addr(), 65001)
		return "control_socket: " + filepath.Join(l.Dir, n.Name+".sock") + "\n" +
			"metrics: {listen: \"" + metricsListen + "\"}\n" +
			"checks:\n  - {name: svc, interval: 100ms, fall: 2, rise: 1, exec: {command: [test, -e, " + ok + "]}}\n" +
			"instances:\n  - {name: api, interface: eth0, vrid: 51, advert_interval: 100ms, vips: [\"192.0.2.50/24\"]}\n" +
			"bgp:\n  asn: 65001\n  router_id: " + n.Addr.Addr().String() + "\n  peers: [{address: " + routerID.String() + ", asn: 65000, hold_time: 3s}]\n" +
			"anycast:\n  - {name: dns, vips: [\"" + anyVIP.String() + "\"], track_checks: [{check: svc}]}\n"
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	cfg1, cfg2 := cfgOf(n1), cfgOf(n2)
	if err := n1.StartVipd(vipdBin, cfg1); err != nil {
		t.Fatal(err)
	}
	if err := n2.StartVipd(vipdBin, cfg2); err != nil {
		t.Fatal(err)
	}
	took := r.waitNexthops(anyVIP, "both nodes' paths installed (ECMP)", n1.Addr.Addr(), n2.Addr.Addr())
	t.Logf("ECMP route installed %v after the starts", took)
	for i := 0; i < 4; i++ {
		if err := exec.Command("ip", "netns", "exec", l.Client.NS, "ping", "-c", "1", "-W", "1", anyVIP.Addr().String()).Run(); err != nil {
			t.Errorf("the router does not reach the anycast VIP: %v", err)
		}
	}

	// n1's check fails: its path goes (fall 2 × interval 100ms).
	start := time.Now()
	if err := os.Remove(filepath.Join(l.Dir, n1.Name+".ok")); err != nil {
		t.Fatal(err)
	}
	r.waitNexthops(anyVIP, "n1's path withdrawn after its check failed", n2.Addr.Addr())
	t.Logf("check failure → route gone from the router: %v (fall × interval = 200ms, plus the check's run)", time.Since(start))
	if onLo(t, n1, anyVIP) {
		t.Error("the VIP stayed on n1's lo after its check failed")
	}

	// SIGTERM n2: withdrawn at once, off lo.
	start = time.Now()
	if _, err := n2.Stop(); err != nil {
		t.Fatal(err)
	}
	r.waitNexthops(anyVIP, "n2's path withdrawn at its stop")
	t.Logf("SIGTERM → route gone from the router: %v (including the exit)", time.Since(start))
	if onLo(t, n2, anyVIP) {
		t.Error("the VIP stayed on n2's lo after its stop")
	}

	// Restart: announced again.
	if err := n2.StartVipd(vipdBin, cfg2); err != nil {
		t.Fatal(err)
	}
	r.waitNexthops(anyVIP, "n2 announces again after a restart", n2.Addr.Addr())
	if v, ok := metric(t, n2, "vipd_bgp_routes_announced"); !ok || v != 1 {
		t.Errorf("n2 vipd_bgp_routes_announced = %v (present %v), want 1", v, ok)
	}

	// SIGKILL leaves the VIP on lo; vipd cleanup removes it.
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	if !onLo(t, n2, anyVIP) {
		t.Fatal("the VIP is not on lo after a SIGKILL: nothing for cleanup to do")
	}
	if out, err := exec.Command("ip", "netns", "exec", n2.NS, vipdBin, "cleanup", "--config", filepath.Join(l.Dir, n2.Name+".yaml")).CombinedOutput(); err != nil {
		t.Fatalf("vipd cleanup: %v: %s", err, out)
	}
	if onLo(t, n2, anyVIP) {
		t.Error("the VIP is still on lo after vipd cleanup")
	}
}

// onLo says whether p's address is on n's lo.
func onLo(t *testing.T, n *lab.Node, p netip.Prefix) bool {
	t.Helper()
	out, err := exec.Command("ip", "-n", n.NS, "-o", "addr", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, out)
	}
	return strings.Contains(string(out), " "+p.Addr().String()+"/")
}

// TestBGPIPv6: a /128 anycast VIP over an IPv6 session reaches FRR's
// IPv6 table with the node as next hop.
func TestBGPIPv6(t *testing.T) {
	testenvLab := func() *lab.Lab {
		l, err := lab.New(lab.Config{Nodes: 1, Dir: t.TempDir(), IPv6: true})
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("lab %s, the nodes' logs end with:\n%s", l.Prefix, l.LogTails(40))
			}
			l.Close()
		})
		return l
	}
	testenv.Privileged(t)
	l := testenvLab()
	r := startFRR(t, l, l.Client.NS, routerASN, routerID)
	n := l.Nodes[0]
	peer6 := lab.ClientAddr6.Addr()
	node6 := lab.NodeAddr6(1).Addr()
	r.configure(fmt.Sprintf("router bgp %d", routerASN), fmt.Sprintf("neighbor %s remote-as 65001", node6),
		fmt.Sprintf("neighbor %s timers connect 1", node6),
		"address-family ipv6 unicast", fmt.Sprintf("neighbor %s activate", node6), "exit-address-family")
	vip6 := netip.MustParsePrefix("2001:db8:ffff::10/128")
	cfg := "control_socket: " + filepath.Join(l.Dir, n.Name+".sock") + "\n" +
		"instances:\n  - {name: api, interface: eth0, vrid: 51, advert_interval: 100ms, vips: [\"192.0.2.50/24\"]}\n" +
		"bgp:\n  asn: 65001\n  router_id: " + n.Addr.Addr().String() + "\n  peers: [{address: \"" + peer6.String() + "\", asn: 65000, source: \"" + node6.String() + "\"}]\n" +
		"anycast:\n  - {name: dns6, vips: [\"" + vip6.String() + "\"]}\n"
	if err := n.StartVipd(vipdBin, cfg); err != nil {
		t.Fatal(err)
	}
	var hops []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if hops = r.nexthops6(vip6); len(hops) > 0 {
			break
		}
	}
	if len(hops) != 1 {
		t.Fatalf("next hops of %s at the router: %v, want the node's", vip6, hops)
	}
	t.Logf("next hop %s", hops[0])
	if err := exec.Command("ip", "netns", "exec", l.Client.NS, "ping", "-6", "-c", "1", "-W", "2", vip6.Addr().String()).Run(); err != nil {
		t.Errorf("the router does not reach %s: %v", vip6.Addr(), err)
	}
}

// TestBGPBFD: with BFD at 100 ms × 3 on both sides, a SIGKILLed node's
// path leaves the router within the BFD detection time, long before the
// 3 s hold time; and at the start the session comes up once and stays.
func TestBGPBFD(t *testing.T) {
	l := newLab(t, 2)
	r := startFRRWith(t, lab.FRRConfig{NS: l.Client.NS, Dir: filepath.Join(l.Dir, "frr"), ASN: routerASN, RouterID: routerID,
		BFD: true, BFDInterval: 100 * time.Millisecond, BFDMultiplier: 3})
	anyVIP := netip.MustParsePrefix("198.51.100.20/32")
	cfgOf := func(n *lab.Node) string {
		r.neighbor(routerASN, n.Addr.Addr(), 65001)
		if err := r.NeighborBFD(n.Addr.Addr()); err != nil {
			t.Fatal(err)
		}
		return "control_socket: " + filepath.Join(l.Dir, n.Name+".sock") + "\n" +
			"metrics: {listen: \"" + metricsListen + "\"}\n" +
			"instances:\n  - {name: api, interface: eth0, vrid: 51, advert_interval: 100ms, vips: [\"192.0.2.50/24\"]}\n" +
			"bgp:\n  asn: 65001\n  router_id: " + n.Addr.Addr().String() + "\n" +
			"  peers: [{address: " + routerID.String() + ", asn: 65000, hold_time: 3s, bfd: true, bfd_interval: 100ms, bfd_multiplier: 3}]\n" +
			"anycast:\n  - {name: dns, vips: [\"" + anyVIP.String() + "\"]}\n"
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for _, n := range l.Nodes {
		if err := n.StartVipd(vipdBin, cfgOf(n)); err != nil {
			t.Fatal(err)
		}
	}
	took := r.waitNexthops(anyVIP, "both nodes' paths", n1.Addr.Addr(), n2.Addr.Addr())
	t.Logf("ECMP route installed %v after the starts", took)
	// BFD up on both sides, and the paths stayed: no reset at the start.
	// FRR drops a session's routes at once when BFD says down, so a reset
	// shows as a missing path here.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range l.Nodes {
		for {
			if v, ok := metric(t, n, "vipd_bgp_peer_bfd_up", "peer="+routerID.String()); ok && v == 1 {
				break
			}
			if time.Now().After(deadline) {
				out, _ := r.vtysh("show bfd peers brief")
				t.Fatalf("%s: vipd_bgp_peer_bfd_up is not 1 after 10 s; FRR:\n%s", n.Name, out)
			}
			if h := r.nexthops(anyVIP); len(h) != 2 {
				t.Fatalf("a path left while BFD came up (a reset at the start): next hops %v", h)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	out, err := r.vtysh("show bfd peers brief")
	if err != nil || strings.Count(out, " up ") < 2 {
		t.Errorf("FRR's BFD sessions are not both up (%v):\n%s", err, out)
	}
	if out, err := r.vtysh("show bfd peer " + n1.Addr.Addr().String()); err == nil {
		t.Logf("FRR's BFD session with n1:\n%s", out)
	}
	// The reset at the start came before BFD was ever up (GoBGP's BFD
	// session expired or took the peer's Down as a failure): every
	// node's BFD came up before anything of its session went down. Not
	// a wait for longer: a machine busy enough to stall a node 300 ms
	// would make BFD at 100 ms × 3 do its job and fail the test.
	for _, n := range l.Nodes {
		b, _ := os.ReadFile(n.LogPath())
		log := string(b)
		up := strings.Index(log, `"msg":"BFD session up"`)
		for _, bad := range []string{`"msg":"Expired"`, "signaled BFD down", `"msg":"BGP session down"`} {
			if i := strings.Index(log, bad); i >= 0 && (up < 0 || i < up) {
				t.Errorf("%s: %s before BFD was up (a reset at the start):\n%s", n.Name, bad, tail(log, 20))
			}
		}
	}
	if h := r.nexthops(anyVIP); len(h) != 2 {
		t.Fatalf("next hops %v before the hang, want both nodes'", h)
	}

	// n1 hangs (SIGSTOP): its TCP connection stays open, so only BFD can
	// tell the router soon (the hold time is 3 s).
	pid, err := n1.PID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took = r.waitNexthops(anyVIP, "n1's path gone after it froze", n2.Addr.Addr())
	t.Logf("SIGSTOP → n1's path gone from the router in %v (BFD 100 ms × 3)", took)
	if took > 2*time.Second {
		t.Errorf("n1's path left %v after the SIGSTOP, want < 2 s with BFD (hold time 3 s)", took)
	}

	// SIGKILL n2: its kernel closes the connection, BFD or not.
	start := time.Now()
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	took = r.waitNexthops(anyVIP, "n2's path gone after its SIGKILL")
	t.Logf("SIGKILL → n2's path gone from the router in %v (%v after the signal)", took, time.Since(start))
	if took > 2*time.Second {
		t.Errorf("n2's path left %v after the SIGKILL, want < 2 s", took)
	}
}

// TestBGPWrongPassword: the router has another TCP MD5 password; the
// connection never completes, vipd says so and counts the attempts, and
// VRRP is unaffected.
func TestBGPWrongPassword(t *testing.T) {
	l := newLab(t, 1)
	r := startFRR(t, l, l.Client.NS, routerASN, routerID)
	n := l.Nodes[0]
	r.neighbor(routerASN, n.Addr.Addr(), 65001)
	r.configure(fmt.Sprintf("router bgp %d", routerASN), fmt.Sprintf("neighbor %s password router-secret", n.Addr.Addr()))
	in := instance(150, true)
	in.VIPs = []netip.Prefix{bgpVIP}
	cfg := bgpVipdConfig(l, n, in, routerID, routerASN)
	cfg = strings.Replace(cfg, "hold_time: 3s}", "hold_time: 3s, password: node-secret}", 1)
	start := time.Now()
	if err := n.StartVipd(vipdBin, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := l.WaitHolders(ctx, bgpVIP, lab.Only(n)); err != nil {
		t.Fatalf("VRRP did not make n1 Master: %v", err)
	}
	t.Logf("n1 Master %v after the start, with the session refused", time.Since(start))
	// Three attempts, each timing out after 4 s, 2 s then 5 s apart: about
	// 24 s.
	want := `"reason":"no answer from peer (wrong password or peer down)"`
	var logged bool
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline) && !logged; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(n.LogPath())
		logged = strings.Contains(string(b), want) && strings.Contains(string(b), `"peer":"`+routerID.String()+`"`)
	}
	if !logged {
		t.Errorf("no log line with %s after 45 s", want)
	} else {
		t.Logf("logged %v after the start", time.Since(start))
	}
	if v, ok := metric(t, n, "vipd_bgp_peer_connect_failures_total", "peer="+routerID.String()); !ok || v < 3 {
		t.Errorf("vipd_bgp_peer_connect_failures_total = %v (present %v), want ≥ 3", v, ok)
	}
	if v, ok := metric(t, n, "vipd_bgp_peer_state", "peer="+routerID.String()); !ok || v == 5 {
		t.Errorf("vipd_bgp_peer_state = %v (present %v), want below 5", v, ok)
	}
	if hops := r.nexthops(bgpVIP); len(hops) != 0 {
		t.Errorf("route at the router through a session with the wrong password: %v", hops)
	}
	if h, err := l.Holders(bgpVIP); err != nil || len(h) != 1 || h[0] != n {
		t.Errorf("VIP holders %v (%v), want n1", lab.Names(h), err)
	}
}
