package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestProxySeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "test")
	m.Proxy.SetSource(func() []ProxyStats {
		return []ProxyStats{{VirtualServer: "apiserver", Retries: 3, Rejected: map[string]uint64{"no_backend": 2, "connect_failed": 1},
			RealServers: []ProxyRealServer{{Address: "192.0.2.11", Port: 6443, Live: 4, Total: 40, ConnectFailures: 3, BytesIn: 100, BytesOut: 2000}}}}
	})
	want := `
# HELP vipd_real_server_bytes_total Bytes a proxy virtual server moved, from clients to the real server (in) and back (out).
# TYPE vipd_real_server_bytes_total counter
vipd_real_server_bytes_total{address="192.0.2.11",direction="in",port="6443",virtual_server="apiserver"} 100
vipd_real_server_bytes_total{address="192.0.2.11",direction="out",port="6443",virtual_server="apiserver"} 2000
# HELP vipd_real_server_connect_failures_total Connects of a proxy virtual server to the real server that failed (refused or timed out); each was retried on the next real server.
# TYPE vipd_real_server_connect_failures_total counter
vipd_real_server_connect_failures_total{address="192.0.2.11",port="6443",virtual_server="apiserver"} 3
# HELP vipd_real_server_connections Connections a proxy virtual server carries to the real server now.
# TYPE vipd_real_server_connections gauge
vipd_real_server_connections{address="192.0.2.11",port="6443",virtual_server="apiserver"} 4
# HELP vipd_virtual_server_rejected_total Client connections a proxy virtual server closed at once, by reason: no_backend (no healthy real server), connect_failed (every real server tried failed).
# TYPE vipd_virtual_server_rejected_total counter
vipd_virtual_server_rejected_total{reason="connect_failed",virtual_server="apiserver"} 1
vipd_virtual_server_rejected_total{reason="no_backend",virtual_server="apiserver"} 2
# HELP vipd_virtual_server_retries_total Connects a proxy virtual server tried on another real server after one failed.
# TYPE vipd_virtual_server_retries_total counter
vipd_virtual_server_retries_total{virtual_server="apiserver"} 3
`
	names := []string{"vipd_real_server_bytes_total", "vipd_real_server_connect_failures_total", "vipd_real_server_connections",
		"vipd_virtual_server_rejected_total", "vipd_virtual_server_retries_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The connections total is lb.go's, for both modes.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vipd_real_server_connections_total" {
			t.Error("the proxy collector exports vipd_real_server_connections_total")
		}
	}
}
