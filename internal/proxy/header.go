package proxy

import (
	"encoding/binary"
	"net/netip"
)

// signatureV2 starts every PROXY protocol v2 header (§2.2).
var signatureV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// AppendHeaderV2 appends to b the PROXY protocol v2 header of a TCP
// connection from src to dst (the client and the virtual server): version
// 2, command PROXY, family INET or INET6 by src's, no TLVs. src and dst
// must be of one family.
func AppendHeaderV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, signatureV2...)
	b = append(b, 0x21) // version 2, PROXY
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	if sa.Is4() {
		b = append(b, 0x11) // AF_INET, STREAM
		b = binary.BigEndian.AppendUint16(b, 12)
		s, d := sa.As4(), da.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x21) // AF_INET6, STREAM
		b = binary.BigEndian.AppendUint16(b, 36)
		s, d := sa.As16(), da.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
