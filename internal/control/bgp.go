package control

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// BGP is what the daemon's BGP speaker does: its sessions and the routes
// it announces.
type BGP struct {
	Peers     []BGPPeer `json:"peers"`
	Announced []string  `json:"announced"` // prefixes, such as 203.0.113.10/32
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Address string    `json:"address"`
	ASN     uint32    `json:"asn"`
	State   string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since   time.Time `json:"since,omitzero"`
	Reason  string    `json:"reason,omitempty"` // why the last session ended
	// BFD is the BFD session's state (up, init, down, admin_down);
	// empty for a peer without BFD.
	BFD string `json:"bfd,omitempty"`
	// ConnectFailures counts attempts that did not establish a session.
	ConnectFailures uint64 `json:"connect_failures,omitempty"`
}

// BGPBackend is a Backend that may run a BGP speaker; BGP returns nil
// without one.
type BGPBackend interface {
	BGP() *BGP
}

// StatusBGP asks the daemon for its BGP speaker's status; nil for a daemon
// without a bgp section.
func StatusBGP(ctx context.Context, path string) (*BGP, error) {
	resp, err := roundTrip(ctx, path, "status")
	if err != nil {
		return nil, err
	}
	return resp.BGP, nil
}

// WriteBGP writes b as two tables, the sessions and the routes:
//
//	BGP PEER   ASN    STATE        FOR  BFD  REASON
//	192.0.2.1  65000  established  5m   up
//
//	ANNOUNCED
//	203.0.113.10/32
func WriteBGP(w io.Writer, now time.Time, b *BGP) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "BGP PEER\tASN\tSTATE\tFOR\tBFD\tREASON")
	for _, p := range b.Peers {
		up := "-"
		if !p.Since.IsZero() {
			up = now.Sub(p.Since).Truncate(time.Second).String()
		}
		reason := "-"
		if p.Reason != "" && p.State != "established" {
			reason = cell(p.Reason)
		}
		bfd := "-"
		if p.BFD != "" {
			bfd = cell(p.BFD)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", cell(p.Address), p.ASN, cell(p.State), up, bfd, reason)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ANNOUNCED")
	if len(b.Announced) == 0 {
		fmt.Fprintln(w, "-")
	}
	for _, a := range b.Announced {
		fmt.Fprintln(w, strings.TrimSpace(cell(a)))
	}
}
