package transport

import "net/netip"

// Outgoing is one message for WriteBatch: B, a marshalled VRRP message, to
// be sent from Src to Dst.
type Outgoing struct {
	B        []byte
	Src, Dst netip.Addr
}
