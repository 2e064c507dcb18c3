package netif

import (
	"net"
	"net/netip"
)

// Link is the part of an interface vipd cares about.
type Link struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr
	// Up is true when the link is administratively up and has carrier
	// (IFF_UP and IFF_RUNNING): only then can adverts leave it.
	Up bool
	// Deleted is true when the link is gone (RTM_DELLINK): deleted, or moved
	// to another namespace. Up is false then. A link created again under the
	// same name gets a new index, so sockets bound to the old one are
	// useless and must be reopened.
	Deleted bool
}

// AddrUpdate is an address added to or deleted from an interface.
type AddrUpdate struct {
	// Index is the interface's index.
	Index int
	// Prefix is the address with its prefix length; an IPv4 address is a
	// plain 4-byte one, never IPv4-mapped.
	Prefix netip.Prefix
	// New is true when the address was added (or changed), false when it was
	// deleted.
	New bool
}
