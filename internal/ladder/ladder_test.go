package ladder

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

var (
	self4     = netip.MustParseAddr("192.0.2.1")
	peer4     = netip.MustParseAddr("192.0.2.2")
	stranger4 = netip.MustParseAddr("192.0.2.3")
	vip4      = netip.MustParseAddr("198.51.100.10")

	self6     = netip.MustParseAddr("fe80::1")
	peer6     = netip.MustParseAddr("fe80::2")
	stranger6 = netip.MustParseAddr("fe80::3")
	vip6      = netip.MustParseAddr("2001:db8::10")
)

// The VRIDs of the interface the daemon rows receive on.
const (
	vrMulticast   = 1  // v3, multicast
	vrUnicast     = 2  // v3, unicast to peer4
	vrAuth        = 3  // v2, password "secret", 1 s
	vrNoAuth      = 4  // v2, no authentication, 1 s
	vrUnicast6    = 5  // v3 over IPv6, unicast to peer6
	vrMulticast6  = 6  // v3 over IPv6, multicast
	vrHMAC        = 7  // v3, auth_hmac enforce, time window 5s, key 1
	vrPermissive  = 8  // v3, auth_hmac permissive, key 1
	vrMonotonic   = 9  // v3, auth_hmac enforce, monotonic, key 1
	vrHMAC6       = 10 // v3 over IPv6, auth_hmac enforce, key 1
	vrHMACv2      = 11 // v2, auth_hmac enforce, key 1, 1 s
	vrNone        = 99 // no instance
	password      = "secret"
	wrongPassword = "guessed"
)

// The auth_hmac rows: checkNow is the receiver's clock; secret1 is key 1.
// Each row gets fresh instances whose replay state knows one sender,
// replayed, whose last sequence number was replayedSeq.
var (
	checkNow    = time.Unix(0x68000000, 0)
	secret1     = []byte("0123456789abcdef0123456789abcdef")
	secretOther = []byte("fedcba9876543210fedcba9876543210")
	replayed    = netip.MustParseAddr("192.0.2.4")
	replayedSeq = vrrp.SeqAt(checkNow)
	stepped     = netip.MustParseAddr("192.0.2.5") // its mark is a minute ahead: a clock stepped back
)

func newInstances() map[uint8]*Rules {
	hmac := func(mode config.AuthMode, anti string) *HMAC {
		seen := NewReplay(DefaultReplaySenders)
		seen.accept(replayed, replayedSeq, checkNow, 0)
		seen.accept(stepped, vrrp.SeqAt(checkNow.Add(time.Minute)), checkNow, 0)
		h, err := NewHMAC(&config.AuthHMAC{
			Keys: []config.AuthKey{{ID: 1, Secret: secret1}}, ActiveKey: 1,
			Mode: mode, AntiReplay: anti, TimeWindow: 5 * time.Second,
		}, seen)
		if err != nil {
			panic(err)
		}
		return h
	}
	return map[uint8]*Rules{
		vrMulticast:  {Version: 3},
		vrUnicast:    {Version: 3, Peers: []netip.Addr{peer4}},
		vrAuth:       {Version: 2, AuthType: 1, Auth: pass(password), Interval: 1},
		vrNoAuth:     {Version: 2, Interval: 1},
		vrUnicast6:   {Version: 3, Peers: []netip.Addr{peer6}},
		vrMulticast6: {Version: 3},
		vrHMAC:       {Version: 3, HMAC: hmac(config.AuthEnforce, config.AntiReplayTime)},
		vrPermissive: {Version: 3, HMAC: hmac(config.AuthPermissive, config.AntiReplayTime)},
		vrMonotonic:  {Version: 3, HMAC: hmac(config.AuthEnforce, config.AntiReplayMonotonic)},
		vrHMAC6:      {Version: 3, HMAC: hmac(config.AuthEnforce, config.AntiReplayTime)},
		vrHMACv2:     {Version: 2, Interval: 1, HMAC: hmac(config.AuthEnforce, config.AntiReplayTime)},
	}
}

var addrEqual = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// newLookup is the daemon's lookup over fresh instances.
func newLookup() func(uint8) *Rules {
	m := newInstances()
	return func(vrid uint8) *Rules { return m[vrid] }
}

func pass(s string) (b [8]byte) {
	copy(b[:], s)
	return b
}

// unreachable are the reasons of internal/drop that Check never returns.
var unreachable = map[drop.Reason]string{
	drop.QueueFull: "the daemon's, after Check admitted the packet",
	drop.Read:      "vipd watch's, when the socket fails",
	drop.Malformed: "vrrp.ParseInto returns no error that drop.FromCodec does not name",
}

type row struct {
	name  string
	b     []byte
	m     transport.Meta
	self  netip.Addr
	watch bool // a nil lookup, as vipd watch passes
	want  drop.Reason
}

func rows(t *testing.T) []row {
	t.Helper()
	pkt := func(p vrrp.Packet, src, dst netip.Addr) []byte {
		t.Helper()
		p.Type = vrrp.TypeAdvertisement
		if p.Priority == 0 {
			p.Priority = 100
		}
		if p.Interval == 0 {
			p.Interval = 100
			if p.Version == 2 {
				p.Interval = 1
			}
		}
		if p.Addresses == nil {
			p.Addresses = []netip.Addr{vip4}
			if src.Is6() {
				p.Addresses = []netip.Addr{vip6}
			}
		}
		b, err := p.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edit := func(b []byte, f func(b []byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	group4, group6 := vrrp.IPv4Group, vrrp.IPv6Group
	meta := func(src, dst netip.Addr, ttl int) transport.Meta {
		return transport.Meta{Src: src, Dst: dst, TTL: ttl, IfIndex: 2}
	}

	multicast := pkt(vrrp.Packet{Version: 3, VRID: vrMulticast}, stranger4, group4)
	unicast := pkt(vrrp.Packet{Version: 3, VRID: vrUnicast}, peer4, self4)
	fromStranger := pkt(vrrp.Packet{Version: 3, VRID: vrUnicast}, stranger4, self4)
	unicast6 := pkt(vrrp.Packet{Version: 3, VRID: vrUnicast6}, peer6, self6)
	multicast6 := pkt(vrrp.Packet{Version: 3, VRID: vrMulticast6}, stranger6, group6)
	unknown := pkt(vrrp.Packet{Version: 3, VRID: vrNone}, stranger4, group4)
	v2 := func(vrid uint8, authType uint8, auth string, interval uint16) []byte {
		return pkt(vrrp.Packet{Version: 2, VRID: vrid, AuthType: authType, AuthData: pass(auth), Interval: interval}, stranger4, group4)
	}
	v2Auth := v2(vrAuth, 1, password, 1)
	// A zero interval with a checksum that holds, which Marshal refuses to
	// build: v2's checksum covers the message only (RFC 3768 §5.3.8).
	zeroInterval := edit(v2Auth, func(b []byte) {
		b[5] = 0
		binary.BigEndian.PutUint16(b[6:8], 0)
		binary.BigEndian.PutUint16(b[6:8], checksum(b))
	})
	own := multicast // what the daemon hears of its own multicast advert
	v4Version := edit(multicast, func(b []byte) { b[0] = 0x41 })
	badType := edit(multicast, func(b []byte) { b[0] = 0x32 })
	badSum := edit(multicast, func(b []byte) { b[7] ^= 0xff })
	trailing := append(append([]byte(nil), multicast...), 0)

	// auth_hmac: adverts signed at the receiver's clock unless said.
	signed := func(p vrrp.Packet, secret []byte, id uint8, src, dst netip.Addr, at time.Time) []byte {
		t.Helper()
		plain := pkt(p, src, dst) // the defaults
		if err := vrrp.ParseInto(&p, plain, src, dst); err != nil {
			t.Fatal(err)
		}
		k, err := vrrp.NewKey(id, secret)
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.Append(nil, &p, src, dst, vrrp.ChecksumPseudoHeader, vrrp.SeqAt(at))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hmacV3 := func(vrid uint8) []byte {
		return signed(vrrp.Packet{Version: 3, VRID: vrid}, secret1, 1, stranger4, group4, checkNow)
	}
	hmacOK := hmacV3(vrHMAC)
	hmacAt := func(d time.Duration) []byte {
		return signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secret1, 1, stranger4, group4, checkNow.Add(d))
	}
	// A trailer of another type, checksum fixed: the codec's verdict.
	sumAfter := func(b []byte, src, dst netip.Addr, plainLen int) {
		binary.BigEndian.PutUint16(b[6:8], 0)
		binary.BigEndian.PutUint16(b[6:8], ^pseudoSum(b[:plainLen], src, dst))
	}
	hmacType2 := edit(hmacOK, func(b []byte) {
		b[len(b)-vrrp.AuthTrailerLen] = 2
		sumAfter(b, stranger4, group4, len(b)-vrrp.AuthTrailerLen)
	})
	// The priority raised after signing, checksum fixed: only the HMAC
	// can tell.
	hmacTampered := edit(hmacOK, func(b []byte) {
		b[2] = 254
		sumAfter(b, stranger4, group4, len(b)-vrrp.AuthTrailerLen)
	})

	return []row{
		// The daemon: an interface with the instances above.
		{name: "v3 multicast", b: multicast, m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "v3 multicast IPv6", b: multicast6, m: meta(stranger6, group6, 255), self: self6, want: drop.None},
		{name: "v3 unicast from the peer", b: unicast, m: meta(peer4, self4, 255), self: self4, want: drop.None},
		{name: "v3 unicast peer with TTL 64", b: unicast, m: meta(peer4, self4, 64), self: self4, want: drop.None},
		{name: "v3 IPv6 unicast peer with hop limit 64 (keepalived)", b: unicast6, m: meta(peer6, self6, 64), self: self6, want: drop.None},
		{name: "v3 mapped source", b: multicast, m: meta(netip.AddrFrom16(stranger4.As16()), group4, 255), self: self4, want: drop.None},
		{name: "v3 before the socket has a source", b: multicast, m: meta(stranger4, group4, 255), want: drop.None},
		{name: "v3 interval is not checked", b: pkt(vrrp.Packet{Version: 3, VRID: vrMulticast, Interval: 4095}, stranger4, group4), m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "v2 with password", b: v2Auth, m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "v2 without authentication ignores auth data", b: v2(vrNoAuth, 0, wrongPassword, 1), m: meta(stranger4, group4, 255), self: self4, want: drop.None},

		{name: "own address", b: own, m: meta(self4, group4, 255), self: self4, want: drop.OwnAddress},
		{name: "own address before decoding and TTL", b: nil, m: meta(self4, group4, 1), self: self4, want: drop.OwnAddress},
		{name: "own address, mapped", b: own, m: meta(netip.AddrFrom16(self4.As16()), group4, 255), self: self4, want: drop.OwnAddress},
		{name: "own address IPv6", b: multicast6, m: meta(self6, group6, 255), self: self6, want: drop.OwnAddress},

		{name: "forwarded multicast", b: multicast, m: meta(stranger4, group4, 254), self: self4, want: drop.TTL},
		{name: "forwarded IPv6 multicast", b: multicast6, m: meta(stranger6, group6, 64), self: self6, want: drop.TTL},
		{name: "forwarded and truncated", b: multicast[:10], m: meta(stranger4, group4, 64), self: self4, want: drop.TTL},
		{name: "forwarded with bad checksum", b: badSum, m: meta(stranger4, group4, 64), self: self4, want: drop.TTL},
		{name: "forwarded, unknown VRID", b: unknown, m: meta(stranger4, group4, 64), self: self4, want: drop.TTL},

		{name: "truncated", b: multicast[:10], m: meta(stranger4, group4, 255), self: self4, want: drop.Truncated},
		{name: "empty", b: nil, m: meta(stranger4, group4, 255), self: self4, want: drop.Truncated},
		{name: "trailing byte", b: trailing, m: meta(stranger4, group4, 255), self: self4, want: drop.Oversized},
		{name: "version 4", b: v4Version, m: meta(stranger4, group4, 255), self: self4, want: drop.Version},
		{name: "v2 over IPv6", b: edit(multicast6, func(b []byte) { b[0] = 0x21 }), m: meta(stranger6, group6, 255), self: self6, want: drop.Version},
		{name: "v2 for a v3 instance", b: v2(vrMulticast, 0, "", 1), m: meta(stranger4, group4, 255), self: self4, want: drop.Version},
		{name: "v3 for a v2 instance", b: pkt(vrrp.Packet{Version: 3, VRID: vrNoAuth}, stranger4, group4), m: meta(stranger4, group4, 255), self: self4, want: drop.Version},
		{name: "type 2", b: badType, m: meta(stranger4, group4, 255), self: self4, want: drop.Type},
		{name: "bad checksum", b: badSum, m: meta(stranger4, group4, 255), self: self4, want: drop.Checksum},
		{name: "checksum for another source", b: multicast, m: meta(stranger4.Next(), group4, 255), self: self4, want: drop.Checksum},
		{name: "zero interval", b: zeroInterval, m: meta(stranger4, group4, 255), self: self4, want: drop.Interval},
		{name: "IPv4 source, IPv6 destination", b: multicast, m: meta(stranger4, group6, 255), self: self4, want: drop.Family},
		{name: "no source", b: multicast, m: meta(netip.Addr{}, group4, 255), self: self4, want: drop.Family},
		{name: "unknown VRID", b: unknown, m: meta(stranger4, group4, 255), self: self4, want: drop.UnknownVRID},

		{name: "unicast from a stranger", b: fromStranger, m: meta(stranger4, self4, 255), self: self4, want: drop.NotPeer},
		{name: "unicast from a stranger with TTL 64", b: fromStranger, m: meta(stranger4, self4, 64), self: self4, want: drop.NotPeer},
		{name: "IPv6 unicast from a stranger", b: pkt(vrrp.Packet{Version: 3, VRID: vrUnicast6}, stranger6, self6), m: meta(stranger6, self6, 255), self: self6, want: drop.NotPeer},
		{name: "v2 without authentication for a password", b: v2(vrAuth, 0, "", 1), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthType},
		{name: "v2 password for no authentication", b: v2(vrNoAuth, 1, password, 1), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthType},
		{name: "v2 wrong password", b: v2(vrAuth, 1, wrongPassword, 1), m: meta(stranger4, group4, 255), self: self4, want: drop.Auth},
		{name: "v2 password prefix", b: v2(vrAuth, 1, password[:3], 1), m: meta(stranger4, group4, 255), self: self4, want: drop.Auth},
		{name: "v2 another interval", b: v2(vrAuth, 1, password, 2), m: meta(stranger4, group4, 255), self: self4, want: drop.IntervalMismatch},
		{name: "v2 another interval without authentication", b: v2(vrNoAuth, 0, "", 3), m: meta(stranger4, group4, 255), self: self4, want: drop.IntervalMismatch},

		// auth_hmac (draft-cassen-vrrp-auth-hmac): cheapest check first.
		{name: "hmac: signed", b: hmacOK, m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "hmac: signed IPv6", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC6}, secret1, 1, stranger6, group6, checkNow), m: meta(stranger6, group6, 255), self: self6, want: drop.None},
		{name: "hmac: signed v2", b: signed(vrrp.Packet{Version: 2, VRID: vrHMACv2, Interval: 1}, secret1, 1, stranger4, group4, checkNow), m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "hmac: 4s late", b: hmacAt(-4 * time.Second), m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "hmac: unsigned, enforce", b: pkt(vrrp.Packet{Version: 3, VRID: vrHMAC}, stranger4, group4), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthMissing},
		{name: "hmac: unsigned, permissive", b: pkt(vrrp.Packet{Version: 3, VRID: vrPermissive}, stranger4, group4), m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "hmac: signed for an instance without auth_hmac", b: hmacV3(vrMulticast), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthUnexpected},
		{name: "hmac: trailer of type 2", b: hmacType2, m: meta(stranger4, group4, 255), self: self4, want: drop.AuthMalformed},
		{name: "hmac: a minute old", b: hmacAt(-time.Minute), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthStale},
		{name: "hmac: a minute ahead", b: hmacAt(time.Minute), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthStale},
		{name: "hmac: stale before unknown key", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secret1, 2, stranger4, group4, checkNow.Add(-time.Minute)), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthStale},
		{name: "hmac: a minute old, monotonic", b: signed(vrrp.Packet{Version: 3, VRID: vrMonotonic}, secret1, 1, stranger4, group4, checkNow.Add(-time.Minute)), m: meta(stranger4, group4, 255), self: self4, want: drop.None},
		{name: "hmac: unknown key id", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secret1, 2, stranger4, group4, checkNow), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthUnknownKey},
		{name: "hmac: another secret", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secretOther, 1, stranger4, group4, checkNow), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthBadHMAC},
		{name: "hmac: another secret, permissive", b: signed(vrrp.Packet{Version: 3, VRID: vrPermissive}, secretOther, 1, stranger4, group4, checkNow), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthBadHMAC},
		{name: "hmac: priority changed after signing", b: hmacTampered, m: meta(stranger4, group4, 255), self: self4, want: drop.AuthBadHMAC},
		{name: "hmac: signed for another VRID", b: edit(hmacV3(vrPermissive), func(b []byte) {
			b[1] = vrHMAC
			sumAfter(b, stranger4, group4, len(b)-vrrp.AuthTrailerLen)
		}), m: meta(stranger4, group4, 255), self: self4, want: drop.AuthBadHMAC},
		{name: "hmac: replayed", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secret1, 1, replayed, group4, checkNow), m: meta(replayed, group4, 255), self: self4, want: drop.AuthReplay},
		{name: "hmac: replayed, permissive", b: signed(vrrp.Packet{Version: 3, VRID: vrPermissive}, secret1, 1, replayed, group4, checkNow), m: meta(replayed, group4, 255), self: self4, want: drop.AuthReplay},
		{name: "hmac: a mark beyond the window is forgotten", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secret1, 1, stepped, group4, checkNow), m: meta(stepped, group4, 255), self: self4, want: drop.None},
		{name: "hmac: the mark beyond the window still orders, monotonic", b: signed(vrrp.Packet{Version: 3, VRID: vrMonotonic}, secret1, 1, stepped, group4, checkNow), m: meta(stepped, group4, 255), self: self4, want: drop.AuthReplay},

		// vipd watch: no lookup, no source of its own.
		{name: "watch: signed", b: hmacOK, m: meta(stranger4, group4, 255), watch: true, want: drop.None},
		{name: "watch: any key", b: signed(vrrp.Packet{Version: 3, VRID: vrHMAC}, secretOther, 9, stranger4, group4, checkNow), m: meta(stranger4, group4, 255), watch: true, want: drop.None},
		{name: "watch: trailer of type 2", b: hmacType2, m: meta(stranger4, group4, 255), watch: true, want: drop.AuthMalformed},
		{name: "watch: v3", b: multicast, m: meta(stranger4, group4, 255), watch: true, want: drop.None},
		{name: "watch: v3 IPv6", b: multicast6, m: meta(stranger6, group6, 255), watch: true, want: drop.None},
		{name: "watch: v2 with any password", b: v2(vrAuth, 1, wrongPassword, 7), m: meta(stranger4, group4, 255), watch: true, want: drop.None},
		{name: "watch: any VRID", b: unknown, m: meta(stranger4, group4, 255), watch: true, want: drop.None},
		{name: "watch: unicast from anyone", b: fromStranger, m: meta(stranger4, self4, 255), watch: true, want: drop.None},
		{name: "watch: mapped source", b: multicast, m: meta(netip.AddrFrom16(stranger4.As16()), group4, 255), watch: true, want: drop.None},
		{name: "watch: forwarded", b: multicast, m: meta(stranger4, group4, 254), watch: true, want: drop.TTL},
		{name: "watch: unicast with TTL 64 has no exemption", b: unicast, m: meta(peer4, self4, 64), watch: true, want: drop.TTL},
		{name: "watch: forwarded garbage", b: []byte{0xff}, m: meta(stranger4, group4, 1), watch: true, want: drop.TTL},
		{name: "watch: truncated", b: multicast[:10], m: meta(stranger4, group4, 255), watch: true, want: drop.Truncated},
		{name: "watch: trailing byte", b: trailing, m: meta(stranger4, group4, 255), watch: true, want: drop.Oversized},
		{name: "watch: version 4", b: v4Version, m: meta(stranger4, group4, 255), watch: true, want: drop.Version},
		{name: "watch: type 2", b: badType, m: meta(stranger4, group4, 255), watch: true, want: drop.Type},
		{name: "watch: bad checksum", b: badSum, m: meta(stranger4, group4, 255), watch: true, want: drop.Checksum},
		{name: "watch: zero interval", b: zeroInterval, m: meta(stranger4, group4, 255), watch: true, want: drop.Interval},
		{name: "watch: family", b: multicast, m: meta(stranger4, group6, 255), watch: true, want: drop.Family},
		{name: "watch: with a source of its own", b: own, m: meta(self4, group4, 255), self: self4, watch: true, want: drop.OwnAddress},
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range rows(t) {
		t.Run(tt.name, func(t *testing.T) {
			lookup := newLookup()
			if tt.watch {
				lookup = nil
			}
			var p vrrp.Packet
			if got := Check(&p, tt.b, tt.m, tt.self, checkNow, lookup); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
			if tt.want != drop.None {
				return
			}
			want, err := vrrp.Parse(tt.b, tt.m.Src.Unmap(), tt.m.Dst.Unmap())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, &p, addrEqual); diff != "" {
				t.Errorf("decoded packet (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckCoversReasons fails when a reason Check can return has no row in
// TestCheck, or a reason thought unreachable has one.
func TestCheckCoversReasons(t *testing.T) {
	covered := make(map[drop.Reason]bool)
	for _, tt := range rows(t) {
		covered[tt.want] = true
	}
	for r := drop.None; r < drop.Count; r++ {
		why, skip := unreachable[r]
		switch {
		case skip && covered[r]:
			t.Errorf("%v is listed as unreachable (%s) but has a row", r, why)
		case !skip && !covered[r]:
			t.Errorf("no row of TestCheck expects %v", r)
		}
	}
}

// TestCheckLookup: the daemon's lookup remembers the instance it found, so
// Check must call it at most once, and only with the decoded VRID.
func TestCheckLookup(t *testing.T) {
	for _, tt := range rows(t) {
		if tt.watch {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			var asked []uint8
			m := newInstances()
			lookup := func(vrid uint8) *Rules {
				asked = append(asked, vrid)
				return m[vrid]
			}
			var p vrrp.Packet
			got := Check(&p, tt.b, tt.m, tt.self, checkNow, lookup)
			switch {
			case len(asked) > 1:
				t.Fatalf("lookup called %d times: %v", len(asked), asked)
			case len(asked) == 1 && asked[0] != p.VRID:
				t.Errorf("lookup(%d), decoded VRID %d", asked[0], p.VRID)
			case len(asked) == 0 && (got == drop.None || got == drop.UnknownVRID):
				t.Errorf("Check = %v without a lookup", got)
			}
		})
	}
}

// TestCheckLeavesPacket: when b does not decode, and when Check drops it
// before decoding (own address; TTL without a lookup), p keeps what it held.
func TestCheckLeavesPacket(t *testing.T) {
	for _, tt := range rows(t) {
		_, err := vrrp.Parse(tt.b, tt.m.Src.Unmap(), tt.m.Dst.Unmap())
		if err == nil && tt.want != drop.OwnAddress && (!tt.watch || tt.want != drop.TTL) {
			continue // decoded
		}
		t.Run(tt.name, func(t *testing.T) {
			lookup := newLookup()
			if tt.watch {
				lookup = nil
			}
			before := vrrp.Packet{Version: 3, Type: 1, VRID: 42, Priority: 7, Interval: 100, Addresses: []netip.Addr{vip4}}
			p := before
			Check(&p, tt.b, tt.m, tt.self, checkNow, lookup)
			if diff := cmp.Diff(before, p, addrEqual); diff != "" {
				t.Errorf("packet changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestRulesFor(t *testing.T) {
	peers := []netip.Addr{peer4}
	tests := []struct {
		name string
		ic   config.Instance
		want Rules
	}{
		{
			name: "v3 multicast",
			ic:   config.Instance{Version: 3, AdvertInterval: time.Second},
			want: Rules{Version: 3},
		},
		{
			name: "v3 unicast ignores a password",
			ic:   config.Instance{Version: 3, AdvertInterval: 300 * time.Millisecond, UnicastPeers: peers, AuthPass: password},
			want: Rules{Version: 3, Peers: peers, AuthType: 1, Auth: pass(password)},
		},
		{
			name: "v2 without password",
			ic:   config.Instance{Version: 2, AdvertInterval: 3 * time.Second},
			want: Rules{Version: 2, Interval: 3},
		},
		{
			name: "v2 with an 8-byte password",
			ic:   config.Instance{Version: 2, AdvertInterval: time.Second, AuthPass: "12345678"},
			want: Rules{Version: 2, Interval: 1, AuthType: 1, Auth: pass("12345678")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, RulesFor(tt.ic), addrEqual); diff != "" {
				t.Errorf("RulesFor (-want +got):\n%s", diff)
			}
		})
	}
}

// checksum is the Internet checksum of b (RFC 1071), for a v2 message whose
// checksum field is zero.
func checksum(b []byte) uint16 {
	var acc uint32
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// pseudoSum is the one's-complement sum (not yet inverted) of an IPv4 v3
// message b, its checksum field zero, with the pseudo-header from src to
// dst (RFC 9568 §5.2.8).
func pseudoSum(b []byte, src, dst netip.Addr) uint16 {
	ph := make([]byte, 0, 12+len(b))
	ph = append(ph, src.AsSlice()...)
	ph = append(ph, dst.AsSlice()...)
	ph = append(ph, 0, vrrp.ProtocolNumber, byte(len(b)>>8), byte(len(b)))
	return ^checksum(append(ph, b...))
}
