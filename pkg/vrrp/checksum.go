package vrrp

import (
	"fmt"
	"net/netip"
)

// Checksum selects how the checksum is computed.
type Checksum int

const (
	// ChecksumPseudoHeader covers the IPv4 or IPv6 pseudo-header and the
	// VRRP message: VRRPv3, RFC 9568 §5.2.8.
	ChecksumPseudoHeader Checksum = iota
	// ChecksumNoPseudoHeader covers the VRRP message only: VRRPv2
	// (RFC 3768 §5.3.8), and VRRPv3 over IPv4 as sent by peers that
	// kept the v2 rule (keepalived's v3_checksum_as_v2).
	ChecksumNoPseudoHeader
)

func (c Checksum) String() string {
	switch c {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumNoPseudoHeader:
		return "no-pseudo-header"
	default:
		return fmt.Sprintf("Checksum(%d)", int(c))
	}
}

// sum adds b to the running one's complement sum acc as big-endian 16-bit
// words, padding an odd trailing byte with zero (RFC 1071 §4.1). Carries
// are folded by fold, so acc only has to hold them: a VRRP message is at
// most a few kilobytes.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold reduces a 32-bit sum to 16 bits with end-around carry.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// pseudoHeaderSum is the one's complement sum of the pseudo-header for a
// VRRP message of length n between src and dst, both of one family.
//
// IPv4 (RFC 768 style): source, destination, zero, protocol, length.
// IPv6 (RFC 8200 §8.1): source, destination, 32-bit length, three zero
// bytes, next header. Either way the words that are not zero are the
// addresses, the protocol number and the length.
func pseudoHeaderSum(src, dst netip.Addr, n int) uint32 {
	var acc uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = sum(sum(0, s[:]), d[:])
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum(sum(0, s[:]), d[:])
	}
	// n fits in 16 bits (at most 8+255*16+AuthTrailerLen), so the upper
	// half of the IPv6 32-bit length is zero.
	return acc + ProtocolNumber + uint32(n)
}
