package daemon

import (
	"errors"

	"github.com/vipd/vipd/pkg/vrrp"
)

// DropReason says why a received packet was discarded. Its String is the
// stable label used in logs and metrics.
type DropReason uint8

// Reasons a packet is dropped, following the checks of RFC 9568 §7.1.
const (
	DropNone             DropReason = iota
	DropTTL                         // IP TTL not 255
	DropTruncated                   // shorter than its header or address list
	DropOversized                   // longer than its header and address list
	DropVersion                     // not the instance's VRRP version
	DropType                        // not an ADVERTISEMENT
	DropChecksum                    // bad checksum
	DropInterval                    // zero advertisement interval
	DropFamily                      // addresses of the wrong family
	DropUnknownVRID                 // no instance for this VRID on this interface
	DropOwnAddress                  // sent from this host's own primary address
	DropQueueFull                   // the instance is not keeping up
	DropMalformed                   // anything else the codec refused
	DropNotPeer                     // unicast instance: the sender is not a listed peer
	DropAuthType                    // VRRPv2: another authentication type than configured
	DropAuth                        // VRRPv2: wrong password
	DropIntervalMismatch            // VRRPv2: another Adver Interval than ours (RFC 3768 §7.1)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:             "none",
	DropTTL:              "ttl",
	DropTruncated:        "truncated",
	DropOversized:        "oversized",
	DropVersion:          "version",
	DropType:             "type",
	DropChecksum:         "checksum",
	DropInterval:         "interval",
	DropFamily:           "family",
	DropUnknownVRID:      "unknown_vrid",
	DropOwnAddress:       "own_address",
	DropQueueFull:        "queue_full",
	DropMalformed:        "malformed",
	DropNotPeer:          "not_a_peer",
	DropAuthType:         "auth_type",
	DropAuth:             "auth_mismatch",
	DropIntervalMismatch: "interval_mismatch",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// DropReasons lists every reason but DropNone, for metrics that want all
// labels present from the start.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropNone + 1; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// reasonOf maps a codec error to its drop reason.
func reasonOf(err error) DropReason {
	switch {
	case err == nil:
		return DropNone
	case errors.Is(err, vrrp.ErrTruncated):
		return DropTruncated
	case errors.Is(err, vrrp.ErrTrailing):
		return DropOversized
	case errors.Is(err, vrrp.ErrVersion):
		return DropVersion
	case errors.Is(err, vrrp.ErrType):
		return DropType
	case errors.Is(err, vrrp.ErrChecksum):
		return DropChecksum
	case errors.Is(err, vrrp.ErrInterval):
		return DropInterval
	case errors.Is(err, vrrp.ErrFamily):
		return DropFamily
	}
	return DropMalformed
}
