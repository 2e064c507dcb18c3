package watch

import (
	"errors"

	"github.com/vipd/vipd/pkg/vrrp"
)

// DropReason says why a received packet was not taken as an advert. Its
// String is the stable label shown in the footer and in JSON.
type DropReason uint8

// Reasons a packet is dropped, in the order of the checks of RFC 9568 §7.1
// that a monitor can make (it has no configuration to check VRIDs or
// addresses against).
const (
	DropNone      DropReason = iota
	DropRead                 // the socket returned an error or a malformed IP packet
	DropTTL                  // IP TTL not 255
	DropTruncated            // shorter than its header or address list
	DropOversized            // longer than its header and address list
	DropVersion              // not VRRP version 2 or 3, or version 2 over IPv6
	DropType                 // not an ADVERTISEMENT
	DropChecksum             // bad checksum
	DropInterval             // zero advertisement interval
	DropFamily               // source and destination of different families
	DropMalformed            // anything else the codec refused
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:      "none",
	DropRead:      "read",
	DropTTL:       "ttl",
	DropTruncated: "truncated",
	DropOversized: "oversized",
	DropVersion:   "version",
	DropType:      "type",
	DropChecksum:  "checksum",
	DropInterval:  "interval",
	DropFamily:    "family",
	DropMalformed: "malformed",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
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
