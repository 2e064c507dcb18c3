package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

var backVIP = netip.MustParsePrefix("192.0.2.60/24")

// groupConfig is two instances in sync group gw: front (VRID 51, vip,
// tracking check svc when tracked) and back (VRID 52, backVIP).
func groupConfig(prio uint8, tracked bool) *config.Config {
	front := instanceConfig(prio)
	front.Name, front.SyncGroup = "front", "gw"
	back := instanceConfig(prio)
	back.Name, back.VRID, back.VIPs, back.SyncGroup = "back", 52, []netip.Prefix{backVIP}, "gw"
	cfg := &config.Config{File: "test.yaml", Instances: []config.Instance{front, back},
		SyncGroups: []config.SyncGroup{{Name: "gw", Instances: []string{"front", "back"},
			Notify: config.Notify{Command: []string{"notify"}, Timeout: time.Second}}}}
	if tracked {
		cfg.Instances[0].TrackChecks = []config.TrackCheck{{Check: "svc"}}
		cfg.Checks = []config.Check{{Name: "svc", Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
			Fall: 2, Rise: 1, InitialUp: true, TCP: &config.TCPCheck{Address: "192.0.2.1:6443"}}}
	}
	return cfg
}

// both says host i alone holds both VIPs.
func both(i int, hs ...*host) func() bool {
	return func() bool {
		for j, h := range hs {
			if h.has(vip) != (i == j) || h.has(backVIP) != (i == j) {
				return false
			}
		}
		return true
	}
}

func states(n *node) string {
	var out []string
	for _, s := range n.d.Status() {
		out = append(out, s.Name+"="+s.State.String())
	}
	return strings.Join(out, " ")
}

// A check failing on one member moves both; the group's hooks say so in
// order; a stop hands both over.
func TestSyncGroupFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		svc := &fakeProbe{up: true}
		cmds := &commands{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], groupConfig(150, true), withProbe(svc), withCommands(cmds))
		n1 := startConfig(t, hs[1], groupConfig(100, false))
		waitFor(t, 3*time.Second, "host 0 to hold both VIPs", both(0, hs...))
		if got := n0.value("vipd_sync_group_state", "group=gw", "state=master"); got != 1 {
			t.Errorf("vipd_sync_group_state{state=master} = %v, want 1", got)
		}
		if st := n0.d.Status(); st[0].SyncGroup != "gw" || st[1].SyncGroup != "gw" {
			t.Errorf("status sync groups %q %q, want gw", st[0].SyncGroup, st[1].SyncGroup)
		}

		svc.set(false)
		waitFor(t, 2*time.Second, "host 1 to take both VIPs over", both(1, hs...))
		if got, want := states(n0), "front=fault back=fault"; got != want {
			t.Errorf("host 0: %s, want %s", got, want)
		}
		if got := n0.value("vipd_transitions_total", "instance=back", "from=master", "to=fault"); got != 1 {
			t.Errorf("back master→fault transitions %v, want 1", got)
		}

		svc.set(true)
		waitFor(t, 3*time.Second, "host 0 to take both back", both(0, hs...))
		if got, want := states(n1), "front=backup back=backup"; got != want {
			t.Errorf("host 1: %s, want %s", got, want)
		}

		n0.stop()
		waitFor(t, time.Second, "host 1 to take both over at once", both(1, hs...))
		want := []string{"GROUP_gw_BACKUP", "GROUP_gw_MASTER", "GROUP_gw_FAULT", "GROUP_gw_BACKUP", "GROUP_gw_MASTER", "GROUP_gw_STOP"}
		if got := cmds.of("notify"); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("group notify calls:\n got %v\nwant %v", got, want)
		}
	})
}

// A better Master on one member's segment takes the whole group to
// Backup, on every node: a group is Master only where every member can
// be. When it goes, the best node's group is Master again.
func TestSyncGroupFollowsBetterMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], groupConfig(150, false))
		n1 := startConfig(t, hs[1], groupConfig(100, false))
		waitFor(t, 3*time.Second, "host 0 to hold both VIPs", both(0, hs...))

		stranger := netip.MustParseAddr("192.0.2.99")
		p := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 52, Priority: 200, Interval: 1, Addresses: []netip.Addr{backVIP.Addr()}}
		b, err := p.Marshal(stranger, vrrp.IPv4Group)
		if err != nil {
			t.Fatal(err)
		}
		nobody := func() bool { return len(holders(hs...)) == 0 && !hs[0].has(backVIP) && !hs[1].has(backVIP) }
		for i := range 50 { // 10 ms apart, 500 ms
			seg.inject(b, stranger, vrrp.IPv4Group, 255)
			settle(10 * time.Millisecond)
			if i == 49 && !nobody() {
				t.Fatalf("with a better Master on VRID 52, the hosts hold %v / back %v %v; want neither VIP on either",
					holders(hs...), hs[0].has(backVIP), hs[1].has(backVIP))
			}
		}
		for _, n := range []*node{n0, n1} {
			if st := n.d.Status(); st[0].State != router.Backup || st[1].State != router.Backup {
				t.Errorf("%v: %s, want both backup", n.h.addr, states(n))
			}
		}
		// The stranger goes quiet: host 0's group is Master again.
		waitFor(t, time.Second, "host 0 to hold both VIPs again", both(0, hs...))
	})
}

// A reload that puts two running instances into a group, and takes them
// out again, moves no VIP.
func TestSyncGroupReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		plain := func(prio uint8) *config.Config {
			c := groupConfig(prio, false)
			c.SyncGroups = nil
			for i := range c.Instances {
				c.Instances[i].SyncGroup = ""
			}
			return c
		}
		n0 := startConfig(t, hs[0], plain(150))
		startConfig(t, hs[1], plain(100))
		waitFor(t, 3*time.Second, "host 0 to hold both VIPs", both(0, hs...))
		before := n0.d.Transitions()
		n0.d.Reload(groupConfig(150, false))
		settle(500 * time.Millisecond)
		if !both(0, hs...)() || n0.d.Transitions() != before {
			t.Fatalf("grouping moved something: holders %v, %d transitions", holders(hs...), n0.d.Transitions()-before)
		}
		if got := n0.value("vipd_sync_group_state", "group=gw", "state=master"); got != 1 {
			t.Errorf("vipd_sync_group_state{state=master} = %v, want 1", got)
		}
		n0.d.Reload(plain(150))
		settle(500 * time.Millisecond)
		if !both(0, hs...)() || n0.d.Transitions() != before {
			t.Fatalf("ungrouping moved something: holders %v", holders(hs...))
		}
		if got := n0.count("vipd_sync_group_state"); got != 0 {
			t.Errorf("%d sync group series after the group went, want 0", got)
		}
	})
}
