// Package drop names why a received VRRP packet is discarded. The same value
// is a metric label, a log attribute and what tests assert, for the daemon
// and for vipd watch alike.
package drop

import (
	"errors"

	"github.com/vipd/vipd/pkg/vrrp"
)

// Reason says why a received packet was dropped. Its String is the stable
// label.
type Reason uint8

// Reasons, following the checks of RFC 9568 §7.1 (RFC 3768 §7.1 for v2).
const (
	None             Reason = iota
	TTL                     // IP TTL (hop limit) not 255
	Truncated               // shorter than its header or address list
	Oversized               // longer than its header and address list
	Version                 // not VRRP version 2 or 3, or not the instance's
	Type                    // not an ADVERTISEMENT
	Checksum                // bad checksum
	Interval                // zero advertisement interval
	Family                  // addresses of the wrong family
	UnknownVRID             // no instance for this VRID on this interface
	OwnAddress              // sent from this host's own address
	QueueFull               // the instance is not keeping up
	Malformed               // anything else the codec refused
	NotPeer                 // unicast instance: the sender is not a listed peer
	AuthType                // VRRPv2: another authentication type than configured
	Auth                    // VRRPv2: wrong password
	IntervalMismatch        // VRRPv2: another Adver Interval than ours (RFC 3768 §7.1)
	AuthMissing             // auth_hmac enforce: an unsigned advert
	AuthUnexpected          // a signed advert for an instance without auth_hmac
	AuthMalformed           // an auth_hmac trailer of another type, or reserved bits set
	AuthStale               // auth_hmac time mode: the timestamp is outside the window
	AuthUnknownKey          // auth_hmac: signed with a key id the instance does not list
	AuthBadHMAC             // auth_hmac: the HMAC does not match
	AuthReplay              // auth_hmac: a sequence number not above the last one accepted from that sender
	Read                    // vipd watch: the socket returned an error
	Count                   // the number of reasons, for arrays indexed by Reason
)

var names = [Count]string{
	None:             "none",
	TTL:              "ttl",
	Truncated:        "truncated",
	Oversized:        "oversized",
	Version:          "version",
	Type:             "type",
	Checksum:         "checksum",
	Interval:         "interval",
	Family:           "family",
	UnknownVRID:      "unknown_vrid",
	OwnAddress:       "own_address",
	QueueFull:        "queue_full",
	Malformed:        "malformed",
	NotPeer:          "not_a_peer",
	AuthType:         "auth_type",
	Auth:             "auth_mismatch",
	IntervalMismatch: "interval_mismatch",
	AuthMissing:      "auth_missing",
	AuthUnexpected:   "auth_unexpected",
	AuthMalformed:    "auth_malformed",
	AuthStale:        "auth_stale",
	AuthUnknownKey:   "auth_unknown_key",
	AuthBadHMAC:      "auth_bad_hmac",
	AuthReplay:       "auth_replay",
	Read:             "read",
}

// Auth says whether r is an auth_hmac verdict.
func (r Reason) Auth() bool { return r >= AuthMissing && r <= AuthReplay }

func (r Reason) String() string {
	if r < Count {
		return names[r]
	}
	return "unknown"
}

// FromCodec maps an error of vrrp.Parse to its reason; nil is None.
func FromCodec(err error) Reason {
	switch {
	case err == nil:
		return None
	case errors.Is(err, vrrp.ErrTruncated):
		return Truncated
	case errors.Is(err, vrrp.ErrTrailing):
		return Oversized
	case errors.Is(err, vrrp.ErrVersion):
		return Version
	case errors.Is(err, vrrp.ErrType):
		return Type
	case errors.Is(err, vrrp.ErrChecksum):
		return Checksum
	case errors.Is(err, vrrp.ErrInterval):
		return Interval
	case errors.Is(err, vrrp.ErrFamily):
		return Family
	case errors.Is(err, vrrp.ErrAuthMalformed):
		return AuthMalformed
	}
	return Malformed
}
