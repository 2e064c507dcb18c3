package daemon

import (
	"reflect"
	"slices"

	"github.com/vipd/vipd/internal/config"
)

// changeKind says what a reload does to one instance.
type changeKind uint8

const (
	// changeRemove stops an instance the new configuration no longer has:
	// a Master sends priority 0 and hands its VIPs over.
	changeRemove changeKind = iota + 1
	// changeRestart stops an instance whose identity on the wire or whose
	// addresses changed, and starts it again from the new configuration.
	changeRestart
	// changeAdd starts a new instance.
	changeAdd
	// changeUpdate applies a new configuration in place: priority,
	// interval, preemption, announcements, tracking, hooks.
	changeUpdate
)

var changeNames = [...]string{changeRemove: "remove", changeRestart: "restart", changeAdd: "add", changeUpdate: "update"}

func (k changeKind) String() string { return changeNames[k] }

// change is one step of a reload plan. Old is the running configuration
// (remove, restart, update), New the next one (restart, add, update); why
// says what forces a restart.
type change struct {
	kind     changeKind
	old, new config.Instance
	why      string
}

// plan lists what going from old to next does to each instance: first the
// removals and restarts in old's order — so that a VRID or VIP that moves
// between instances is free when the new one starts — then additions and
// in-place updates in next's order. An instance equal in every field is
// not touched at all.
func plan(old, next []config.Instance) []change {
	var out []change
	byName := func(cs []config.Instance, name string) (config.Instance, bool) {
		for _, c := range cs {
			if c.Name == name {
				return c, true
			}
		}
		return config.Instance{}, false
	}
	for _, oc := range old {
		nc, ok := byName(next, oc.Name)
		switch {
		case !ok:
			out = append(out, change{kind: changeRemove, old: oc})
		case restartWhy(oc, nc) != "":
			out = append(out, change{kind: changeRestart, old: oc, new: nc, why: restartWhy(oc, nc)})
		}
	}
	for _, nc := range next {
		oc, ok := byName(old, nc.Name)
		switch {
		case !ok:
			out = append(out, change{kind: changeAdd, new: nc})
		case restartWhy(oc, nc) != "":
		case !reflect.DeepEqual(oc, nc):
			// DeepEqual, so that a field added to config.Instance can
			// never be missed by a reload.
			out = append(out, change{kind: changeUpdate, old: oc, new: nc})
		}
	}
	return out
}

// restartWhy says why going from a to b needs the instance restarted — its
// identity on the wire or the addresses it owns changed — or "".
func restartWhy(a, b config.Instance) string {
	switch {
	case a.Interface != b.Interface:
		return "interface changed"
	case a.Family != b.Family:
		return "family changed"
	case a.VRID != b.VRID:
		return "vrid changed"
	case !slices.Equal(a.VIPs, b.VIPs):
		return "vips changed"
	case a.Version != b.Version:
		return "version changed"
	case a.AuthPass != b.AuthPass:
		return "auth_pass changed"
	case !slices.Equal(a.UnicastPeers, b.UnicastPeers) || a.UnicastSource != b.UnicastSource:
		return "unicast peers or source changed"
	case a.V3ChecksumAsV2 != b.V3ChecksumAsV2:
		return "checksum mode changed"
	case a.VirtualMAC != b.VirtualMAC || a.VirtualMACInterface != b.VirtualMACInterface:
		return "virtual_mac changed"
	case a.Version == 2 && a.AdvertInterval != b.AdvertInterval:
		return "VRRPv2 interval changed (adverts must match it)"
	}
	return ""
}
