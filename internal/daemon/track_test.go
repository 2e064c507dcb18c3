package daemon

import (
	"testing"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
)

func TestTracker(t *testing.T) {
	ic := config.Instance{
		Interface:       "eth0",
		Priority:        100,
		TrackInterfaces: []config.TrackInterface{{Interface: "eth1", Weight: -20}},
		TrackChecks: []config.TrackCheck{
			{Check: "api", Weight: -60},
			{Check: "bonus", Weight: 30},
			{Check: "etcd"},
		},
	}
	type set struct {
		kind trackKind
		name string
		up   bool
	}
	tests := []struct {
		name      string
		sets      []set
		prio      uint8
		fault     bool
		why       router.Reason
		failing   []string
		initialUp bool
	}{
		{name: "checks start down: fault, weights applied", prio: 40, fault: true, why: router.ReasonCheckFailed, failing: []string{"api", "bonus", "etcd"}},
		{name: "checks initially up", initialUp: true, prio: 130},
		{name: "all up", sets: []set{{trackCheck, "api", true}, {trackCheck, "bonus", true}, {trackCheck, "etcd", true}}, prio: 130},
		{name: "negative weight while down", initialUp: true, sets: []set{{trackCheck, "api", false}}, prio: 70, failing: []string{"api"}},
		{name: "tracked interface down", initialUp: true, sets: []set{{trackInterface, "eth1", false}}, prio: 110},
		{name: "own interface down is a fault", initialUp: true, sets: []set{{trackInterface, "eth0", false}}, prio: 130, fault: true, why: router.ReasonInterfaceDown},
		{name: "interface fault reported before check fault", sets: []set{{trackInterface, "eth0", false}}, prio: 40, fault: true, why: router.ReasonInterfaceDown, failing: []string{"api", "bonus", "etcd"}},
		{name: "untracked names change nothing", initialUp: true, sets: []set{{trackCheck, "other", false}, {trackInterface, "eth9", false}}, prio: 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(ic, func(string) bool { return tt.initialUp }, nil)
			for _, s := range tt.sets {
				tr.set(s.kind, s.name, s.up)
			}
			prio, fault, why := tr.effective(ic.Priority)
			if prio != tt.prio || fault != tt.fault || why != tt.why {
				t.Errorf("effective = %d, %v, %v; want %d, %v, %v", prio, fault, why, tt.prio, tt.fault, tt.why)
			}
			if got := tr.failing(); len(got) != len(tt.failing) {
				t.Errorf("failing = %v, want %v", got, tt.failing)
			}
		})
	}
}

func TestTrackerClamps(t *testing.T) {
	up := func(string) bool { return true }
	high := newTracker(config.Instance{Priority: 250, TrackChecks: []config.TrackCheck{{Check: "a", Weight: 253}}}, up, nil)
	if p, _, _ := high.effective(250); p != 254 {
		t.Errorf("250+253 = %d, want 254", p)
	}
	low := newTracker(config.Instance{Priority: 5, TrackChecks: []config.TrackCheck{{Check: "a", Weight: -253}}}, up, nil)
	low.set(trackCheck, "a", false)
	if p, _, _ := low.effective(5); p != 1 {
		t.Errorf("5-253 = %d, want 1", p)
	}
	if changed := low.set(trackCheck, "a", false); changed {
		t.Error("setting the same state reported a change")
	}
}
