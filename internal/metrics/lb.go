package metrics

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RealServerConnections is how many connections one real server of a
// virtual server has been sent, at a scrape.
type RealServerConnections struct {
	VirtualServer string
	Address       netip.Addr
	Port          uint16
	Total         uint64
}

// ConnectionsSource reads the real servers' connection totals. On error,
// what it returns beside the error is still exported.
type ConnectionsSource func() ([]RealServerConnections, error)

// ConnectionsCollector exports vipd_real_server_connections_total, read
// from its sources at every scrape (the nat table's counters; the proxy's
// totals). A real server that two sources report has their sum.
type ConnectionsCollector struct {
	mu         sync.Mutex
	sources    []ConnectionsSource
	readErrors atomic.Uint64

	total, errors *prometheus.Desc
}

func newConnectionsCollector() *ConnectionsCollector {
	return &ConnectionsCollector{
		total: prometheus.NewDesc("vipd_real_server_connections_total",
			"New connections to the virtual server sent to the real server (nat: DNATed, from the network and from the host itself).",
			[]string{"virtual_server", "address", "port"}, nil),
		errors: prometheus.NewDesc("vipd_real_server_connections_read_errors_total",
			"Scrapes at which reading the real servers' connection counts failed.", nil, nil),
	}
}

// AddSource adds a provider of connection totals.
func (c *ConnectionsCollector) AddSource(s ConnectionsSource) {
	c.mu.Lock()
	c.sources = append(c.sources, s)
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *ConnectionsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.errors
}

type connKey struct {
	vs   string
	addr netip.Addr
	port uint16
}

// Collect implements prometheus.Collector.
func (c *ConnectionsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := c.sources
	c.mu.Unlock()
	sum := make(map[connKey]uint64)
	var order []connKey
	for _, s := range sources {
		rs, err := s()
		if err != nil {
			c.readErrors.Add(1)
		}
		for _, r := range rs {
			k := connKey{r.VirtualServer, r.Address, r.Port}
			if _, ok := sum[k]; !ok {
				order = append(order, k)
			}
			sum[k] += r.Total
		}
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(sum[k]),
			k.vs, k.addr.String(), strconv.Itoa(int(k.port)))
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(c.readErrors.Load()))
}
