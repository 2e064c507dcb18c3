package control

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// VirtualServer is what the daemon reports about one virtual server.
type VirtualServer struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Port      uint16 `json:"port"`
	Protocol  string `json:"protocol"` // "tcp" or "udp"
	Mode      string `json:"mode"`     // "nat" or "proxy"
	Scheduler string `json:"scheduler"`
	Quorum    int    `json:"quorum"`
	Healthy   int    `json:"healthy"` // real servers passing their check
	Up        bool   `json:"up"`      // healthy ≥ quorum
	// Error is why load balancing cannot run at all; empty when it can.
	Error       string       `json:"error,omitempty"`
	RealServers []RealServer `json:"real_servers"`
}

// RealServer is one real server of a virtual server.
type RealServer struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	Weight  int    `json:"weight"`
	Up      bool   `json:"up"`
	// Local says the real server is on this host: it sees the clients'
	// addresses, where a remote one sees this host's.
	Local bool `json:"local"`
	// Connections is how many new connections it was sent.
	Connections uint64 `json:"connections"`
	// LiveConnections is what a proxy virtual server carries to the real
	// server now; absent with nat.
	LiveConnections *uint64 `json:"live_connections,omitempty"`
}

// VirtualServerBackend is a Backend that also runs virtual servers: the
// status answer then carries them.
type VirtualServerBackend interface {
	VirtualServers() []VirtualServer
}

// StatusAll asks the daemon for its instances and its virtual servers.
func StatusAll(ctx context.Context, path string) ([]Instance, []VirtualServer, error) {
	resp, err := roundTrip(ctx, path, "status")
	if err != nil {
		return nil, nil, err
	}
	return resp.Instances, resp.VirtualServers, nil
}

// WriteVirtualServers writes vss as a table, one line per real server:
//
//	VIRTUAL SERVER  ADDRESS          PROTO  MODE   STATE  HEALTHY  REAL SERVER      WEIGHT  CHECK  LOCAL  CONNS  LIVE
//	apiserver       192.0.2.50:6443  tcp    proxy  up     2/3 ≥1   192.0.2.11:6443  1       up     yes    1021   12
func WriteVirtualServers(w io.Writer, vss []VirtualServer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VIRTUAL SERVER\tADDRESS\tPROTO\tMODE\tSTATE\tHEALTHY\tREAL SERVER\tWEIGHT\tCHECK\tLOCAL\tCONNS\tLIVE")
	for _, v := range vss {
		state := "down"
		if v.Up {
			state = "up"
		}
		if v.Error != "" {
			state = "error"
		}
		mode := cell(v.Mode)
		if mode == "" {
			mode = "nat"
		}
		head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d/%d ≥%d", cell(v.Name), hostPort(v.Address, v.Port), cell(v.Protocol), mode, state, v.Healthy, len(v.RealServers), v.Quorum)
		if len(v.RealServers) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\n", head)
		}
		for i, r := range v.RealServers {
			if i > 0 {
				head = "\t\t\t\t\t"
			}
			live := "-"
			if r.LiveConnections != nil {
				live = strconv.FormatUint(*r.LiveConnections, 10)
			}
			check, local := "down", "no"
			if r.Up {
				check = "up"
			}
			if r.Local {
				local = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", head, hostPort(r.Address, r.Port), r.Weight, check, local, r.Connections, live)
		}
	}
	tw.Flush()
	for _, v := range vss {
		if v.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", cell(v.Name), cell(v.Error))
		}
	}
}

// hostPort writes an address and port as 192.0.2.50:6443 or
// [2001:db8::50]:6443.
func hostPort(addr string, port uint16) string {
	a := cell(addr)
	if strings.Contains(a, ":") {
		a = "[" + a + "]"
	}
	return a + ":" + strconv.Itoa(int(port))
}
