package transport

import "net/netip"

// Meta describes a received packet, from its IP header and control messages.
type Meta struct {
	Src, Dst netip.Addr
	TTL      int
	IfIndex  int
}
