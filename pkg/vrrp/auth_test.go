package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// vectorSecret is the secret of the test vectors: the bytes 0x00..0x1f.
var vectorSecret = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

const vectorSeq = 0x6800000080000000

var (
	vecSrc4 = netip.MustParseAddr("198.51.100.10")
	vecSrc6 = netip.MustParseAddr("fe80::10")
)

// vectorKey returns a fresh key with id 1 and vectorSecret: a Key is not
// safe for concurrent use.
func vectorKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(1, vectorSecret)
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k
}

// mustMAC decodes a MAC written in hex.
func mustMAC(s string) [16]byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		panic("bad MAC " + s)
	}
	return [16]byte(b)
}

// signedGoldens are signed with vectorSecret, key id 1 and vectorSeq. The
// two v3 ones are the auth_hmac test vectors (VRID 51, priority 200, one
// address, 100 cs). Their MACs and checksums were computed independently
// of this package, with Python's hmac and hashlib over the MAC input laid
// out by hand, and RFC 1071 over an explicit pseudo-header.
var signedGoldens = []struct {
	name     string
	src, dst netip.Addr
	cs       Checksum
	p        Packet // as ParseInto decodes it
	b        []byte
}{
	{
		name: "v3 IPv4 signed",
		src:  vecSrc4, dst: IPv4Group, cs: ChecksumPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 200, Interval: 100,
			Addresses: addrs("192.0.2.100"), Checksum: 0x3935,
			Signed: true, Auth: AuthTrailer{KeyID: 1, Seq: vectorSeq, MAC: mustMAC("1b84bc4e8e43892dc6d98448f8ee2265")},
		},
		b: []byte{
			0x31, 0x33, 0xc8, 0x01, // v3 advert, VRID 51, priority 200, 1 address
			0x00, 0x64, // Max Adver Int 100 cs
			0x39, 0x35, // checksum with pseudo-header, over the message without the trailer
			192, 0, 2, 100,
			0x01,       // ext_type HMAC-SHA256
			0x01,       // key id 1
			0x00, 0x00, // reserved
			0x68, 0x00, 0x00, 0x00, // sec
			0x80, 0x00, // subsec
			0x00, 0x00, // ctr
			0x1b, 0x84, 0xbc, 0x4e, 0x8e, 0x43, 0x89, 0x2d, 0xc6, 0xd9, 0x84, 0x48, 0xf8, 0xee, 0x22, 0x65,
		},
	},
	{
		name: "v3 IPv6 signed",
		src:  vecSrc6, dst: IPv6Group, cs: ChecksumPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 200, Interval: 100,
			Addresses: addrs("fe80::100"), Checksum: 0xa275,
			Signed: true, Auth: AuthTrailer{KeyID: 1, Seq: vectorSeq, MAC: mustMAC("c8c56146ebfd66ee10ec4d8186461b78")},
		},
		b: []byte{
			0x31, 0x33, 0xc8, 0x01,
			0x00, 0x64,
			0xa2, 0x75, // checksum with pseudo-header, over the message and the trailer
			0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // fe80::100
			0x01, 0x01, 0x00, 0x00,
			0x68, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
			0xc8, 0xc5, 0x61, 0x46, 0xeb, 0xfd, 0x66, 0xee, 0x10, 0xec, 0x4d, 0x81, 0x86, 0x46, 0x1b, 0x78,
		},
	},
	{
		name: "v2 IPv4 signed",
		src:  vecSrc4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
		p: Packet{
			Version: 2, Type: TypeAdvertisement, VRID: 51, Priority: 200, Interval: 1,
			Addresses: addrs("192.0.2.100"), Checksum: 0x5465,
			Signed: true, Auth: AuthTrailer{KeyID: 1, Seq: vectorSeq, MAC: mustMAC("d0b9391b8d008f779ef2e8cf66238947")},
		},
		b: []byte{
			0x21, 0x33, 0xc8, 0x01, // v2 advert, VRID 51, priority 200, 1 address
			0x00,       // auth type 0
			0x01,       // Adver Int 1 s
			0x54, 0x65, // checksum over the message without the trailer
			192, 0, 2, 100,
			0, 0, 0, 0, 0, 0, 0, 0, // authentication data
			0x01, 0x01, 0x00, 0x00,
			0x68, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
			0xd0, 0xb9, 0x39, 0x1b, 0x8d, 0x00, 0x8f, 0x77, 0x9e, 0xf2, 0xe8, 0xcf, 0x66, 0x23, 0x89, 0x47,
		},
	},
}

func TestSignedGolden(t *testing.T) {
	for _, tt := range signedGoldens {
		t.Run(tt.name, func(t *testing.T) {
			k := vectorKey(t)
			b, err := k.Append(nil, &tt.p, tt.src, tt.dst, tt.cs, vectorSeq)
			if err != nil {
				t.Fatalf("Key.Append: %v", err)
			}
			if diff := cmp.Diff(tt.p.Auth.MAC[:], b[len(b)-16:]); diff != "" {
				t.Errorf("MAC (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.b, b); diff != "" {
				t.Errorf("Key.Append (-want +got):\n%s", diff)
			}

			got, err := Parse(tt.b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.p, got, cmpAddr); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			if !k.Verify(tt.b, tt.src) {
				t.Error("Verify = false")
			}

			// Packet.Append leaves the trailer out: the unsigned message.
			plain, err := tt.p.Append(nil, tt.src, tt.dst, tt.cs)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if got, want := plain[8:], tt.b[8:len(tt.b)-AuthTrailerLen]; !bytes.Equal(got, want) {
				t.Errorf("Append = %x, want the message without its trailer %x", got, want)
			}
		})
	}
}

// The brief's vectors, in the form a peer's implementer would check them.
func TestAuthVectors(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.Addr
		vip      string
		mac      string
	}{
		{"IPv4", vecSrc4, IPv4Group, "192.0.2.100", "1b84bc4e8e43892dc6d98448f8ee2265"},
		{"IPv6", vecSrc6, IPv6Group, "fe80::100", "c8c56146ebfd66ee10ec4d8186461b78"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := vectorKey(t)
			p := Packet{Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 200, Interval: 100, Addresses: addrs(tt.vip)}
			b, err := k.Append(nil, &p, tt.src, tt.dst, ChecksumPseudoHeader, vectorSeq)
			if err != nil {
				t.Fatalf("Key.Append: %v", err)
			}
			if got := hex.EncodeToString(b[len(b)-16:]); got != tt.mac {
				t.Errorf("MAC = %s, want %s", got, tt.mac)
			}
			if !k.Verify(b, tt.src) {
				t.Error("Verify = false")
			}
			got, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.Signed || got.Auth.KeyID != 1 || got.Auth.Seq != vectorSeq || got.Auth.Sec() != 0x68000000 {
				t.Errorf("Parse: Signed %t, Auth %+v", got.Signed, got.Auth)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	many6 := make([]netip.Addr, 255)
	for i := range many6 {
		many6[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
	}
	uni4 := netip.MustParseAddr("203.0.113.7")
	uni6a, uni6b := netip.MustParseAddr("2001:db8::a"), netip.MustParseAddr("2001:db8::b")
	tests := []struct {
		name     string
		id       uint8
		src, dst netip.Addr
		cs       Checksum
		seq      uint64
		p        Packet
	}{
		{
			name: "v3 IPv4 pseudo-header",
			id:   1, src: src4, dst: IPv4Group, seq: 1,
			p: Packet{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addresses: addrs("192.0.2.1", "192.0.2.2")},
		},
		{
			name: "v3 IPv4 no pseudo-header",
			id:   7, src: src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader, seq: 0xffffffffffffffff,
			p: Packet{Version: 3, Type: 1, VRID: 2, Priority: 100, Interval: 100, Addresses: addrs("192.0.2.1"), NoPseudoHeader: true},
		},
		{
			name: "v3 IPv4 unicast",
			id:   255, src: src4, dst: uni4, seq: vectorSeq,
			p: Packet{Version: 3, Type: 1, VRID: 3, Priority: 254, Interval: 4095, Addresses: addrs("192.0.2.1")},
		},
		{
			name: "v3 IPv4 unicast no pseudo-header",
			id:   2, src: uni4, dst: src4, cs: ChecksumNoPseudoHeader, seq: 42,
			p: Packet{Version: 3, Type: 1, VRID: 3, Priority: 0, Interval: 1, Addresses: addrs("192.0.2.1"), NoPseudoHeader: true},
		},
		{
			name: "v3 IPv4 no addresses",
			id:   1, src: src4, dst: IPv4Group, seq: 0,
			p: Packet{Version: 3, Type: 1, VRID: 4, Priority: 100, Interval: 100},
		},
		{
			name: "v3 IPv6 multicast",
			id:   1, src: src6, dst: IPv6Group, seq: 9,
			p: Packet{Version: 3, Type: 1, VRID: 5, Priority: 100, Interval: 100, Addresses: addrs("fe80::5", "2001:db8::5")},
		},
		{
			name: "v3 IPv6 unicast",
			id:   3, src: uni6a, dst: uni6b, seq: 1 << 32,
			p: Packet{Version: 3, Type: 1, VRID: 6, Priority: 100, Interval: 100, Addresses: addrs("2001:db8::6")},
		},
		{
			name: "v3 IPv6 255 addresses",
			id:   1, src: src6, dst: IPv6Group, seq: 5,
			p: Packet{Version: 3, Type: 1, VRID: 7, Priority: 100, Interval: 100, Addresses: many6},
		},
		{
			name: "v2 multicast",
			id:   1, src: src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader, seq: 3,
			p: Packet{Version: 2, Type: 1, VRID: 8, Priority: 100, Interval: 1, Addresses: addrs("192.0.2.1")},
		},
		{
			name: "v2 unicast with password, pseudo-header asked",
			id:   9, src: src4, dst: uni4, cs: ChecksumPseudoHeader, seq: 4,
			p: Packet{Version: 2, Type: 1, VRID: 9, Priority: 100, Interval: 3, AuthType: 1, AuthData: secret, Addresses: addrs("192.0.2.1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKey(tt.id, []byte("a secret of some thirty-two bytes"))
			if err != nil {
				t.Fatalf("NewKey: %v", err)
			}
			prefix := []byte{0xde, 0xad}
			out, err := k.Append(slices.Clone(prefix), &tt.p, tt.src, tt.dst, tt.cs, tt.seq)
			if err != nil {
				t.Fatalf("Key.Append: %v", err)
			}
			if !bytes.Equal(out[:2], prefix) {
				t.Fatalf("Key.Append overwrote the prefix: %x", out[:2])
			}
			b := out[2:]
			if got, want := len(b), tt.p.wireLen(tt.src.Is4())+AuthTrailerLen; got != want {
				t.Errorf("len = %d, want %d", got, want)
			}

			got, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.p
			want.Signed = true
			want.Auth = AuthTrailer{KeyID: tt.id, Seq: tt.seq, MAC: [16]byte(b[len(b)-16:])}
			if diff := cmp.Diff(&want, got, ignoreChecksum, cmpopts.EquateEmpty(), cmpAddr); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if !k.Verify(b, tt.src) {
				t.Error("Verify = false")
			}
			if tt.src.Is4() && !k.Verify(b, netip.AddrFrom16(tt.src.As16())) {
				t.Error("Verify = false for the IPv4-mapped source")
			}

			// The family's checksum rule: IPv4 leaves the trailer out,
			// so that the message without it checks; IPv6 covers it.
			if tt.src.Is4() {
				if _, err := Parse(b[:len(b)-AuthTrailerLen], tt.src, tt.dst); err != nil {
					t.Errorf("IPv4 message without its trailer: %v", err)
				}
			} else if c := fold(sum(0, b) + pseudoHeaderSum(tt.src, tt.dst, len(b))); c != 0xffff {
				t.Errorf("IPv6 checksum over the trailer sums to %#04x", c)
			}
		})
	}
}

// flipBits returns copies of b with one bit flipped, for each bit of the
// bytes [from, to).
func flipBits(b []byte, from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			out = append(out, c)
		}
	}
	return out
}

func TestVerifyRejects(t *testing.T) {
	for _, g := range signedGoldens {
		t.Run(g.name, func(t *testing.T) {
			k := vectorKey(t)
			// Every bit counts but the checksum's: header, addresses, v2
			// authentication data, the trailer's first 12 bytes, the MAC.
			for _, b := range append(flipBits(g.b, 0, 6), flipBits(g.b, 8, len(g.b))...) {
				if k.Verify(b, g.src) {
					t.Errorf("Verify = true for %x", b)
				}
			}
			for _, b := range flipBits(g.b, 6, 8) {
				if !k.Verify(b, g.src) {
					t.Errorf("Verify = false with only the checksum changed: %x", b)
				}
			}

			other := netip.MustParseAddr("198.51.100.11")
			if g.src.Is6() {
				other = netip.MustParseAddr("fe80::11")
			}
			otherID, err := NewKey(2, vectorSecret)
			if err != nil {
				t.Fatal(err)
			}
			// Not vectorSecret with a zero appended: HMAC pads a short
			// key with zeros, so that one is the same key.
			otherSecret, err := NewKey(1, append(slices.Clone(vectorSecret[:31]), 0x20))
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				k    *Key
				b    []byte
				src  netip.Addr
			}{
				{"other source", k, g.b, other},
				{"other family's source", k, g.b, netip.AddrFrom16([16]byte{15: 1})},
				{"invalid source", k, g.b, netip.Addr{}},
				{"key with another id", otherID, g.b, g.src},
				{"key with another secret", otherSecret, g.b, g.src},
				{"last byte cut", k, g.b[:len(g.b)-1], g.src},
				{"byte appended", k, append(slices.Clip(g.b), 0), g.src},
				{"trailer alone", k, g.b[len(g.b)-AuthTrailerLen:], g.src},
				{"shorter than header and trailer", k, g.b[len(g.b)-AuthTrailerLen-7:], g.src},
				{"empty", k, nil, g.src},
			}
			for _, tt := range tests {
				if tt.k.Verify(tt.b, tt.src) {
					t.Errorf("%s: Verify = true", tt.name)
				}
			}
		})
	}
}

// signedChecksum returns a copy of b, a signed VRRP message, with its
// checksum recomputed by the family's rule in mode cs.
func signedChecksum(b []byte, src, dst netip.Addr, cs Checksum) []byte {
	b = bytes.Clone(b)
	if src.Is4() {
		putChecksum(b[:len(b)-AuthTrailerLen], src, dst, cs)
	} else {
		putChecksum(b, src, dst, ChecksumPseudoHeader)
	}
	return b
}

func TestParseSignedErrors(t *testing.T) {
	v4, v6, v2 := signedGoldens[0], signedGoldens[1], signedGoldens[2]
	ph, noPH := ChecksumPseudoHeader, ChecksumNoPseudoHeader
	// at changes byte i and recomputes the checksum by the family's rule.
	at := func(g int, i int, v byte) []byte {
		tt := signedGoldens[g]
		b := bytes.Clone(tt.b)
		if i < 0 {
			i += len(b)
		}
		b[i] = v
		return signedChecksum(b, tt.src, tt.dst, tt.cs)
	}
	trailer := func(g int) int { return len(signedGoldens[g].b) - AuthTrailerLen }
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"IPv4 ext_type 2", at(0, trailer(0), 2), v4.src, v4.dst, ErrAuthMalformed},
		{"IPv4 ext_type 0", at(0, trailer(0), 0), v4.src, v4.dst, ErrAuthMalformed},
		{"IPv4 reserved high byte", at(0, trailer(0)+2, 1), v4.src, v4.dst, ErrAuthMalformed},
		{"IPv4 reserved low byte", at(0, trailer(0)+3, 0x80), v4.src, v4.dst, ErrAuthMalformed},
		{"IPv6 ext_type 2", at(1, trailer(1), 2), v6.src, v6.dst, ErrAuthMalformed},
		{"IPv6 reserved", at(1, trailer(1)+3, 1), v6.src, v6.dst, ErrAuthMalformed},
		{"v2 ext_type 2", at(2, trailer(2), 2), v2.src, v2.dst, ErrAuthMalformed},

		{"IPv4 priority changed", corruptAt(v4.b, 2, 1), v4.src, v4.dst, ErrChecksum},
		{"IPv6 priority changed", corruptAt(v6.b, 2, 1), v6.src, v6.dst, ErrChecksum},
		{"v2 priority changed", corruptAt(v2.b, 2, 1), v2.src, v2.dst, ErrChecksum},
		{"IPv6 MAC changed", corruptAt(v6.b, len(v6.b)-1, 1), v6.src, v6.dst, ErrChecksum},
		{"IPv4 checksum over the trailer too", withChecksum(v4.b, v4.src, v4.dst, ph), v4.src, v4.dst, ErrChecksum},
		{"IPv4 no pseudo-header checksum over the trailer", withChecksum(v4.b, v4.src, v4.dst, noPH), v4.src, v4.dst, ErrChecksum},
		{"v2 checksum over the trailer too", withChecksum(v2.b, v2.src, v2.dst, noPH), v2.src, v2.dst, ErrChecksum},
		{"IPv6 checksum without the trailer", signedChecksum4(v6.b, v6.src, v6.dst), v6.src, v6.dst, ErrChecksum},
		{"IPv4 other destination", v4.b, v4.src, netip.MustParseAddr("224.0.0.19"), ErrChecksum},

		{"IPv4 27 bytes more", v4.b[:len(v4.b)-1], v4.src, v4.dst, ErrTrailing},
		{"IPv4 29 bytes more", append(slices.Clip(v4.b), 0), v4.src, v4.dst, ErrTrailing},
		{"IPv6 27 bytes more", v6.b[:len(v6.b)-1], v6.src, v6.dst, ErrTrailing},
		{"IPv6 29 bytes more", append(slices.Clip(v6.b), 0), v6.src, v6.dst, ErrTrailing},
		{"v2 27 bytes more", v2.b[:len(v2.b)-1], v2.src, v2.dst, ErrTrailing},
		{"v2 29 bytes more", append(slices.Clip(v2.b), 0), v2.src, v2.dst, ErrTrailing},
		{"IPv4 two trailers", append(slices.Clip(v4.b), v4.b[len(v4.b)-AuthTrailerLen:]...), v4.src, v4.dst, ErrTrailing},
		{"IPv6 count 3 over a trailer", at(1, 3, 3), v6.src, v6.dst, ErrTruncated},
		// 28 bytes are 7 IPv4 addresses: with count 8 the message is an
		// unsigned one, whose checksum would cover them.
		{"IPv4 trailer read as 7 more addresses", at(0, 3, 8), v4.src, v4.dst, ErrChecksum},

		{"IPv4 zero interval", at(0, 5, 0), v4.src, v4.dst, ErrInterval},
		{"v2 zero interval", at(2, 5, 0), v2.src, v2.dst, ErrInterval},

		// The first failing check decides (ParseInto's documented order).
		{"order: checksum before trailer", corruptAt(at(0, trailer(0), 2), 2, 1), v4.src, v4.dst, ErrChecksum},
		{"order: trailer before interval", signedChecksum(corruptAt(at(0, trailer(0), 2), 5, 0x64), v4.src, v4.dst, ph), v4.src, v4.dst, ErrAuthMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Packet{VRID: 42, Addresses: addrs("192.0.2.99"), Auth: AuthTrailer{KeyID: 9}}
			before := *p
			err := ParseInto(p, tt.b, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseInto = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(&before, p, cmpAddr); diff != "" {
				t.Errorf("ParseInto changed p on error (-before +after):\n%s", diff)
			}
		})
	}
}

// corruptAt returns a copy of b with byte i xored with x and the old
// checksum.
func corruptAt(b []byte, i int, x byte) []byte {
	b = bytes.Clone(b)
	b[i] ^= x
	return b
}

// signedChecksum4 returns a copy of b, a signed IPv6 message, with the
// checksum computed as IPv4 would: without the trailer.
func signedChecksum4(b []byte, src, dst netip.Addr) []byte {
	b = bytes.Clone(b)
	putChecksum(b[:len(b)-AuthTrailerLen], src, dst, ChecksumPseudoHeader)
	return b
}

// Over IPv4 the trailer is outside the checksum: a message whose MAC was
// tampered with still parses, and only Verify rejects it.
func TestParseSignedIPv4TrailerNotChecksummed(t *testing.T) {
	g := signedGoldens[0]
	b := corruptAt(g.b, len(g.b)-1, 1)
	p, err := Parse(b, g.src, g.dst)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Auth.MAC[15] != g.p.Auth.MAC[15]^1 {
		t.Errorf("MAC = %x, want the tampered one", p.Auth.MAC)
	}
	if vectorKey(t).Verify(b, g.src) {
		t.Error("Verify = true for a tampered MAC")
	}
}

// Key id 0 is not a key anyone can hold, but it is not malformed either:
// the message parses, and no key verifies it.
func TestParseKeyIDZero(t *testing.T) {
	g := signedGoldens[0]
	b := bytes.Clone(g.b)
	b[len(b)-AuthTrailerLen+1] = 0
	p, err := Parse(b, g.src, g.dst)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !p.Signed || p.Auth.KeyID != 0 {
		t.Errorf("Signed %t, KeyID %d; want true, 0", p.Signed, p.Auth.KeyID)
	}
}

func TestNewKey(t *testing.T) {
	tests := []struct {
		name    string
		id      uint8
		secret  []byte
		wantErr bool
	}{
		{"id 1", 1, []byte("x"), false},
		{"id 255", 255, vectorSecret, false},
		{"long secret", 1, bytes.Repeat([]byte("x"), 200), false},
		{"id 0", 0, vectorSecret, true},
		{"empty secret", 1, []byte{}, true},
		{"nil secret", 1, nil, true},
	}
	for _, tt := range tests {
		k, err := NewKey(tt.id, tt.secret)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: NewKey error %v, want error %t", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && k.ID() != tt.id {
			t.Errorf("%s: ID() = %d, want %d", tt.name, k.ID(), tt.id)
		}
		if err != nil && k != nil {
			t.Errorf("%s: NewKey returned a key with its error", tt.name)
		}
	}

	// The key does not alias the caller's secret.
	s := slices.Clone(vectorSecret)
	k, err := NewKey(1, s)
	if err != nil {
		t.Fatal(err)
	}
	clear(s)
	if g := signedGoldens[0]; !k.Verify(g.b, g.src) {
		t.Error("Verify = false after the caller reused its secret")
	}
}

func TestKeyAppendErrors(t *testing.T) {
	ok := Packet{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addresses: addrs("192.0.2.1")}
	with := func(f func(*Packet)) *Packet {
		p := ok
		p.Addresses = slices.Clone(ok.Addresses)
		f(&p)
		return &p
	}
	tests := []struct {
		name     string
		p        *Packet
		src, dst netip.Addr
		cs       Checksum
		want     error // nil: any error, for the unnamed checksum mode
	}{
		{"unknown checksum mode", &ok, src4, IPv4Group, 2, nil},
		{"mixed families", &ok, src4, IPv6Group, 0, ErrFamily},
		{"v2 over IPv6", with(func(p *Packet) { p.Version = 2; p.Addresses = addrs("fe80::1") }), src6, IPv6Group, 0, ErrVersion},
		{"type 2", with(func(p *Packet) { p.Type = 2 }), src4, IPv4Group, 0, ErrType},
		{"256 addresses", with(func(p *Packet) { p.Addresses = make([]netip.Addr, 256) }), src4, IPv4Group, 0, ErrAddressCount},
		{"IPv6 address", with(func(p *Packet) { p.Addresses = addrs("fe80::1") }), src4, IPv4Group, 0, ErrFamily},
		{"zero interval", with(func(p *Packet) { p.Interval = 0 }), src4, IPv4Group, 0, ErrInterval},
	}
	k := vectorKey(t)
	for _, tt := range tests {
		prefix := []byte{0xde, 0xad}
		b, err := k.Append(prefix, tt.p, tt.src, tt.dst, tt.cs, 1)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Key.Append = %v, want %v", tt.name, err, tt.want)
		}
		if !bytes.Equal(b, prefix) {
			t.Errorf("%s: Key.Append returned %x on error, want the input %x", tt.name, b, prefix)
		}
	}
}

func TestSeqAt(t *testing.T) {
	tests := []struct {
		t    time.Time
		want uint64
	}{
		{time.Unix(0x68000000, 500_000_000), vectorSeq},
		{time.Unix(0, 0), 0},
		{time.Unix(1, 1), 1 << 32}, // a nanosecond is below 1/65536 s
		{time.Unix(1, 999_999_999), 1<<32 | 0xffff<<16},
		{time.Unix(1, 15259), 1<<32 | 1<<16}, // just above 1/65536 s
		{time.Unix(1<<32+5, 0), 5 << 32},     // seconds wrap in 2106
		{time.Unix(-1, 0), 0xffffffff << 32},
	}
	for _, tt := range tests {
		if got := SeqAt(tt.t); got != tt.want {
			t.Errorf("SeqAt(%v) = %#x, want %#x", tt.t.UTC(), got, tt.want)
		}
	}
}

func TestSeqAfter(t *testing.T) {
	const max = 1<<64 - 1
	tests := []struct {
		a, b uint64
		want bool
	}{
		{1, 0, true},
		{0, 1, false},
		{5, 5, false},
		{0, max, true}, // wrapped
		{max, 0, false},
		{1<<63 - 1, 0, true},
		{1 << 63, 0, false}, // exactly half way round: neither is after
		{0, 1 << 63, false},
		{vectorSeq + 1, vectorSeq, true},
	}
	for _, tt := range tests {
		if got := SeqAfter(tt.a, tt.b); got != tt.want {
			t.Errorf("SeqAfter(%#x, %#x) = %t, want %t", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNextSeq(t *testing.T) {
	now := time.Unix(0x68000000, 500_000_000) // SeqAt: vectorSeq
	const s = vectorSeq
	const sec = 1 << 32
	tests := []struct {
		name   string
		last   uint64
		now    time.Time
		window time.Duration
		want   uint64
	}{
		{"clock after last", s - sec, now, 0, s},
		{"clock just after last", s - 1, now, 2 * time.Second, s},
		{"same tick", s, now, 0, s + 1},
		{"counter already used", s + 5, now, 0, s + 6},
		{"monotonic: last ahead by an hour", s + 3600*sec, now, 0, s + 3600*sec + 1},
		{"time: last ahead within the window", s + sec, now, 2 * time.Second, s + sec + 1},
		{"time: last ahead by exactly the window", s + 2*sec, now, 2 * time.Second, s + 2*sec + 1},
		{"time: last ahead beyond the window", s + 2*sec + 1, now, 2 * time.Second, s},
		{"time: last an hour ahead", s + 3600*sec, now, 2 * time.Second, s},
		{"time: fractional window, within", s + seqOf(1, 500_000_000), now, 1500 * time.Millisecond, s + seqOf(1, 500_000_000) + 1},
		{"time: fractional window, beyond", s + seqOf(1, 500_000_000) + 1, now, 1500 * time.Millisecond, s},
		{"time: window beyond 2^31 s", s + 1<<62, now, 1 << 31 * time.Second, s + 1<<62 + 1},
		{"time: last half way round", s + 1<<63, now, time.Second, s},
		{"negative window is monotonic", s + 3600*sec, now, -time.Second, s + 3600*sec + 1},
		{"seconds wrap: clock after", 0xffffffff_00000000, time.Unix(1<<32, 0), 0, 0},
		{"seconds wrap: clock before", 0xffffffff_ffffffff, time.Unix(1<<32-1, 0), 0, 0},
		{"seconds wrap: last wrapped ahead", 5, time.Unix(1<<32-1, 0), 0, 6},
		{"seconds wrap: last wrapped ahead beyond window", 10 * sec, time.Unix(1<<32-1, 0), 2 * time.Second, 0xffffffff_00000000},
	}
	for _, tt := range tests {
		got := NextSeq(tt.last, tt.now, tt.window)
		if got != tt.want {
			t.Errorf("%s: NextSeq(%#x, %v, %v) = %#x, want %#x", tt.name, tt.last, tt.now.UTC(), tt.window, got, tt.want)
		}
		if tt.window <= 0 && !SeqAfter(got, tt.last) {
			t.Errorf("%s: monotonic NextSeq %#x is not after %#x", tt.name, got, tt.last)
		}
	}
}

// Signing and verifying, like parsing, must not allocate per packet.
func TestAuthAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are for the full run")
	}
	for _, g := range signedGoldens {
		k := vectorKey(t)
		buf := make([]byte, 0, 128)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := k.Append(buf, &g.p, g.src, g.dst, g.cs, vectorSeq); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Key.Append allocates %v times", g.name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if !k.Verify(g.b, g.src) {
				t.Fatal("Verify = false")
			}
		}); n != 0 {
			t.Errorf("%s: Key.Verify allocates %v times", g.name, n)
		}
		p := &Packet{Addresses: make([]netip.Addr, 0, 4)}
		if n := testing.AllocsPerRun(100, func() {
			if err := ParseInto(p, g.b, g.src, g.dst); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: ParseInto allocates %v times", g.name, n)
		}
	}
}

func BenchmarkKeyAppend(b *testing.B) {
	for _, tt := range signedGoldens[:2] {
		b.Run(tt.name, func(b *testing.B) {
			k := vectorKey(b)
			buf := make([]byte, 0, 128)
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.b)))
			seq := uint64(vectorSeq)
			for b.Loop() {
				var err error
				seq++
				if buf, err = k.Append(buf[:0], &tt.p, tt.src, tt.dst, tt.cs, seq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKeyVerify(b *testing.B) {
	for _, tt := range signedGoldens[:2] {
		b.Run(tt.name, func(b *testing.B) {
			k := vectorKey(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.b)))
			for b.Loop() {
				if !k.Verify(tt.b, tt.src) {
					b.Fatal("Verify = false")
				}
			}
		})
	}
}

// The golden checksums are what the family rule gives, so that the
// helper the error tests use is right.
func TestSignedGoldenChecksums(t *testing.T) {
	for _, g := range signedGoldens {
		if got := binary.BigEndian.Uint16(signedChecksum(g.b, g.src, g.dst, g.cs)[6:8]); got != g.p.Checksum {
			t.Errorf("%s: checksum %#04x, golden has %#04x", g.name, got, g.p.Checksum)
		}
	}
}
