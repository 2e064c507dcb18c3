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
// checksum) and parses back equal.
//
// A random mutation almost never keeps the checksum right, which would
// leave everything after the checksum check unexplored; fix therefore
// asks for the checksum to be recomputed before parsing: 0 leaves the
// input alone, 1 writes a pseudo-header checksum, 2 one without.
func FuzzParse(f *testing.F) {
	for _, g := range goldens {
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
			for _, s := range []error{ErrFamily, ErrTruncated, ErrTrailing, ErrVersion, ErrType, ErrChecksum, ErrInterval} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Parse error %v is none of the sentinels", err)
		}

		// ParseInto over a Packet holding leftovers must agree with Parse.
		q := &Packet{Version: 7, AuthType: 7, AuthData: [8]byte{7}, NoPseudoHeader: !p.NoPseudoHeader, Addresses: make([]netip.Addr, 3)}
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
		// input wrote zero as 0xffff.
		if diff := cmp.Diff(p, p2, cmpAddr, ignoreChecksum); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
