package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ProxyStats is what one proxy virtual server reports at a scrape.
type ProxyStats struct {
	VirtualServer string
	// Rejected counts client connections closed at once, by reason
	// (no_backend, connect_failed).
	Rejected    map[string]uint64
	Retries     uint64
	RealServers []ProxyRealServer
}

// ProxyRealServer is one real server of a proxy. Total is not exported
// here: the connections total is one series for both modes (lb.go).
type ProxyRealServer struct {
	Address           string
	Port              uint16
	Live, Total       uint64
	ConnectFailures   uint64
	BytesIn, BytesOut uint64
}

// ProxyCollector exports the proxy virtual servers' series from its
// source.
type ProxyCollector struct {
	mu     sync.Mutex
	source func() []ProxyStats

	live, failures, bytes, rejected, retries *prometheus.Desc
}

func newProxyCollector() *ProxyCollector {
	rs := []string{"virtual_server", "address", "port"}
	return &ProxyCollector{
		live: prometheus.NewDesc("vipd_real_server_connections",
			"Connections a proxy virtual server carries to the real server now.", rs, nil),
		failures: prometheus.NewDesc("vipd_real_server_connect_failures_total",
			"Connects of a proxy virtual server to the real server that failed (refused or timed out); each was retried on the next real server.", rs, nil),
		bytes: prometheus.NewDesc("vipd_real_server_bytes_total",
			"Bytes a proxy virtual server moved, from clients to the real server (in) and back (out).", append(rs, "direction"), nil),
		rejected: prometheus.NewDesc("vipd_virtual_server_rejected_total",
			"Client connections a proxy virtual server closed at once, by reason: no_backend (no healthy real server), connect_failed (every real server tried failed).", []string{"virtual_server", "reason"}, nil),
		retries: prometheus.NewDesc("vipd_virtual_server_retries_total",
			"Connects a proxy virtual server tried on another real server after one failed.", []string{"virtual_server"}, nil),
	}
}

// SetSource makes source the provider of the stats.
func (c *ProxyCollector) SetSource(source func() []ProxyStats) {
	c.mu.Lock()
	c.source = source
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *ProxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.live, c.failures, c.bytes, c.rejected, c.retries} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ProxyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	for _, v := range source() {
		for reason, n := range v.Rejected {
			ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), v.VirtualServer, reason)
		}
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(v.Retries), v.VirtualServer)
		for _, r := range v.RealServers {
			port := strconv.Itoa(int(r.Port))
			ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(r.Live), v.VirtualServer, r.Address, port)
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(r.ConnectFailures), v.VirtualServer, r.Address, port)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(r.BytesIn), v.VirtualServer, r.Address, port, "in")
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(r.BytesOut), v.VirtualServer, r.Address, port, "out")
		}
	}
}
