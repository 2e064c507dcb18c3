package main

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// capability is one Linux capability vipd needs, and what for.
type capability struct {
	bit  uint
	name string
	why  string
}

var needed = []capability{
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN", "to add and remove VIPs and set promote_secondaries"},
	{unix.CAP_NET_RAW, "CAP_NET_RAW", "to open the VRRP, ARP and neighbour-advertisement sockets"},
}

// missingCapabilities names the capabilities vipd needs that the process
// does not have in its effective set.
func missingCapabilities() (string, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return "", fmt.Errorf("reading capabilities: %w", err)
	}
	var missing []string
	for _, c := range needed {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name+" ("+c.why+")")
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return fmt.Sprintf("missing %s; run as root, or grant them (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW; "+
		"by hand: setcap cap_net_admin,cap_net_raw+ep /usr/sbin/vipd)", strings.Join(missing, " and ")), nil
}

// dropAmbientCapabilities clears the ambient capability set, so that exec
// checks and notify hooks, which vipd starts, do not inherit CAP_NET_ADMIN
// and CAP_NET_RAW from a unit's AmbientCapabilities. vipd's own effective
// and permitted capabilities are not affected.
//
// Capabilities belong to threads, so every thread of the process must
// clear them: syscall.AllThreadsSyscall, which needs a build without cgo
// (as vipd is built).
func dropAmbientCapabilities() error {
	_, _, errno := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
