package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	src4  = netip.MustParseAddr("192.168.1.10")
	src4b = netip.MustParseAddr("10.0.0.254")
	src6  = netip.MustParseAddr("fe80::1")
)

// addrs parses a list of addresses.
func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// secret is the v2 simple text password "secret", zero padded
// (RFC 3768 §5.3.10).
var secret = [8]byte{'s', 'e', 'c', 'r', 'e', 't'}

// goldens are packets whose bytes were laid out by hand from RFC 9568
// §5.1 and RFC 3768 §5.1, with checksums computed independently of this
// package (RFC 1071 over an explicit pseudo-header) and cross-checked with
// Wireshark's VRRP dissector (tshark, checksum status "good"; the
// no-pseudo-header one only with vrrp.v3_checksum_as_in_v2 set).
var goldens = []struct {
	name     string
	src, dst netip.Addr
	cs       Checksum
	p        Packet
	b        []byte
}{
	{
		name: "v3 IPv4 one address",
		src:  src4, dst: IPv4Group, cs: ChecksumPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 100, Interval: 100,
			Addresses: addrs("192.168.1.1"), Checksum: 0x067c,
		},
		b: []byte{
			0x31,       // version 3, type 1
			0x33,       // VRID 51
			0x64,       // priority 100
			0x01,       // 1 address
			0x00, 0x64, // reserved 0, Max Adver Int 100 cs
			0x06, 0x7c, // checksum with pseudo-header 192.168.1.10 > 224.0.0.18
			192, 168, 1, 1,
		},
	},
	{
		name: "v3 IPv4 several addresses",
		src:  src4b, dst: IPv4Group, cs: ChecksumPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 1, Priority: 255, Interval: 50,
			Addresses: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3"), Checksum: 0xc62d,
		},
		b: []byte{
			0x31,       // version 3, type 1
			0x01,       // VRID 1
			0xff,       // priority 255 (address owner)
			0x03,       // 3 addresses
			0x00, 0x32, // reserved 0, Max Adver Int 50 cs
			0xc6, 0x2d, // checksum with pseudo-header 10.0.0.254 > 224.0.0.18
			10, 0, 0, 1,
			10, 0, 0, 2,
			10, 0, 0, 3,
		},
	},
	{
		name: "v3 IPv4 checksum without pseudo-header",
		src:  src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 100, Interval: 100,
			Addresses: addrs("192.168.1.1"), Checksum: 0xa8bd, NoPseudoHeader: true,
		},
		b: []byte{
			0x31, 0x33, 0x64, 0x01,
			0x00, 0x64,
			0xa8, 0xbd, // checksum over the VRRP message only
			192, 168, 1, 1,
		},
	},
	{
		name: "v3 IPv6",
		src:  src6, dst: IPv6Group, cs: ChecksumPseudoHeader,
		p: Packet{
			Version: 3, Type: TypeAdvertisement, VRID: 7, Priority: 200, Interval: 100,
			Addresses: addrs("fe80::7", "2001:db8::7"), Checksum: 0xdc1a,
		},
		b: []byte{
			0x31,       // version 3, type 1
			0x07,       // VRID 7
			0xc8,       // priority 200
			0x02,       // 2 addresses
			0x00, 0x64, // reserved 0, Max Adver Int 100 cs
			0xdc, 0x1a, // checksum with pseudo-header fe80::1 > ff02::12
			0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, // fe80::7
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, // 2001:db8::7
		},
	},
	{
		name: "v2 simple text password",
		src:  src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
		p: Packet{
			Version: 2, Type: TypeAdvertisement, VRID: 51, Priority: 100, Interval: 1,
			AuthType: 1, AuthData: secret,
			Addresses: addrs("192.168.1.1"), Checksum: 0x7bd4,
		},
		b: []byte{
			0x21,       // version 2, type 1
			0x33,       // VRID 51
			0x64,       // priority 100
			0x01,       // 1 address
			0x01,       // auth type 1, simple text password
			0x01,       // Adver Int 1 s
			0x7b, 0xd4, // checksum over the VRRP message only
			192, 168, 1, 1,
			's', 'e', 'c', 'r', 'e', 't', 0, 0, // authentication data
		},
	},
}

func TestGolden(t *testing.T) {
	for _, tt := range goldens {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.p, got, cmpAddr); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}

			b, err := tt.p.Append(nil, tt.src, tt.dst, tt.cs)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if diff := cmp.Diff(tt.b, b); diff != "" {
				t.Errorf("Append (-want +got):\n%s", diff)
			}

			if tt.cs != ChecksumPseudoHeader && tt.p.Version == 3 {
				return // Marshal uses the pseudo-header for v3
			}
			b, err = tt.p.Marshal(tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := cmp.Diff(tt.b, b); diff != "" {
				t.Errorf("Marshal (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpAddr compares netip.Addr, whose fields are unexported, with ==:
// same address, same zone.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// ignoreChecksum compares packets built by hand, which carry no checksum,
// with parsed ones.
var ignoreChecksum = cmpopts.IgnoreFields(Packet{}, "Checksum")

func TestRoundTrip(t *testing.T) {
	many4 := make([]netip.Addr, 255)
	many6 := make([]netip.Addr, 255)
	for i := range many4 {
		many4[i] = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		many6[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	tests := []struct {
		name     string
		src, dst netip.Addr
		cs       Checksum
		p        Packet
	}{
		{
			name: "v3 IPv4 max interval",
			src:  src4, dst: IPv4Group,
			p: Packet{Version: 3, Type: 1, VRID: 255, Priority: 254, Interval: 4095, Addresses: addrs("192.0.2.1")},
		},
		{
			name: "v3 IPv4 priority 0 (resign)",
			src:  src4, dst: IPv4Group,
			p: Packet{Version: 3, Type: 1, VRID: 1, Priority: 0, Interval: 1, Addresses: addrs("192.0.2.1")},
		},
		{
			name: "v3 IPv4 no addresses",
			src:  src4, dst: IPv4Group,
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100},
		},
		{
			name: "v3 IPv4 unicast peer",
			src:  src4, dst: netip.MustParseAddr("192.168.1.11"),
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: addrs("192.168.1.1")},
		},
		{
			name: "v3 IPv4 255 addresses",
			src:  src4, dst: IPv4Group,
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: many4},
		},
		{
			name: "v3 IPv4 no pseudo-header",
			src:  src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: addrs("192.0.2.1", "192.0.2.2"), NoPseudoHeader: true},
		},
		{
			name: "v3 IPv6 255 addresses",
			src:  src6, dst: IPv6Group,
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: many6},
		},
		{
			name: "v3 IPv6 IPv4-mapped address",
			src:  src6, dst: IPv6Group,
			p: Packet{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: addrs("fe80::9", "::ffff:192.0.2.1")},
		},
		{
			name: "v2 no authentication",
			src:  src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
			p: Packet{Version: 2, Type: 1, VRID: 1, Priority: 100, Interval: 255, Addresses: addrs("192.0.2.1")},
		},
		{
			name: "v2 full password",
			src:  src4, dst: IPv4Group, cs: ChecksumNoPseudoHeader,
			p: Packet{Version: 2, Type: 1, VRID: 1, Priority: 100, Interval: 3, AuthType: 1, AuthData: [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}, Addresses: addrs("192.0.2.1", "192.0.2.2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.Append(nil, tt.src, tt.dst, tt.cs)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if got, want := len(b), tt.p.wireLen(tt.src.Is4()); got != want {
				t.Errorf("len = %d, want %d", got, want)
			}
			got, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(&tt.p, got, ignoreChecksum, cmpopts.EquateEmpty(), cmpAddr); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if got.Checksum != binary.BigEndian.Uint16(b[6:8]) {
				t.Errorf("Checksum = %#04x, wire has %#04x", got.Checksum, b[6:8])
			}
		})
	}
}

// withChecksum returns a copy of b, a VRRP message, with its checksum
// recomputed in mode cs.
func withChecksum(b []byte, src, dst netip.Addr, cs Checksum) []byte {
	b = bytes.Clone(b)
	b[6], b[7] = 0, 0
	acc := sum(0, b)
	if cs == ChecksumPseudoHeader {
		acc += pseudoHeaderSum(src, dst, len(b))
	}
	binary.BigEndian.PutUint16(b[6:8], ^fold(acc))
	return b
}

// edit returns a copy of b changed by f, with the checksum recomputed in
// mode cs so that only the edit is wrong.
func edit(b []byte, src, dst netip.Addr, cs Checksum, f func(b []byte) []byte) []byte {
	return withChecksum(f(bytes.Clone(b)), src, dst, cs)
}

func TestParseErrors(t *testing.T) {
	v3 := goldens[0].b // v3 IPv4, one address
	v6 := goldens[3].b // v3 IPv6, two addresses
	v2 := goldens[4].b // v2, auth data
	ph, noPH := ChecksumPseudoHeader, ChecksumNoPseudoHeader
	set := func(i int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[i] = v; return b }
	}
	// corrupt changes byte i and leaves the old checksum.
	corrupt := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"invalid source", v3, netip.Addr{}, IPv4Group, ErrFamily},
		{"invalid destination", v3, src4, netip.Addr{}, ErrFamily},
		{"mixed families", v3, src4, IPv6Group, ErrFamily},
		{"mapped source", v3, netip.MustParseAddr("::ffff:192.168.1.10"), IPv4Group, ErrFamily},

		{"empty", nil, src4, IPv4Group, ErrTruncated},
		{"version 0", edit(v3, src4, IPv4Group, ph, set(0, 0x01)), src4, IPv4Group, ErrVersion},
		{"version 1", edit(v3, src4, IPv4Group, ph, set(0, 0x11)), src4, IPv4Group, ErrVersion},
		{"version 4", edit(v3, src4, IPv4Group, ph, set(0, 0x41)), src4, IPv4Group, ErrVersion},
		{"version 15", edit(v3, src4, IPv4Group, ph, set(0, 0xf1)), src4, IPv4Group, ErrVersion},
		{"v2 over IPv6", edit(v6, src6, IPv6Group, ph, set(0, 0x21)), src6, IPv6Group, ErrVersion},

		{"type 0", edit(v3, src4, IPv4Group, ph, set(0, 0x30)), src4, IPv4Group, ErrType},
		{"type 2", edit(v3, src4, IPv4Group, ph, set(0, 0x32)), src4, IPv4Group, ErrType},
		{"v2 type 15", edit(v2, src4, IPv4Group, noPH, set(0, 0x2f)), src4, IPv4Group, ErrType},

		{"one byte", v3[:1], src4, IPv4Group, ErrTruncated},
		{"short header", v3[:7], src4, IPv4Group, ErrTruncated},
		{"v3 count beyond data", edit(v3, src4, IPv4Group, ph, set(3, 2)), src4, IPv4Group, ErrTruncated},
		{"v3 IPv6 address cut", withChecksum(v6[:len(v6)-1], src6, IPv6Group, ph), src6, IPv6Group, ErrTruncated},
		{"v3 IPv6 count 255", edit(v6, src6, IPv6Group, ph, set(3, 255)), src6, IPv6Group, ErrTruncated},
		{"v2 without auth data", withChecksum(v2[:len(v2)-8], src4, IPv4Group, noPH), src4, IPv4Group, ErrTruncated},
		{"v2 auth data cut", withChecksum(v2[:len(v2)-1], src4, IPv4Group, noPH), src4, IPv4Group, ErrTruncated},

		{"v3 trailing byte", withChecksum(append(slices.Clip(v3), 0), src4, IPv4Group, ph), src4, IPv4Group, ErrTrailing},
		{"v3 count below data", edit(v3, src4, IPv4Group, ph, set(3, 0)), src4, IPv4Group, ErrTrailing},
		{"v3 IPv4 packet read as IPv6", v3, src6, IPv6Group, ErrTruncated},
		{"v3 trailing auth data", withChecksum(append(slices.Clip(v3), make([]byte, 8)...), src4, IPv4Group, ph), src4, IPv4Group, ErrTrailing},
		{"v2 trailing byte", withChecksum(append(slices.Clip(v2), 0), src4, IPv4Group, noPH), src4, IPv4Group, ErrTrailing},

		{"v3 priority changed", corrupt(v3, 2, 101), src4, IPv4Group, ErrChecksum},
		{"v3 IPv6 address changed", corrupt(v6, 23, 8), src6, IPv6Group, ErrChecksum},
		{"v3 other destination", v3, src4, netip.MustParseAddr("224.0.0.19"), ErrChecksum},
		{"v3 IPv6 without pseudo-header", withChecksum(v6, src6, IPv6Group, noPH), src6, IPv6Group, ErrChecksum},
		{"v2 with pseudo-header", withChecksum(v2, src4, IPv4Group, ph), src4, IPv4Group, ErrChecksum},
		{"v2 password changed", corrupt(v2, len(v2)-1, 'x'), src4, IPv4Group, ErrChecksum},

		{"v3 zero interval", edit(v3, src4, IPv4Group, ph, set(5, 0)), src4, IPv4Group, ErrInterval},
		{"v3 zero interval, reserved bits set", edit(edit(v3, src4, IPv4Group, ph, set(5, 0)), src4, IPv4Group, ph, set(4, 0xf0)), src4, IPv4Group, ErrInterval},
		{"v3 zero interval, no pseudo-header", edit(v3, src4, IPv4Group, noPH, set(5, 0)), src4, IPv4Group, ErrInterval},
		{"v2 zero interval", edit(v2, src4, IPv4Group, noPH, set(5, 0)), src4, IPv4Group, ErrInterval},

		// The first failing check decides (ParseInto's documented order).
		{"order: family before version", edit(v3, src4, IPv4Group, ph, set(0, 0x41)), src4, IPv6Group, ErrFamily},
		{"order: version before type", []byte{0x42}, src4, IPv4Group, ErrVersion},
		{"order: type before length", []byte{0x32}, src4, IPv4Group, ErrType},
		{"order: length before checksum", append(slices.Clip(v3), 0), src4, IPv4Group, ErrTrailing},
		{"order: checksum before interval", corrupt(v3, 5, 0), src4, IPv4Group, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Packet{VRID: 42, Addresses: addrs("192.0.2.99")}
			before := *p
			err := ParseInto(p, tt.b, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseInto = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(&before, p, cmpAddr); diff != "" {
				t.Errorf("ParseInto changed p on error (-before +after):\n%s", diff)
			}
			if got, err := Parse(tt.b, tt.src, tt.dst); got != nil || !errors.Is(err, tt.want) {
				t.Errorf("Parse = %v, %v; want nil, %v", got, err, tt.want)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	ok4 := Packet{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addresses: addrs("192.0.2.1")}
	ok6 := Packet{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addresses: addrs("fe80::1")}
	with := func(p Packet, f func(*Packet)) Packet {
		p.Addresses = slices.Clone(p.Addresses)
		f(&p)
		return p
	}
	tests := []struct {
		name     string
		p        Packet
		src, dst netip.Addr
		cs       Checksum
		want     error // nil: any error, for the unnamed checksum mode
	}{
		{"invalid source", ok4, netip.Addr{}, IPv4Group, 0, ErrFamily},
		{"invalid destination", ok4, src4, netip.Addr{}, 0, ErrFamily},
		{"mixed families", ok4, src4, IPv6Group, 0, ErrFamily},
		{"IPv6 address in IPv4 packet", with(ok4, func(p *Packet) { p.Addresses = append(p.Addresses, netip.MustParseAddr("2001:db8::1")) }), src4, IPv4Group, 0, ErrFamily},
		{"IPv4 address in IPv6 packet", with(ok6, func(p *Packet) { p.Addresses = append(p.Addresses, netip.MustParseAddr("192.0.2.1")) }), src6, IPv6Group, 0, ErrFamily},
		{"zero address", with(ok4, func(p *Packet) { p.Addresses = append(p.Addresses, netip.Addr{}) }), src4, IPv4Group, 0, ErrFamily},

		{"version 0", with(ok4, func(p *Packet) { p.Version = 0 }), src4, IPv4Group, 0, ErrVersion},
		{"version 4", with(ok4, func(p *Packet) { p.Version = 4 }), src4, IPv4Group, 0, ErrVersion},
		{"version 19 (would overflow the nibble)", with(ok4, func(p *Packet) { p.Version = 19 }), src4, IPv4Group, 0, ErrVersion},
		{"v2 over IPv6", with(ok6, func(p *Packet) { p.Version = 2 }), src6, IPv6Group, 0, ErrVersion},

		{"type 0", with(ok4, func(p *Packet) { p.Type = 0 }), src4, IPv4Group, 0, ErrType},
		{"type 17", with(ok4, func(p *Packet) { p.Type = 17 }), src4, IPv4Group, 0, ErrType},

		{"256 addresses", with(ok4, func(p *Packet) { p.Addresses = make([]netip.Addr, 256) }), src4, IPv4Group, 0, ErrAddressCount},

		{"v3 zero interval", with(ok4, func(p *Packet) { p.Interval = 0 }), src4, IPv4Group, 0, ErrInterval},
		{"v3 interval 4096", with(ok4, func(p *Packet) { p.Interval = 4096 }), src4, IPv4Group, 0, ErrInterval},
		{"v3 interval 0xffff", with(ok6, func(p *Packet) { p.Interval = 0xffff }), src6, IPv6Group, 0, ErrInterval},
		{"v2 zero interval", with(ok4, func(p *Packet) { p.Version, p.Interval = 2, 0 }), src4, IPv4Group, 0, ErrInterval},
		{"v2 interval 256", with(ok4, func(p *Packet) { p.Version, p.Interval = 2, 256 }), src4, IPv4Group, 0, ErrInterval},

		{"unknown checksum mode", ok4, src4, IPv4Group, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{0xde, 0xad}
			b, err := tt.p.Append(prefix, tt.src, tt.dst, tt.cs)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Append = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("Append returned %x on error, want the input %x", b, prefix)
			}
			if tt.cs != ChecksumPseudoHeader {
				return
			}
			if b, err := tt.p.Marshal(tt.src, tt.dst); b != nil || !errors.Is(err, tt.want) {
				t.Errorf("Marshal = %x, %v; want nil, %v", b, err, tt.want)
			}
		})
	}
}

// A v3 IPv4 packet whose checksum leaves out the pseudo-header (as
// keepalived's v3_checksum_as_v2 sends it) is accepted and flagged, so
// that the caller can answer in kind; IPv6 and v2 have one rule each.
func TestNoPseudoHeader(t *testing.T) {
	g := goldens[2]
	p, err := Parse(g.b, g.src, g.dst)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !p.NoPseudoHeader {
		t.Fatal("NoPseudoHeader = false, want true")
	}

	with, err := p.Marshal(g.src, g.dst)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if diff := cmp.Diff(goldens[0].b, with); diff != "" {
		t.Errorf("Marshal uses the pseudo-header for v3 (-want +got):\n%s", diff)
	}
	p2, err := Parse(with, g.src, g.dst)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p2.NoPseudoHeader {
		t.Error("NoPseudoHeader = true for a pseudo-header checksum")
	}

	// Modes that the version or family fix are not up to the caller.
	for _, g := range []int{3, 4} { // IPv6, v2
		tt := goldens[g]
		for _, cs := range []Checksum{ChecksumPseudoHeader, ChecksumNoPseudoHeader} {
			b, err := tt.p.Append(nil, tt.src, tt.dst, cs)
			if err != nil {
				t.Fatalf("%s: Append(%v): %v", tt.name, cs, err)
			}
			if !bytes.Equal(b, tt.b) {
				t.Errorf("%s: Append(%v) = %x, want %x", tt.name, cs, b, tt.b)
			}
		}
	}
}

// One's complement has two zeros: a checksum that computes to 0x0000 may
// arrive as 0xffff, and both verify (RFC 1071 §1).
func TestChecksumNegativeZero(t *testing.T) {
	p := Packet{Version: 3, Type: 1, VRID: 175, Priority: 106, Interval: 100, Addresses: addrs("192.168.1.1")}
	b, err := p.Marshal(src4, IPv4Group)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := []byte{0x31, 0xaf, 0x6a, 0x01, 0x00, 0x64, 0x00, 0x00, 192, 168, 1, 1}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Fatalf("Marshal (-want +got):\n%s", diff)
	}
	for _, c := range []uint16{0x0000, 0xffff} {
		binary.BigEndian.PutUint16(b[6:8], c)
		got, err := Parse(b, src4, IPv4Group)
		if err != nil {
			t.Fatalf("Parse with checksum %#04x: %v", c, err)
		}
		if got.Checksum != c || got.NoPseudoHeader {
			t.Errorf("Parse with checksum %#04x: Checksum %#04x, NoPseudoHeader %t", c, got.Checksum, got.NoPseudoHeader)
		}
	}
}

// RFC 9568 §5.2.6: the reserved bits are ignored on reception.
func TestReservedBitsIgnored(t *testing.T) {
	g := goldens[0]
	b := edit(g.b, g.src, g.dst, ChecksumPseudoHeader, func(b []byte) []byte { b[4] |= 0xf0; return b })
	p, err := Parse(b, g.src, g.dst)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(&g.p, p, ignoreChecksum, cmpAddr); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// ParseInto fills in every field, whatever p held, and appends the
// addresses to p.Addresses' storage.
func TestParseIntoReuses(t *testing.T) {
	p := &Packet{
		Version: 9, VRID: 9, AuthType: 9, AuthData: [8]byte{9}, NoPseudoHeader: true,
		Addresses: make([]netip.Addr, 5, 8),
	}
	storage := &p.Addresses[:1][0]
	for _, g := range goldens {
		if err := ParseInto(p, g.b, g.src, g.dst); err != nil {
			t.Fatalf("%s: ParseInto: %v", g.name, err)
		}
		if diff := cmp.Diff(&g.p, p, cmpAddr); diff != "" {
			t.Errorf("%s: ParseInto (-want +got):\n%s", g.name, diff)
		}
		if &p.Addresses[0] != storage {
			t.Errorf("%s: ParseInto did not reuse p.Addresses", g.name)
		}
	}
}

func TestAppendAppends(t *testing.T) {
	g := goldens[1]
	prefix := []byte{1, 2, 3}
	b, err := g.p.Append(slices.Clone(prefix), g.src, g.dst, g.cs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if diff := cmp.Diff(append(prefix, g.b...), b); diff != "" {
		t.Errorf("Append (-want +got):\n%s", diff)
	}
}

func TestAdvertInterval(t *testing.T) {
	tests := []struct {
		p    Packet
		want time.Duration
	}{
		{Packet{Version: 3, Interval: 100}, time.Second},
		{Packet{Version: 3, Interval: 1}, 10 * time.Millisecond},
		{Packet{Version: 3, Interval: 4095}, 40950 * time.Millisecond},
		{Packet{Version: 2, Interval: 1}, time.Second},
		{Packet{Version: 2, Interval: 255}, 255 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.p.AdvertInterval(); got != tt.want {
			t.Errorf("v%d Interval %d: AdvertInterval() = %v, want %v", tt.p.Version, tt.p.Interval, got, tt.want)
		}
	}
}

func TestChecksumString(t *testing.T) {
	for cs, want := range map[Checksum]string{
		ChecksumPseudoHeader:   "pseudo-header",
		ChecksumNoPseudoHeader: "no-pseudo-header",
		7:                      "Checksum(7)",
	} {
		if got := cs.String(); got != want {
			t.Errorf("Checksum(%d).String() = %q, want %q", int(cs), got, want)
		}
	}
}

// The receive and send paths must not allocate per packet.
func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are for the full run")
	}
	for _, g := range goldens {
		p := &Packet{Addresses: make([]netip.Addr, 0, 4)}
		if n := testing.AllocsPerRun(100, func() {
			if err := ParseInto(p, g.b, g.src, g.dst); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: ParseInto allocates %v times", g.name, n)
		}
		buf := make([]byte, 0, 64)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := g.p.Append(buf, g.src, g.dst, g.cs); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Append allocates %v times", g.name, n)
		}
	}
}

func BenchmarkParseInto(b *testing.B) {
	for _, g := range []int{0, 3} {
		tt := goldens[g]
		b.Run(tt.name, func(b *testing.B) {
			p := new(Packet)
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.b)))
			for b.Loop() {
				if err := ParseInto(p, tt.b, tt.src, tt.dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, g := range []int{0, 3} {
		tt := goldens[g]
		b.Run(tt.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.b)))
			for b.Loop() {
				var err error
				if buf, err = tt.p.Append(buf[:0], tt.src, tt.dst, tt.cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
