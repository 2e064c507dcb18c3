package daemon

import (
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/router"
)

// trackKind says what a tracked item is.
type trackKind uint8

const (
	trackCheck trackKind = iota
	trackInterface
	trackVirtualServer // up while its quorum of real servers is healthy
)

// trackedItem is one check or interface an instance follows.
type trackedItem struct {
	kind   trackKind
	name   string
	weight int // 0: FAULT while down
	up     bool
}

// tracker is an instance's tracked checks and interfaces: pure state, owned
// by the instance's driver.
type tracker struct {
	items []trackedItem
}

// newTracker lists what ic tracks: its own interface first (always, in
// FAULT mode), then its track_interfaces, track_checks and
// track_virtual_servers. Checks start as initialUp says, virtual servers as
// vsUp says, interfaces as up until told otherwise.
func newTracker(ic config.Instance, initialUp, vsUp func(name string) bool) *tracker {
	t := &tracker{}
	t.items = append(t.items, trackedItem{kind: trackInterface, name: ic.Interface, up: true})
	for _, ti := range ic.TrackInterfaces {
		t.items = append(t.items, trackedItem{kind: trackInterface, name: ti.Interface, weight: ti.Weight, up: true})
	}
	for _, tc := range ic.TrackChecks {
		t.items = append(t.items, trackedItem{kind: trackCheck, name: tc.Check, weight: tc.Weight, up: initialUp(tc.Check)})
	}
	for _, tv := range ic.TrackVirtualServers {
		t.items = append(t.items, trackedItem{kind: trackVirtualServer, name: tv.VirtualServer, weight: tv.Weight, up: vsUp(tv.VirtualServer)})
	}
	return t
}

// set records that the named check or interface is up or down and says
// whether the instance tracks it and anything changed.
func (t *tracker) set(kind trackKind, name string, up bool) bool {
	changed := false
	for i := range t.items {
		if it := &t.items[i]; it.kind == kind && it.name == name && it.up != up {
			it.up = up
			changed = true
		}
	}
	return changed
}

// effective is the priority to advertise, configured plus the weights in
// force, clamped to 1..254; and whether the instance must be in FAULT, with
// the reason of the first fault-mode item that is down.
func (t *tracker) effective(configured uint8) (prio uint8, fault bool, why router.Reason) {
	p := int(configured)
	for _, it := range t.items {
		switch {
		case it.weight == 0 && !it.up && !fault:
			fault = true
			why = router.ReasonCheckFailed
			if it.kind == trackInterface {
				why = router.ReasonInterfaceDown
			}
		case it.weight < 0 && !it.up, it.weight > 0 && it.up:
			p += it.weight
		}
	}
	return uint8(min(max(p, 1), 254)), fault, why
}

// failing lists the tracked checks that are down, then the tracked
// virtual servers below quorum as "vs:NAME".
func (t *tracker) failing() []string {
	var out []string
	for _, it := range t.items {
		if it.kind == trackCheck && !it.up {
			out = append(out, it.name)
		}
	}
	for _, it := range t.items {
		if it.kind == trackVirtualServer && !it.up {
			out = append(out, "vs:"+it.name)
		}
	}
	return out
}
