package e2e

// vipd owns the kernel state it depends on: its VIPs, its interface and the
// interface's primary address. Someone else changing them behind its back
// (an administrator, a network manager, a script) must be noticed from the
// kernel's notifications and repaired or followed, not left to drift until
// the next failover.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testenv"
)

// repairWithin bounds how long vipd may take to notice and undo a change to
// the kernel state it owns: it is told at once, by netlink.
const repairWithin = 2 * time.Second

// Log phrases of the repairs: part of the contract, as the metrics' names are.
const (
	phraseVIPMissing    = "VIP missing"
	phraseVIPOnNonMastr = "VIP present on a non-Master"
)

// ksStartPair starts n1 (priority 150) and n2 (priority 100), both
// preempting, each with a metrics listener (svcMetricsAddr(0) and (1)), and
// waits until n1 alone holds the VIP and n2 is a Backup that knows n1 as its
// Master.
func ksStartPair(t *testing.T, l *lab.Lab) {
	t.Helper()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ksLogOnFailure(t, l)
	startSvc(t, l, n1, svcConfig{Metrics: svcMetricsAddr(0), Instances: []svcInstance{svcInst(150, true)}})
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	startSvc(t, l, n2, svcConfig{Metrics: svcMetricsAddr(1), Instances: []svcInstance{svcInst(100, true)}})
	svcWaitFor(t, "n2 is a Backup of n1", patience, func() (bool, string) {
		st := svcStatus(t, svcSocket(l, n2), "api")
		return st.State == "backup" && st.Master == svcAddr(n1.Addr), fmt.Sprintf("%+v", st)
	})
	if st := svcStatus(t, svcSocket(l, n1), "api"); st.State != "master" {
		t.Fatalf("n1 holds the VIP but reports %+v, want master", st)
	}
}

// ksWithin polls cond every 10ms until it holds or deadline passes (it is
// asked at least once), and otherwise records a failure with what and cond's
// last explanation, then lets the test go on: every part of the contract that
// is missing is reported, not only the first.
func ksWithin(t *testing.T, deadline time.Time, what string, cond func() (bool, string)) bool {
	t.Helper()
	for {
		ok, why := cond()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("not so by the deadline: %s: %s", what, why)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ksLogOnFailure logs, when t fails, each node's state changes and the end
// of its log without the control requests that the tests' status polling
// floods it with.
func ksLogOnFailure(t *testing.T, l *lab.Lab) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range l.Nodes {
			cs, _ := n.StateChanges()
			log, _ := n.Log()
			var lines []string
			for _, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
				if !strings.Contains(line, `"control request"`) {
					lines = append(lines, line)
				}
			}
			lines = lines[max(0, len(lines)-15):]
			t.Logf("%s's state changes: %+v\n%s's log without control requests ends with:\n%s", n.Name, cs, n.Name, strings.Join(lines, "\n"))
		}
	})
}

// ksCounter is the sum of n's samples of a counter with labels kv (0 when
// there is none yet).
func ksCounter(t *testing.T, n *lab.Node, i int, name string, kv ...string) float64 {
	t.Helper()
	var sum float64
	for _, s := range svcMustScrape(t, n, svcMetricsAddr(i)).find(name, kv...) {
		sum += s.Value
	}
	return sum
}

// ksSettled waits until n's counter (as ksCounter) has stopped moving for
// quiet, and returns its value: a new Master's gratuitous ARP rounds are
// over, say.
func ksSettled(t *testing.T, n *lab.Node, i int, quiet time.Duration, name string, kv ...string) float64 {
	t.Helper()
	last, since := ksCounter(t, n, i, name, kv...), time.Now()
	svcWaitFor(t, fmt.Sprintf("%s: %s%v stops moving for %v", n.Name, name, kv, quiet), patience, func() (bool, string) {
		if v := ksCounter(t, n, i, name, kv...); v != last {
			last, since = v, time.Now()
		}
		return time.Since(since) >= quiet, fmt.Sprintf("%v, last changed %v ago", last, time.Since(since).Round(time.Millisecond))
	})
	return last
}

// ksLogLines counts the lines of n's vipd log (not the lab's own) that
// contain phrase.
func ksLogLines(t *testing.T, n *lab.Node, phrase string) int {
	t.Helper()
	log, err := n.Log()
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "=== lab:") && strings.Contains(line, phrase) {
			count++
		}
	}
	return count
}

// ksIfindex is the index of dev in namespace ns, and whether it exists.
func ksIfindex(t *testing.T, ns, dev string) (int, bool) {
	t.Helper()
	out, err := runIP("-n", ns, "-j", "link", "show", "dev", dev)
	if err != nil {
		if strings.Contains(out, "does not exist") {
			return 0, false
		}
		t.Fatalf("harness: %v", err)
	}
	var ls []struct {
		Ifindex int `json:"ifindex"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("harness: ip -j link show %s in %s: %v: %s", dev, ns, err, out)
	}
	return ls[0].Ifindex, true
}

// ksMaster is the bridge dev is a port of in ns, "" for none.
func ksMaster(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := runIP("-n", ns, "-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var ls []struct {
		Master string `json:"master"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("harness: ip -j link show %s in %s: %v: %s", dev, ns, err, out)
	}
	return ls[0].Master
}

// ksIPv4 is the IPv4 addresses (with their lengths) on n's eth0.
func ksIPv4(t *testing.T, n *lab.Node) []string {
	t.Helper()
	out, err := n.IP("-j", "-4", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var ls []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("harness: ip -j -4 addr show on %s: %v: %s", n.Name, err, out)
	}
	var addrs []string
	for _, a := range ls[0].AddrInfo {
		addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	return addrs
}

// runIP runs ip(8) and returns its combined output, and an error that
// carries it.
func runIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// TestVIPRemovedFromMasterIsRestored deletes the VIP from the Master's
// interface by hand: the Master must put it back and announce it again, at
// once and without a state change, rather than answer nobody until the next
// failover.
func TestVIPRemovedFromMasterIsRestored(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ksStartPair(t, l)
	garp := ksSettled(t, n1, 0, 500*time.Millisecond, "vipd_announcements_sent_total", "instance", "api", "kind", "garp")
	added := ksCounter(t, n1, 0, "vipd_vip_repairs_total", "instance", "api", "action", "added")
	logged := ksLogLines(t, n1, phraseVIPMissing)

	deleted := time.Now()
	if _, err := n1.IP("addr", "del", lab.VIP.String(), "dev", "eth0"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	// The harness did delete it: the repair cannot have happened within
	// the same netlink round trip.
	t.Logf("deleted %v from n1's eth0; addresses now %v", lab.VIP, ksIPv4(t, n1))

	deadline := deleted.Add(repairWithin)
	if ksWithin(t, deadline, "n1 has the VIP back", func() (bool, string) {
		ok, err := n1.Has(lab.VIP)
		return err == nil && ok, fmt.Sprintf("n1's eth0 has %v (%v)", ksIPv4(t, n1), err)
	}) {
		t.Logf("the VIP was back on n1 %v after it was deleted", time.Since(deleted).Round(time.Millisecond))
	}
	ksWithin(t, deadline, "n1 sent gratuitous ARP for the VIP again", func() (bool, string) {
		v := ksCounter(t, n1, 0, "vipd_announcements_sent_total", "instance", "api", "kind", "garp")
		return v > garp, fmt.Sprintf("vipd_announcements_sent_total{instance=api,kind=garp} = %v, was %v before the deletion", v, garp)
	})
	ksWithin(t, deadline, "n1 counted the repair", func() (bool, string) {
		v := ksCounter(t, n1, 0, "vipd_vip_repairs_total", "instance", "api", "action", "added")
		return v > added && v >= 1, fmt.Sprintf(`vipd_vip_repairs_total{instance="api",action="added"} = %v, was %v before the deletion`, v, added)
	})
	ksWithin(t, deadline, fmt.Sprintf("n1 logged %q", phraseVIPMissing), func() (bool, string) {
		c := ksLogLines(t, n1, phraseVIPMissing)
		return c > logged, fmt.Sprintf("%d lines with %q, %d before the deletion", c, phraseVIPMissing, logged)
	})
	if st := svcStatus(t, svcSocket(l, n1), "api"); st.State != "master" {
		t.Errorf("n1 after the repair: %+v, want still master", st)
	}
	if cs := stateChangesTo(t, n1, "", deleted); len(cs) != 0 {
		t.Errorf("n1 changed state after the VIP was deleted: %+v; a repair is no transition", cs)
	}
	if ok, err := n2.Has(lab.VIP); err != nil || ok {
		t.Errorf("n2 holds the VIP (%v) while n1 is Master", err)
	}
	if !t.Failed() {
		holdSteady(t, l, n1, 300*time.Millisecond)
	}
}

// TestVIPAddedOnBackupIsRemoved adds the VIP to the Backup's interface by
// hand: two hosts answering ARP for it would split the clients, so the
// Backup must take it off again, and the Master keep it.
func TestVIPAddedOnBackupIsRemoved(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ksStartPair(t, l)
	removed := ksCounter(t, n2, 1, "vipd_vip_repairs_total", "instance", "api", "action", "removed")
	logged := ksLogLines(t, n2, phraseVIPOnNonMastr)

	added := time.Now()
	if _, err := n2.IP("addr", "add", lab.VIP.String(), "dev", "eth0"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("added %v to n2's eth0; addresses now %v", lab.VIP, ksIPv4(t, n2))

	deadline := added.Add(repairWithin)
	if ksWithin(t, deadline, "the VIP is gone from n2", func() (bool, string) {
		ok, err := n2.Has(lab.VIP)
		return err == nil && !ok, fmt.Sprintf("n2's eth0 has %v (%v)", ksIPv4(t, n2), err)
	}) {
		t.Logf("the VIP was gone from n2 %v after it was added", time.Since(added).Round(time.Millisecond))
	}
	ksWithin(t, deadline, "n2 counted the repair", func() (bool, string) {
		v := ksCounter(t, n2, 1, "vipd_vip_repairs_total", "instance", "api", "action", "removed")
		return v > removed && v >= 1, fmt.Sprintf(`vipd_vip_repairs_total{instance="api",action="removed"} = %v, was %v before`, v, removed)
	})
	ksWithin(t, deadline, fmt.Sprintf("n2 logged %q", phraseVIPOnNonMastr), func() (bool, string) {
		c := ksLogLines(t, n2, phraseVIPOnNonMastr)
		return c > logged, fmt.Sprintf("%d lines with %q, %d before the VIP was added", c, phraseVIPOnNonMastr, logged)
	})
	if ok, err := n1.Has(lab.VIP); err != nil || !ok {
		t.Errorf("n1, the Master, lost the VIP (%v): %v", err, ksIPv4(t, n1))
	}
	for i, n := range []*lab.Node{n1, n2} {
		want := []string{"master", "backup"}[i]
		if st := svcStatus(t, svcSocket(l, n), "api"); st.State != want {
			t.Errorf("%s: %+v, want still %s", n.Name, st, want)
		}
		if cs := stateChangesTo(t, n, "", added); len(cs) != 0 {
			t.Errorf("%s changed state after the VIP was added on n2: %+v", n.Name, cs)
		}
	}
	if !t.Failed() {
		holdSteady(t, l, n1, 300*time.Millisecond)
	}
}

// ksDeleteEth0 deletes n's eth0; its veth peer, the bridge port named after
// the node in the switch, goes with it.
func ksDeleteEth0(t *testing.T, l *lab.Lab, n *lab.Node) {
	t.Helper()
	if _, err := n.IP("link", "del", "eth0"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if _, ok := ksIfindex(t, n.NS, "eth0"); ok {
		t.Fatalf("harness: %s's eth0 still exists after ip link del", n.Name)
	}
	if _, ok := ksIfindex(t, l.Switch, n.Name); ok {
		t.Fatalf("harness: bridge port %s still exists after its peer eth0 was deleted", n.Name)
	}
}

// ksRecreateEth0 builds n's eth0 again as the lab first built it (same name,
// MAC and address, its peer plugged into the bridge), checks that it reaches
// the other node, and returns its new index.
func ksRecreateEth0(t *testing.T, l *lab.Lab, n *lab.Node) int {
	t.Helper()
	// The lab names a node's bridge port after the node.
	port := n.Name
	for _, args := range [][]string{
		{"-n", n.NS, "link", "add", "eth0", "address", n.MAC().String(), "type", "veth", "peer", "name", port, "netns", l.Switch},
		{"-n", n.NS, "addr", "add", n.Addr.String(), "dev", "eth0"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", l.Switch, "link", "set", port, "master", "br0"},
		{"-n", l.Switch, "link", "set", port, "up"},
	} {
		if _, err := runIP(args...); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	if m := ksMaster(t, l.Switch, port); m != "br0" {
		t.Fatalf("harness: re-created port %s is in %q, want br0", port, m)
	}
	idx, ok := ksIfindex(t, n.NS, "eth0")
	if !ok {
		t.Fatalf("harness: %s's eth0 missing after re-creation", n.Name)
	}
	// The new link carries traffic: whatever fails after this is vipd's.
	testenv.WaitLink(t, n.NS, "eth0", "UP")
	peer := l.Nodes[0]
	if peer == n {
		peer = l.Nodes[1]
	}
	addr := netip.AddrPortFrom(peer.Addr.Addr(), 7071).String()
	ln, err := svcListenIn(peer.NS, addr)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := n.Dial(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: the re-created eth0 of %s does not reach %s: %v", n.Name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return idx
}

// TestInterfaceDeletedAndRecreated deletes the Master's VRRP interface and
// creates it again under the same name, as a network manager or a
// hypervisor replugging a NIC does. Without its interface n1 is in FAULT
// (never Master: it cannot send an advert or hold a VIP) and n2 takes over;
// the new interface has a new index, so sockets bound to the old one are
// useless: n1 must open new ones and, preempting at priority 150, take the
// VIP back.
func TestInterfaceDeletedAndRecreated(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ksStartPair(t, l)
	oldIndex, _ := ksIfindex(t, n1.NS, "eth0")

	deleted := time.Now()
	ksDeleteEth0(t, l, n1)
	t.Logf("deleted n1's eth0 (index %d)", oldIndex)

	// state is n1's status and its vipd_instance_state{state="master"}.
	state := func() (string, float64, string) {
		insts, err := svcStatusOf(svcSocket(l, n1))
		if err != nil {
			return "", -1, err.Error()
		}
		st := ""
		for _, in := range insts {
			if in.Name == "api" {
				st = in.State
			}
		}
		ps, err := svcScrape(n1.NS, svcMetricsAddr(0))
		if err != nil {
			return st, -1, err.Error()
		}
		var master float64
		for _, s := range ps.find("vipd_instance_state", "instance", "api", "state", "master") {
			master += s.Value
		}
		return st, master, fmt.Sprintf("status %+v, vipd_instance_state{state=master} = %v", insts, master)
	}
	if ksWithin(t, deleted.Add(repairWithin), "n1 reports fault without its interface", func() (bool, string) {
		st, master, why := state()
		return st == "fault" && master == 0, why
	}) {
		t.Logf("n1 reported fault %v after its interface was deleted", time.Since(deleted).Round(time.Millisecond))
	}
	ksWithin(t, time.Now().Add(patience), "n2 becomes Master and holds the VIP", func() (bool, string) {
		st := svcStatus(t, svcSocket(l, n2), "api")
		ok, err := n2.Has(lab.VIP)
		return st.State == "master" && err == nil && ok, fmt.Sprintf("n2: %+v, has the VIP: %v (%v)", st, ok, err)
	})
	// Gone for a while: n1 stays in fault throughout, at every sample.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if st, master, why := state(); st != "fault" || master != 0 {
			t.Errorf("n1 without its interface: %s; want fault, never Master", why)
			break
		}
		if _, ok := ksIfindex(t, n1.NS, "eth0"); ok {
			t.Fatal("harness: n1's eth0 came back by itself")
		}
	}

	recreated := time.Now()
	newIndex := ksRecreateEth0(t, l, n1)
	if newIndex == oldIndex {
		t.Fatalf("harness: the re-created eth0 has the old index %d; the test needs a new one", oldIndex)
	}
	t.Logf("re-created n1's eth0 with index %d (was %d)", newIndex, oldIndex)
	for _, c := range stateChangesTo(t, n1, "master", deleted) {
		if c.Time.Before(recreated) {
			t.Errorf("n1 became Master while its interface was gone: %+v", c)
		}
	}

	if ksWithin(t, recreated.Add(5*time.Second), "n1 is Master again on its new interface and n2 is Backup", func() (bool, string) {
		s1, s2 := svcStatus(t, svcSocket(l, n1), "api"), svcStatus(t, svcSocket(l, n2), "api")
		h, err := l.Holders(lab.VIP)
		return s1.State == "master" && s2.State == "backup" && err == nil && len(h) == 1 && h[0] == n1,
			fmt.Sprintf("n1 %+v, n2 %+v, holders %s (%v)", s1, s2, lab.Names(h), err)
	}) {
		t.Logf("n1 was Master again %v after its interface was re-created", time.Since(recreated).Round(time.Millisecond))
	}
	if st := svcStatus(t, svcSocket(l, n2), "api"); st.Master != svcAddr(n1.Addr) {
		t.Errorf("n2 after n1 came back: %+v, want n1 (%s) as its Master: n1's adverts must leave the new interface", st, svcAddr(n1.Addr))
	}
	if !t.Failed() {
		holdSteady(t, l, n1, 500*time.Millisecond)
	}
}

// TestPrimaryAddressChange renumbers the Master's interface: a new address
// from the same subnet, then the old one deleted. The Master's adverts must
// come from the new primary address at once (RFC 9568 §5.1.1.1: the source
// is the primary address of the interface), so that the Backups, which show
// the Master by its address, and unicast peers, which check it, follow.
func TestPrimaryAddressChange(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ksStartPair(t, l)
	renumbered := netip.MustParsePrefix("192.0.2.21/24")
	// Deleting a subnet's primary address deletes its secondaries too (the
	// VIP and the new address) unless promote_secondaries is set. vipd sets
	// it on its interfaces; the harness makes sure, so that this test is
	// about the primary address and nothing else.
	if _, err := runIP("netns", "exec", n1.NS, "sysctl", "-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1"); err != nil {
		t.Fatalf("harness: %v", err)
	}

	changed := time.Now()
	if _, err := n1.IP("addr", "add", renumbered.String(), "dev", "eth0"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if _, err := n1.IP("addr", "del", n1.Addr.String(), "dev", "eth0"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	addrs := ksIPv4(t, n1)
	t.Logf("n1's eth0 renumbered from %v to %v; addresses now %v", n1.Addr, renumbered, addrs)
	if strings.Contains(strings.Join(addrs, " "), n1.Addr.String()) || !strings.Contains(strings.Join(addrs, " "), renumbered.String()) {
		t.Fatalf("harness: n1's eth0 has %v, want %v and not %v", addrs, renumbered, n1.Addr)
	}

	want := renumbered.Addr().String()
	if ksWithin(t, changed.Add(repairWithin), "n2 knows n1 by its new address", func() (bool, string) {
		st := svcStatus(t, svcSocket(l, n2), "api")
		return st.Master == want, fmt.Sprintf("n2: %+v, want master %s", st, want)
	}) {
		t.Logf("n2 showed n1 as %s %v after the change", want, time.Since(changed).Round(time.Millisecond))
	}
	ksWithin(t, changed.Add(repairWithin), "n2's vipd_instance_master_info follows", func() (bool, string) {
		m := masterInfo(svcMustScrape(t, n2, svcMetricsAddr(1)))
		return len(m) == 1 && m[0] == want, fmt.Sprintf("vipd_instance_master_info{instance=api} = 1 for %v, want [%s]", m, want)
	})
	// Nothing else moved: n1 is still Master with the VIP, n2 still Backup.
	for i, n := range []*lab.Node{n1, n2} {
		wantState := []string{"master", "backup"}[i]
		if st := svcStatus(t, svcSocket(l, n), "api"); st.State != wantState {
			t.Errorf("%s after the renumbering: %+v, want %s", n.Name, st, wantState)
		}
		if cs := stateChangesTo(t, n, "", changed); len(cs) != 0 {
			t.Errorf("%s changed state after n1 was renumbered: %+v", n.Name, cs)
		}
	}
	if !t.Failed() {
		holdSteady(t, l, n1, 300*time.Millisecond)
	}
}
