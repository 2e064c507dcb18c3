package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse checks that Parse never panics, fails only with one of the
// sentinel errors, and that whatever it accepts re-marshals, in the same
// checksum mode, to the same bytes (up to the reserved bits and the
// checksum) and parses back equal. A signed message re-marshals to
// itself without its trailer; FuzzAuth takes it from there.
//
// A random mutation almost never keeps the checksum right, which would
// leave everything after the checksum check unexplored; fix therefore
// asks for the checksum to be recomputed before parsing: 0 leaves the
// input alone, 1 writes a pseudo-header checksum, 2 one without.
func FuzzParse(f *testing.F) {
	for _, g := range goldens {
		f.Add(g.b, g.src.AsSlice(), g.dst.AsSlice(), uint8(0))
	}
	for _, g := range signedGoldens {
		f.Add(g.b, g.src.AsSlice(), g.dst.AsSlice(), uint8(0))
	}
	f.Fuzz(func(t *testing.T, b, src, dst []byte, fix uint8) {
		srcAddr, _ := netip.AddrFromSlice(src)
		dstAddr, _ := netip.AddrFromSlice(dst)
		if len(b) >= headerLen && srcAddr.IsValid() && dstAddr.IsValid() && srcAddr.Is4() == dstAddr.Is4() {
			switch fix {
			case 1:
				b = withChecksum(b, srcAddr, dstAddr, ChecksumPseudoHeader)
			case 2:
				b = withChecksum(b, srcAddr, dstAddr, ChecksumNoPseudoHeader)
			}
		}

		p, err := Parse(b, srcAddr, dstAddr)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned %+v with error %v", p, err)
			}
			checkSentinel(t, err)
			return
		}

		// ParseInto over a Packet holding leftovers must agree with Parse.
		q := &Packet{
			Version: 7, AuthType: 7, AuthData: [8]byte{7}, NoPseudoHeader: !p.NoPseudoHeader,
			Signed: !p.Signed, Auth: AuthTrailer{KeyID: 7, Seq: 7, MAC: [16]byte{7}},
			Addresses: make([]netip.Addr, 3),
		}
		if err := ParseInto(q, b, srcAddr, dstAddr); err != nil {
			t.Fatalf("ParseInto failed where Parse succeeded: %v", err)
		}
		if diff := cmp.Diff(p, q, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("ParseInto over a used Packet (-Parse +ParseInto):\n%s", diff)
		}

		cs := ChecksumPseudoHeader
		if p.Version == 2 || p.NoPseudoHeader {
			cs = ChecksumNoPseudoHeader
		}
		b2, err := p.Append(nil, srcAddr, dstAddr, cs)
		if err != nil {
			t.Fatalf("Append(%v) of a parsed packet: %v", cs, err)
		}
		want := bytes.Clone(b)
		if p.Signed {
			want = want[:len(want)-AuthTrailerLen]
		}
		if p.Version == 3 {
			want[4] &= 0x0f // reserved bits are ignored, and sent as zero
		}
		if !bytes.Equal(want[:6], b2[:6]) || !bytes.Equal(want[8:], b2[8:]) {
			t.Fatalf("re-marshaled bytes differ beyond reserved bits and checksum:\n in: %x\nout: %x", b, b2)
		}

		p2, err := Parse(b2, srcAddr, dstAddr)
		if err != nil {
			t.Fatalf("Parse of re-marshaled %x: %v", b2, err)
		}
		// The checksum differs when reserved bits were set, or when the
		// input wrote zero as 0xffff, or covered a trailer.
		if diff := cmp.Diff(p, p2, cmpAddr, ignoreChecksum, cmpopts.IgnoreFields(Packet{}, "Signed", "Auth")); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// checkSentinel fails t unless err is one of the parse errors.
func checkSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range []error{ErrFamily, ErrTruncated, ErrTrailing, ErrVersion, ErrType, ErrChecksum, ErrAuthMalformed, ErrInterval} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("Parse error %v is none of the sentinels", err)
}

// FuzzAuth checks that Verify never panics, whatever the bytes and the
// source, and that whatever Parse accepts as signed re-signs with
// Key.Append, under its key id and sequence number, to the same bytes (up
// to the reserved bits, the checksum and the MAC), which parse back equal
// and verify.
//
// As in FuzzParse, fix steers mutations past the checksum: bit 0 or 1
// recompute it by the family's rule for a signed message, with or
// without the pseudo-header; bit 2 first writes the fuzz key's id and
// MAC into the trailer, so that Verify must accept the input.
func FuzzAuth(f *testing.F) {
	for _, g := range signedGoldens {
		f.Add(g.b, g.src.AsSlice(), g.dst.AsSlice(), uint8(0))
		f.Add(g.b, g.src.AsSlice(), g.dst.AsSlice(), uint8(4|1))
	}
	f.Fuzz(func(t *testing.T, b, src, dst []byte, fix uint8) {
		srcAddr, _ := netip.AddrFromSlice(src)
		dstAddr, _ := netip.AddrFromSlice(dst)
		k := vectorKey(t)
		k.Verify(b, srcAddr) // must not panic

		signed := fix&4 != 0 && len(b) >= headerLen+AuthTrailerLen && srcAddr.IsValid()
		if signed {
			b = bytes.Clone(b)
			b[len(b)-AuthTrailerLen+1] = k.ID()
			copy(b[len(b)-macLen:], k.mac(b, srcAddr))
		}
		if len(b) >= headerLen+AuthTrailerLen && srcAddr.IsValid() && dstAddr.IsValid() && srcAddr.Is4() == dstAddr.Is4() {
			switch fix & 3 {
			case 1:
				b = signedChecksum(b, srcAddr, dstAddr, ChecksumPseudoHeader)
			case 2:
				b = signedChecksum(b, srcAddr, dstAddr, ChecksumNoPseudoHeader)
			}
		}
		if signed && !k.Verify(b, srcAddr) {
			t.Fatalf("Verify = false for %x signed from %v", b, srcAddr)
		}

		p, err := Parse(b, srcAddr, dstAddr)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if !p.Signed {
			return
		}
		if got := [16]byte(b[len(b)-macLen:]); p.Auth.MAC != got {
			t.Fatalf("Auth.MAC = %x, wire has %x", p.Auth.MAC, got)
		}
		pk, err := NewKey(p.Auth.KeyID, vectorSecret)
		if p.Auth.KeyID == 0 {
			if err == nil {
				t.Fatal("NewKey accepted key id 0")
			}
			return
		}
		if err != nil {
			t.Fatalf("NewKey(%d): %v", p.Auth.KeyID, err)
		}

		cs := ChecksumPseudoHeader
		if p.Version == 2 || p.NoPseudoHeader {
			cs = ChecksumNoPseudoHeader
		}
		b2, err := pk.Append(nil, p, srcAddr, dstAddr, cs, p.Auth.Seq)
		if err != nil {
			t.Fatalf("Key.Append(%v) of a parsed packet: %v", cs, err)
		}
		want := bytes.Clone(b)
		if p.Version == 3 {
			want[4] &= 0x0f // reserved bits are ignored, and sent as zero
		}
		if len(want) != len(b2) || !bytes.Equal(want[:6], b2[:6]) || !bytes.Equal(want[8:len(want)-macLen], b2[8:len(b2)-macLen]) {
			t.Fatalf("re-signed bytes differ beyond reserved bits, checksum and MAC:\n in: %x\nout: %x", b, b2)
		}
		if !pk.Verify(b2, srcAddr) {
			t.Fatalf("Verify = false for re-signed %x", b2)
		}

		p2, err := Parse(b2, srcAddr, dstAddr)
		if err != nil {
			t.Fatalf("Parse of re-signed %x: %v", b2, err)
		}
		if got := [16]byte(b2[len(b2)-macLen:]); p2.Auth.MAC != got {
			t.Fatalf("Auth.MAC = %x, wire has %x", p2.Auth.MAC, got)
		}
		if diff := cmp.Diff(p, p2, cmpAddr, ignoreChecksum, cmpopts.IgnoreFields(Packet{}, "Auth.MAC")); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
