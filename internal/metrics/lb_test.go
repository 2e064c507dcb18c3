package metrics

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The connection totals are read from the sources at every scrape; a real
// server two sources report has their sum, and a failed read is counted
// while what came with it is still exported.
func TestConnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "test")
	names := []string{"vipd_real_server_connections_total", "vipd_real_server_connections_read_errors_total"}
	rs1 := netip.MustParseAddr("192.0.2.11")
	rs6 := netip.MustParseAddr("2001:db8::11")
	var natErr error
	nat := []RealServerConnections{
		{VirtualServer: "api", Address: rs1, Port: 6443, Total: 7},
		{VirtualServer: "api6", Address: rs6, Port: 6443, Total: 2},
	}
	m.Connections.AddSource(func() ([]RealServerConnections, error) { return nat, natErr })
	m.Connections.AddSource(func() ([]RealServerConnections, error) {
		return []RealServerConnections{
			{VirtualServer: "web", Address: rs1, Port: 80, Total: 3},
			{VirtualServer: "api", Address: rs1, Port: 6443, Total: 1},
		}, nil
	})
	want := `
# HELP vipd_real_server_connections_total New connections to the virtual server sent to the real server (nat: DNATed, from the network and from the host itself).
# TYPE vipd_real_server_connections_total counter
vipd_real_server_connections_total{address="192.0.2.11",port="6443",virtual_server="api"} 8
vipd_real_server_connections_total{address="192.0.2.11",port="80",virtual_server="web"} 3
vipd_real_server_connections_total{address="2001:db8::11",port="6443",virtual_server="api6"} 2
# HELP vipd_real_server_connections_read_errors_total Scrapes at which reading the real servers' connection counts failed.
# TYPE vipd_real_server_connections_read_errors_total counter
vipd_real_server_connections_read_errors_total %d
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "%d", "0", 1)), names...); err != nil {
		t.Error(err)
	}
	natErr = errors.New("netlink: no buffer space")
	nat = nat[1:]
	want = strings.Replace(want, `virtual_server="api"} 8`, `virtual_server="api"} 1`, 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "%d", "1", 1)), names...); err != nil {
		t.Error(err)
	}
}

// Without sources only the error counter is there.
func TestConnectionsNoSource(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, "test")
	if n, err := testutil.GatherAndCount(reg, "vipd_real_server_connections_total", "vipd_real_server_connections_read_errors_total"); err != nil || n != 1 {
		t.Errorf("%d series (%v), want the error counter alone", n, err)
	}
}
