package daemon

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
)

func vmacConfig(prio uint8) *config.Config {
	ic := instanceConfig(prio)
	ic.VirtualMAC, ic.VirtualMACInterface = true, "vrrp.51"
	return &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}
}

// vmacIndex is the index of h's virtual MAC interface named name, or 0.
func (h *host) vmacIndexOf(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, v := range h.vmacs {
		if v.name == name {
			return i
		}
	}
	return 0
}

func (h *host) vmacEvents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.vmacLog)
}

func (h *host) vmacAdverts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fromVMAC
}

// A virtual_mac instance keeps its VIPs on its virtual MAC interface, up
// only while Master: a Backup sends nothing from it. A stop hands over
// and deletes it.
func TestVirtualMAC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], vmacConfig(150))
		startConfig(t, hs[1], vmacConfig(100))
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))
		settle(200 * time.Millisecond)

		if idx := hs[0].vmacIndexOf("vrrp.51"); idx == 0 || !hs[0].hasOn(vip, idx) || hs[0].hasOn(vip, hs[0].index("eth0")) {
			t.Fatalf("host 0's VIP is not on its virtual MAC interface alone (index %d)", idx)
		}
		if ok, up := hs[0].vmacUp("vrrp.51"); !ok || !up {
			t.Errorf("host 0 (Master): virtual MAC interface exists %v, up %v; want up", ok, up)
		}
		if ok, up := hs[1].vmacUp("vrrp.51"); !ok || up {
			t.Errorf("host 1 (Backup): virtual MAC interface exists %v, up %v; want down", ok, up)
		}
		if hs[0].vmacAdverts() < 10 {
			t.Errorf("host 0 sent %d adverts from its virtual MAC in 200ms at 10ms, want 10 or more", hs[0].vmacAdverts())
		}
		if n := hs[1].vmacAdverts(); n != 0 {
			t.Errorf("the Backup sent %d adverts from its virtual MAC", n)
		}

		n0.stop()
		waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
		if got, want := hs[0].vmacEvents(), []string{"create vrrp.51", "up vrrp.51", "down vrrp.51", "delete vrrp.51"}; !slices.Equal(got, want) {
			t.Errorf("host 0's virtual MAC interface: %q, want %q", got, want)
		}
		if ok, up := hs[1].vmacUp("vrrp.51"); !ok || !up {
			t.Errorf("host 1 (Master now): virtual MAC interface exists %v, up %v; want up", ok, up)
		}
	})
}

// The parent of a virtual MAC interface deleted and created again: the
// instance is in FAULT meanwhile, and comes back with a new virtual MAC
// interface on the new parent.
func TestVirtualMACParentRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		n0 := startConfig(t, hs[0], vmacConfig(150))
		startConfig(t, hs[1], vmacConfig(100))
		waitFor(t, 3*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		hs[0].deleteLink("eth0")
		waitFor(t, time.Second, "host 0 in fault", func() bool { return state(n0) == router.Fault })
		waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
		if ok, _ := hs[0].vmacUp("vrrp.51"); ok {
			t.Error("host 0 kept its virtual MAC interface with its parent gone")
		}
		hs[0].recreateLink("eth0")
		waitFor(t, 3*time.Second, "host 0 to come back and preempt", func() bool {
			return only(0, hs...)() && state(n0) == router.Master
		})
		if ok, up := hs[0].vmacUp("vrrp.51"); !ok || !up {
			t.Errorf("host 0 is Master again, its virtual MAC interface exists %v, up %v", ok, up)
		}
		if got := hs[0].vmacEvents(); len(got) < 2 || got[len(got)-2] != "create vrrp.51" {
			t.Errorf("host 0's virtual MAC interface events %q: want it created again", got)
		}
	})
}
