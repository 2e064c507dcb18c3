package ladder

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/drop"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// Rules is what one instance admits. A reload replaces an instance's
// Rules; it never changes them in place.
type Rules struct {
	Version  uint8
	AuthType uint8        // VRRPv2: 0 or 1
	Auth     [8]byte      // VRRPv2 simple password, zero padded (RFC 3768 §5.3.6.1)
	Peers    []netip.Addr // unicast peers; empty for multicast
	Interval uint16       // VRRPv2 Adver Int in seconds, which adverts must match (RFC 3768 §7.1); 0 for v3
	// HMAC verifies auth_hmac trailers; nil for an instance without
	// auth_hmac, which refuses signed adverts as keepalived 2.2.7 does
	// (it reads them as the wrong length).
	HMAC *HMAC
}

// RulesFor derives the rules from an instance's configuration: its
// Version, AuthPass, UnicastPeers and, for VRRPv2, AdvertInterval. HMAC,
// which has state, is the caller's (NewHMAC).
func RulesFor(ic config.Instance) Rules {
	r := Rules{Version: uint8(ic.Version), Peers: ic.UnicastPeers}
	if ic.Version == 2 {
		r.Interval = uint16(ic.AdvertInterval / time.Second)
	}
	if ic.AuthPass != "" {
		// RFC 3768 §5.3.6.1: type 1, the password zero-padded to 8 bytes.
		r.AuthType = 1
		copy(r.Auth[:], ic.AuthPass)
	}
	return r
}

// Check validates the packet b received with metadata m at now, decodes it
// into p and returns the drop reason (drop.None if accepted).
//
// self is the receiving socket's own source address (an advert from it is
// drop.OwnAddress); an invalid self skips that check.
//
// lookup returns the rules of the instance for a VRID, or nil if there is
// none (drop.UnknownVRID). It is called at most once, and only for a packet
// that decoded. A nil lookup (vipd watch) admits every VRID and applies no
// per-instance rule: only the TTL and the codec checks.
//
// IPv4-mapped source and destination addresses are unmapped first. p
// changes only when b decodes, which Check does not try for an advert from
// self nor, with a nil lookup, for a forwarded one.
func Check(p *vrrp.Packet, b []byte, m transport.Meta, self netip.Addr, now time.Time, lookup func(vrid uint8) *Rules) drop.Reason {
	src, dst := m.Src.Unmap(), m.Dst.Unmap()
	// First: an advert of our own is no news, whatever else is wrong
	// with it.
	if self.IsValid() && src == self.Unmap() {
		return drop.OwnAddress
	}
	forwarded := m.TTL != 255
	// Without rules no peer can be exempt from the TTL rule, so a
	// forwarded packet is dropped without decoding it.
	if lookup == nil && forwarded {
		return drop.TTL
	}
	if err := vrrp.ParseInto(p, b, src, dst); err != nil {
		// The unicast exemption needs the VRID, which a packet the codec
		// refuses does not have: forwarded, it is a TTL drop.
		if forwarded {
			return drop.TTL
		}
		return drop.FromCodec(err)
	}
	if lookup == nil {
		return drop.None
	}
	r := lookup(p.VRID)
	// RFC 9568 §7.1: the TTL (hop limit) MUST be 255: the packet was not
	// forwarded by a router. A listed unicast peer is exempt: unicast
	// peers may be routed, and keepalived sends IPv6 unicast adverts with
	// hop limit 64; the peer list is what admits them (admit checks it).
	if forwarded && (r == nil || len(r.Peers) == 0) {
		return drop.TTL
	}
	if r == nil {
		return drop.UnknownVRID
	}
	return r.admit(p, b, src, now)
}

// admit checks a decoded packet b from src against the instance's rules;
// authentication comes last, as it is the one check that costs.
func (r *Rules) admit(p *vrrp.Packet, b []byte, src netip.Addr, now time.Time) drop.Reason {
	if p.Version != r.Version {
		return drop.Version
	}
	if len(r.Peers) > 0 && !slices.Contains(r.Peers, src) {
		return drop.NotPeer
	}
	if r.Version == 2 {
		if p.AuthType != r.AuthType {
			return drop.AuthType
		}
		if r.AuthType == 1 && p.AuthData != r.Auth {
			return drop.Auth
		}
		// RFC 3768 §7.1: the Adver Interval MUST be ours.
		if p.Interval != r.Interval {
			return drop.IntervalMismatch
		}
	}
	switch {
	case r.HMAC != nil:
		return r.HMAC.verify(p, b, src, now)
	case p.Signed:
		return drop.AuthUnexpected
	}
	return drop.None
}
