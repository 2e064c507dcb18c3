package netif

import "net"

// VirtualMAC is the virtual router MAC address of RFC 9568 §7.3:
// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
func VirtualMAC(vrid uint8, ipv6 bool) net.HardwareAddr {
	kind := byte(1)
	if ipv6 {
		kind = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, kind, vrid}
}

// VMACAlias marks a virtual MAC interface as vipd's (IFLA_IFALIAS), so that
// a start or vipd cleanup removes exactly those a crashed run left.
const VMACAlias = "vipd virtual MAC"
