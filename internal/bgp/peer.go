package bgp

import (
	"net/netip"
	"time"
)

// Peer is what a session is now.
type Peer struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// State is GoBGP's name of the session state: idle, connect,
	// active, opensent, openconfirm, established.
	State string `json:"state"`
	// Since is when the session was established; zero unless it is.
	Since time.Time `json:"since,omitzero"`
	// Reason is why the last session ended, as GoBGP tells it.
	Reason string `json:"reason,omitempty"`
}

// Established reports whether the session is up.
func (p Peer) Established() bool { return p.State == "established" }

// StateValue is the number vipd_bgp_peer_state exports for a state name:
// 0 idle, 1 connect, 2 active, 3 opensent, 4 openconfirm, 5 established.
func StateValue(state string) float64 {
	switch state {
	case "connect":
		return 1
	case "active":
		return 2
	case "opensent":
		return 3
	case "openconfirm":
		return 4
	case "established":
		return 5
	}
	return 0
}
