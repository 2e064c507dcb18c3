package netif

import "net"

// Link is the part of an interface vipd cares about.
type Link struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr
	// Up is true when the link is administratively up and has carrier
	// (IFF_UP and IFF_RUNNING): only then can adverts leave it.
	Up bool
}
