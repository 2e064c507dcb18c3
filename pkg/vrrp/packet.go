package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// ProtocolNumber is VRRP's IP protocol number (IPv4 protocol, IPv6 next
// header).
const ProtocolNumber = 112

// TypeAdvertisement is the only VRRP message type (RFC 9568 §5.2.2).
const TypeAdvertisement = 1

// The groups advertisements are sent to (RFC 9568 §5.1.1.2, §5.1.2.2).
var (
	IPv4Group = netip.MustParseAddr("224.0.0.18")
	IPv6Group = netip.MustParseAddr("ff02::12")
)

// Errors returned by Parse, ParseInto, Append, Marshal and Key.Append,
// wrapped with detail; test them with errors.Is.
var (
	// ErrTruncated: shorter than the fixed header, or than the addresses
	// (and, for v2, the authentication data) its count announces.
	ErrTruncated = errors.New("vrrp: truncated packet")
	// ErrTrailing: longer than the header, the addresses and, for v2, the
	// authentication data, other than by exactly an AuthTrailerLen
	// trailer.
	ErrTrailing = errors.New("vrrp: trailing bytes after packet")
	// ErrVersion: a version other than 2 or 3, or version 2 over IPv6.
	ErrVersion = errors.New("vrrp: unsupported version")
	// ErrType: a type other than TypeAdvertisement.
	ErrType = errors.New("vrrp: unknown message type")
	// ErrChecksum: the checksum does not match.
	ErrChecksum = errors.New("vrrp: bad checksum")
	// ErrInterval: a zero advertisement interval, or on Append one too
	// large for its field (v3: 12 bits, v2: 8 bits).
	ErrInterval = errors.New("vrrp: invalid advertisement interval")
	// ErrFamily: source, destination and addresses are not all valid
	// addresses of one family.
	ErrFamily = errors.New("vrrp: address family mismatch")
	// ErrAddressCount: more addresses than the 8-bit count can announce.
	ErrAddressCount = errors.New("vrrp: too many addresses")
	// ErrAuthMalformed: a signed message whose auth_hmac trailer has an
	// ext_type other than AuthExtSHA256 or a non-zero reserved field.
	ErrAuthMalformed = errors.New("vrrp: malformed authentication trailer")
)

const (
	headerLen   = 8     // version/type through checksum, both versions
	authDataLen = 8     // v2 only (RFC 3768 §5.3.10)
	maxInterval = 0xfff // v3: 12 bits (RFC 9568 §5.2.7)
	maxCount    = 0xff
)

// Packet is a VRRP advertisement, version 3 (RFC 9568 §5.1) or version 2
// (RFC 3768 §5.1), without its IP header.
type Packet struct {
	Version  uint8 // 2 or 3
	Type     uint8 // TypeAdvertisement
	VRID     uint8
	Priority uint8
	// Interval is, for v3, the Max Advertise Interval in centiseconds
	// (12 bits, 1..4095); for v2 the Advertisement Interval in seconds
	// (8 bits, 1..255).
	Interval uint16
	AuthType uint8   // v2 only (0 none, 1 simple text password); ignored for v3
	AuthData [8]byte // v2 only; ignored for v3
	// Addresses are the virtual addresses, all of the packet's family.
	Addresses []netip.Addr
	// Checksum is, after Parse, the value on the wire. Append ignores it.
	Checksum uint16
	// NoPseudoHeader is set by Parse when a v3 IPv4 packet's checksum
	// matched only without the pseudo-header, as some peers send it (the
	// RFC 5798 ambiguity that RFC 9568 §5.2.8 settles). Append ignores it:
	// pass ChecksumNoPseudoHeader to answer such a peer in kind.
	NoPseudoHeader bool
	// Signed is set by ParseInto when the message carries an auth_hmac
	// trailer, and Auth is that trailer; ParseInto checks its structure,
	// not its MAC (see Key.Verify). Append ignores both: Key.Append
	// signs.
	Signed bool
	Auth   AuthTrailer
}

// AdvertInterval returns Interval as a duration: centiseconds for v3,
// seconds for v2.
func (p *Packet) AdvertInterval() time.Duration {
	if p.Version == 2 {
		return time.Duration(p.Interval) * time.Second
	}
	return time.Duration(p.Interval) * 10 * time.Millisecond
}

// Append appends the wire form of p, checksum included, to b and returns
// the extended slice. src and dst are the IP source and destination: both
// IPv4 or both IPv6, the family of p.Addresses. They are needed for the
// pseudo-header.
//
// cs matters only for v3 over IPv4: v2 always uses ChecksumNoPseudoHeader
// (RFC 3768 §5.3.8) and IPv6 always ChecksumPseudoHeader (RFC 9568 §5.2.8).
//
// Append checks, in order: cs (a plain error, not a sentinel), src and dst
// (ErrFamily), Version (ErrVersion), Type (ErrType), the number of
// addresses (ErrAddressCount), their family (ErrFamily) and Interval
// (ErrInterval). On error b is returned as it was. With enough capacity
// in b, Append does not allocate.
func (p *Packet) Append(b []byte, src, dst netip.Addr, cs Checksum) ([]byte, error) {
	b, _, err := p.appendMsg(b, src, dst, cs, 0)
	return b, err
}

// appendMsg is Append, growing b by extra more bytes for a trailer, and
// reports the family. The checksum covers the message without a trailer:
// right for an unsigned message and a signed IPv4 one; Key.Append redoes
// it for IPv6.
func (p *Packet) appendMsg(b []byte, src, dst netip.Addr, cs Checksum, extra int) (_ []byte, is4 bool, err error) {
	if cs != ChecksumPseudoHeader && cs != ChecksumNoPseudoHeader {
		return b, false, fmt.Errorf("vrrp: unknown checksum mode %v", cs)
	}
	is4, err = family(src, dst)
	if err != nil {
		return b, false, err
	}
	if err := checkVersion(p.Version, is4); err != nil {
		return b, false, err
	}
	if p.Type != TypeAdvertisement {
		return b, false, fmt.Errorf("%w: %d", ErrType, p.Type)
	}
	if len(p.Addresses) > maxCount {
		return b, false, fmt.Errorf("%w: %d, at most %d", ErrAddressCount, len(p.Addresses), maxCount)
	}
	for _, a := range p.Addresses {
		if !a.IsValid() || a.Is4() != is4 {
			return b, false, fmt.Errorf("%w: address %v in a packet from %v to %v", ErrFamily, a, src, dst)
		}
	}
	limit := uint16(maxInterval)
	if p.Version == 2 {
		limit = 0xff
	}
	if p.Interval == 0 || p.Interval > limit {
		return b, false, fmt.Errorf("%w: %d, want 1..%d", ErrInterval, p.Interval, limit)
	}
	if p.Version == 2 {
		cs = ChecksumNoPseudoHeader
	} else if !is4 {
		cs = ChecksumPseudoHeader
	}

	start := len(b)
	b = slices.Grow(b, p.wireLen(is4)+extra)
	b = append(b, p.Version<<4|p.Type, p.VRID, p.Priority, byte(len(p.Addresses)))
	if p.Version == 3 {
		// The 4 reserved bits are zero: Interval <= 0xfff.
		b = binary.BigEndian.AppendUint16(b, p.Interval)
	} else {
		b = append(b, p.AuthType, byte(p.Interval))
	}
	b = append(b, 0, 0) // checksum, filled in below
	for _, a := range p.Addresses {
		if is4 {
			a4 := a.As4()
			b = append(b, a4[:]...)
		} else {
			a16 := a.As16()
			b = append(b, a16[:]...)
		}
	}
	if p.Version == 2 {
		b = append(b, p.AuthData[:]...)
	}

	putChecksum(b[start:], src, dst, cs)
	return b, is4, nil
}

// putChecksum writes the checksum of msg, in mode cs, into its checksum
// field.
func putChecksum(msg []byte, src, dst netip.Addr, cs Checksum) {
	msg[6], msg[7] = 0, 0
	acc := sum(0, msg)
	if cs == ChecksumPseudoHeader {
		acc += pseudoHeaderSum(src, dst, len(msg))
	}
	binary.BigEndian.PutUint16(msg[6:8], ^fold(acc))
}

// Marshal returns the wire form of p with the checksum its version
// defines: ChecksumPseudoHeader for v3, ChecksumNoPseudoHeader for v2.
// See Append.
func (p *Packet) Marshal(src, dst netip.Addr) ([]byte, error) {
	cs := ChecksumPseudoHeader
	if p.Version == 2 {
		cs = ChecksumNoPseudoHeader
	}
	return p.Append(nil, src, dst, cs)
}

// Parse decodes the VRRP message b, received from src for dst. See
// ParseInto.
func Parse(b []byte, src, dst netip.Addr) (*Packet, error) {
	p := new(Packet)
	if err := ParseInto(p, b, src, dst); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseInto decodes b, a VRRP message whose IP header has been stripped,
// received from src for dst, into p. It reuses the storage of p.Addresses,
// so a receive loop that keeps one Packet does not allocate.
//
// The first failed check decides the error, in this order, so that a
// caller can map it to a drop reason:
//
//  1. src and dst are valid and of one family (ErrFamily; the caller's
//     mistake, not the packet's);
//  2. version 3, or 2 over IPv4 (ErrVersion);
//  3. type (ErrType);
//  4. length against the fixed header and the announced address count
//     (ErrTruncated, ErrTrailing): exactly that, or that and an
//     AuthTrailerLen auth_hmac trailer, which makes the message signed;
//  5. checksum (ErrChecksum): v2 without pseudo-header; v3 with it, and
//     for IPv4 v3 also without it, which sets NoPseudoHeader. Over IPv4
//     the checksum of a signed message leaves the trailer out, over IPv6
//     it covers it (the pseudo-header length likewise);
//  6. for a signed message, the trailer's ext_type and reserved field
//     (ErrAuthMalformed);
//  7. a non-zero interval (ErrInterval).
//
// Policy checks (VRID, priority, authentication, the address list against
// the configuration) are the caller's; so is the trailer's MAC, checked by
// Key.Verify over the same b and src. The reserved bits of v3 are ignored
// (RFC 9568 §5.2.6). On error p is left unchanged.
func ParseInto(p *Packet, b []byte, src, dst netip.Addr) error {
	is4, err := family(src, dst)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrTruncated)
	}
	version, typ := b[0]>>4, b[0]&0x0f
	if err := checkVersion(version, is4); err != nil {
		return err
	}
	if typ != TypeAdvertisement {
		return fmt.Errorf("%w: %d", ErrType, typ)
	}
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes, header is %d", ErrTruncated, len(b), headerLen)
	}
	count := int(b[3])
	alen := 16
	if is4 {
		alen = 4
	}
	want := headerLen + count*alen
	if version == 2 {
		want += authDataLen
	}
	signed := false
	switch {
	case len(b) < want:
		return fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrTruncated, len(b), count, want)
	case len(b) == want+AuthTrailerLen:
		signed = true
	case len(b) > want:
		return fmt.Errorf("%w: %d bytes, %d addresses need %d (or %d signed)", ErrTrailing, len(b), count, want, want+AuthTrailerLen)
	}

	// covered is what the checksum covers: over IPv4 a signed message's
	// checksum leaves the trailer out, as keepalived computes it.
	covered := b
	if signed && is4 {
		covered = b[:want]
	}
	// A message whose checksum field is right sums to 0xffff (RFC 1071).
	acc := sum(0, covered)
	noPH := false
	switch {
	case version == 2:
		if fold(acc) != 0xffff {
			return checksumError(covered, src, dst, version, is4)
		}
	case fold(acc+pseudoHeaderSum(src, dst, len(covered))) == 0xffff:
	case is4 && fold(acc) == 0xffff:
		noPH = true
	default:
		return checksumError(covered, src, dst, version, is4)
	}

	var auth AuthTrailer
	if signed {
		if auth, err = parseTrailer(b[want:]); err != nil {
			return err
		}
	}

	var interval uint16
	if version == 3 {
		interval = binary.BigEndian.Uint16(b[4:6]) & maxInterval
	} else {
		interval = uint16(b[5])
	}
	if interval == 0 {
		return fmt.Errorf("%w: 0", ErrInterval)
	}

	addrs := p.Addresses[:0]
	for off := headerLen; off < headerLen+count*alen; off += alen {
		if is4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(b[off:off+4])))
		} else {
			addrs = append(addrs, netip.AddrFrom16([16]byte(b[off:off+16])))
		}
	}
	*p = Packet{
		Version:        version,
		Type:           typ,
		VRID:           b[1],
		Priority:       b[2],
		Interval:       interval,
		Addresses:      addrs,
		Checksum:       binary.BigEndian.Uint16(b[6:8]),
		NoPseudoHeader: noPH,
		Signed:         signed,
		Auth:           auth,
	}
	if version == 2 {
		p.AuthType = b[4]
		copy(p.AuthData[:], b[want-authDataLen:want])
	}
	return nil
}

// wireLen is the length of p's wire form.
func (p *Packet) wireLen(is4 bool) int {
	n := headerLen + 16*len(p.Addresses)
	if is4 {
		n = headerLen + 4*len(p.Addresses)
	}
	if p.Version == 2 {
		n += authDataLen
	}
	return n
}

// family reports whether src and dst are IPv4, or an error if they are
// not valid addresses of one family. An IPv4-mapped IPv6 address counts
// as IPv6.
func family(src, dst netip.Addr) (is4 bool, err error) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return false, fmt.Errorf("%w: source %v, destination %v", ErrFamily, src, dst)
	}
	return src.Is4(), nil
}

func checkVersion(v uint8, is4 bool) error {
	switch {
	case v == 3:
		return nil
	case v == 2 && is4:
		return nil
	case v == 2:
		return fmt.Errorf("%w: VRRPv2 is IPv4 only", ErrVersion)
	default:
		return fmt.Errorf("%w: %d", ErrVersion, v)
	}
}

// checksumError reports the checksum found in b and the ones that were
// accepted; it runs on the error path only.
func checksumError(b []byte, src, dst netip.Addr, version uint8, is4 bool) error {
	got := binary.BigEndian.Uint16(b[6:8])
	msg := sum(sum(0, b[:6]), b[8:]) // without the checksum field
	noPH := ^fold(msg)
	if version == 2 {
		return fmt.Errorf("%w: %#04x, want %#04x", ErrChecksum, got, noPH)
	}
	withPH := ^fold(msg + pseudoHeaderSum(src, dst, len(b)))
	if !is4 {
		return fmt.Errorf("%w: %#04x, want %#04x", ErrChecksum, got, withPH)
	}
	return fmt.Errorf("%w: %#04x, want %#04x (or %#04x without pseudo-header)", ErrChecksum, got, withPH, noPH)
}
