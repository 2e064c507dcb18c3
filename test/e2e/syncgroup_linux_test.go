package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The sync group of these tests: a front VIP on segment 0 (eth0) and a
// back gateway VIP on segment 1 (eth1), one instance each.
var (
	frontVIP = lab.VIP
	backVIP  = netip.MustParsePrefix("198.51.100.50/24")
)

// TestSyncGroup: a front and a back instance in one sync group on each of
// two nodes. A check failing on one member of the Master moves both; so
// does a cable cut on one interface; each time they come back together;
// the group's hooks fire in order, and a stop hands both over at once.
func TestSyncGroup(t *testing.T) {
	r := newRigOf(t, frontVIP, lab.Config{Nodes: 2, Segments: 2})
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	dir := t.TempDir()
	logFile := filepath.Join(dir, "group.log")
	notify := svcWriteScript(t, dir, "notify.sh", fmt.Sprintf("printf '%%s\\n' \"$*\" >> %s\n", logFile))
	backend := svcStartHealthHTTP(t, n1.NS, "127.0.0.1:8081")

	config := func(prio int, tracked bool) svcConfig {
		front := svcInst(prio, true)
		front.Name = "front"
		back := svcInst(prio, true)
		back.Name, back.Interface, back.VRID, back.VIPs = "back", "eth1", vrid+1, []netip.Prefix{backVIP}
		c := svcConfig{Metrics: metricsListen, Instances: []svcInstance{front, back},
			SyncGroups: []svcGroup{{Name: "gw", Instances: []string{"front", "back"}}}}
		if tracked {
			c.Checks = []svcCheck{{Name: "backend", HTTP: backend.URL, InitialUp: true}}
			c.Instances[1].TrackChecks = []svcTrack{{Name: "backend"}}
			c.SyncGroups[0].Notify = &svcNotify{Command: []string{notify}}
		}
		return c
	}
	// holders says which nodes hold the front VIP on eth0 and the back
	// VIP on eth1.
	holders := func() (front, back []string) {
		for _, n := range l.Nodes {
			for _, x := range []struct {
				iface string
				vip   netip.Prefix
				into  *[]string
			}{{"eth0", frontVIP, &front}, {"eth1", backVIP, &back}} {
				as, err := n.Addrs(x.iface)
				if err != nil {
					t.Fatalf("harness: %v", err)
				}
				if slices.ContainsFunc(as, func(p netip.Prefix) bool { return p.Addr() == x.vip.Addr() }) {
					*x.into = append(*x.into, n.Name)
				}
			}
		}
		return front, back
	}
	both := func(what string, n *lab.Node) {
		t.Helper()
		svcWaitFor(t, what, patience, func() (bool, string) {
			f, b := holders()
			return slices.Equal(f, []string{n.Name}) && slices.Equal(b, []string{n.Name}),
				fmt.Sprintf("front VIP on %v, back VIP on %v", f, b)
		})
	}
	log := svcExpectLines(t, logFile)
	hooks := log.expect
	states := func(n *lab.Node, want string) {
		t.Helper()
		for _, name := range []string{"front", "back"} {
			st := svcWaitState(t, svcSocket(l, n), name, want)
			if st.SyncGroup != "gw" {
				t.Errorf("%s: status of %s says sync group %q, want gw", n.Name, name, st.SyncGroup)
			}
		}
	}

	startSvc(t, l, n1, config(150, true))
	both("n1 holds both VIPs", n1)
	hooks("n1's group reports backup, then master", "GROUP gw BACKUP", "GROUP gw MASTER")
	startSvc(t, l, n2, config(100, false))
	states(n2, "backup")

	// A check failing on the back member moves the front one too.
	backend.set(svcHealthFail)
	failed := time.Now()
	both("n2 takes both over when n1's back check fails", n2)
	t.Logf("n2 holds both VIPs %v after n1's back check began failing (fall %d × %v)", time.Since(failed).Round(time.Millisecond), svcCheckFall, svcCheckInterval)
	states(n1, "fault")
	hooks("n1's group reports fault", "GROUP gw FAULT")
	backend.set(svcHealthOK)
	both("n1 takes both back", n1)
	hooks("n1's group reports backup, then master", "GROUP gw BACKUP", "GROUP gw MASTER")

	// A cable cut on the back interface moves the front VIP too.
	if err := n1.CutLinkOf("eth1"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	cut := time.Now()
	both("n2 takes both over when n1's back cable is cut", n2)
	t.Logf("n2 holds both VIPs %v after n1's back cable was cut", time.Since(cut).Round(time.Millisecond))
	states(n1, "fault")
	hooks("n1's group reports fault", "GROUP gw FAULT")
	if err := n1.RestoreLinkOf("eth1"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	both("n1 takes both back after the cable is back", n1)
	hooks("n1's group reports backup, then master", "GROUP gw BACKUP", "GROUP gw MASTER")

	// A stop hands both over, each at its Skew_Time.
	stopped := time.Now()
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	both("n2 takes both over after n1's stop", n2)
	if d := time.Since(stopped); d > 2*time.Second {
		t.Errorf("n2 took %v to take both over after n1's stop", d.Round(time.Millisecond))
	} else {
		t.Logf("n2 holds both VIPs %v after n1's stop began", d.Round(time.Millisecond))
	}
	// Every member announces its VIPs on entering Master (keepalived #285
	// lost that for all but one).
	m := scrapeMetrics(t, n2)
	for _, name := range []string{"front", "back"} {
		if got := m.sum("vipd_announcements_sent_total", "instance", name); got == 0 {
			t.Errorf("n2's %s sent no announcement as Master", name)
		}
	}
	if got := m.sum("vipd_sync_group_state", "group", "gw", "state", "master"); got != 1 {
		t.Errorf("n2: vipd_sync_group_state{group=gw,state=master} = %v, want 1", got)
	}
	if got, w := svcReadLines(t, logFile), append(log.want, "GROUP gw STOP"); !slices.Equal(got, w) {
		t.Errorf("group hooks after n1 stopped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
}
