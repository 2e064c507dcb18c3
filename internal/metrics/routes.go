package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteStats is what the virtual routes and rules manager reports at a
// scrape.
type RouteStats struct {
	Routes, Rules      int // installed
	Pending, Conflicts int
	Repairs, Failures  uint64
}

// RoutesCollector exports the virtual routes' series from its source.
type RoutesCollector struct {
	mu     sync.Mutex
	source func() RouteStats

	installed, pending, conflicts, repairs, failures *prometheus.Desc
}

func newRoutesCollector() *RoutesCollector {
	return &RoutesCollector{
		installed: prometheus.NewDesc("vipd_virtual_routes",
			"Virtual routes and rules in the kernel now, by kind (route, rule).", []string{"kind"}, nil),
		pending: prometheus.NewDesc("vipd_virtual_routes_pending",
			"Virtual routes and rules wanted but not in the kernel: their adds failed and are retried (a next hop or source address missing).", nil, nil),
		conflicts: prometheus.NewDesc("vipd_virtual_route_conflicts",
			"Wanted virtual routes that lost to another instance's route to the same destination, table and metric with other attributes.", nil, nil),
		repairs: prometheus.NewDesc("vipd_virtual_route_repairs_total",
			"Virtual routes and rules put back after they vanished from the kernel or were changed under vipd.", nil, nil),
		failures: prometheus.NewDesc("vipd_virtual_route_failures_total",
			"Kernel operations on virtual routes and rules that failed, every attempt of a retried one.", nil, nil),
	}
}

// SetSource makes source the provider of the stats.
func (c *RoutesCollector) SetSource(source func() RouteStats) {
	c.mu.Lock()
	c.source = source
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *RoutesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.installed, c.pending, c.conflicts, c.repairs, c.failures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RoutesCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	s := source()
	ch <- prometheus.MustNewConstMetric(c.installed, prometheus.GaugeValue, float64(s.Routes), "route")
	ch <- prometheus.MustNewConstMetric(c.installed, prometheus.GaugeValue, float64(s.Rules), "rule")
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.GaugeValue, float64(s.Conflicts))
	ch <- prometheus.MustNewConstMetric(c.repairs, prometheus.CounterValue, float64(s.Repairs))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.Failures))
}
