package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// BGPPeerSample is one BGP session at a scrape.
type BGPPeerSample struct {
	Peer   string  // address
	State  float64 // 0 idle … 5 established (bgp.StateValue)
	Uptime float64 // seconds since established, 0 unless it is
	// BFD says whether the peer has BFD, BFDUp whether it is up.
	BFD, BFDUp bool
	// ConnectFailures counts attempts that did not establish a session.
	ConnectFailures uint64
}

// BGPStats is what the daemon's BGP speaker reports at a scrape.
type BGPStats struct {
	Peers  []BGPPeerSample
	Routes int // announced
}

// BGPCollector exports the BGP speaker's series from its source; none
// without a bgp section.
type BGPCollector struct {
	mu     sync.Mutex
	source func() (BGPStats, bool)

	state, uptime, routes, bfdUp, failures *prometheus.Desc
}

func newBGPCollector() *BGPCollector {
	return &BGPCollector{
		state: prometheus.NewDesc("vipd_bgp_peer_state",
			"BGP session state: 0 idle, 1 connect, 2 active, 3 opensent, 4 openconfirm, 5 established.", []string{"peer"}, nil),
		uptime: prometheus.NewDesc("vipd_bgp_peer_uptime_seconds",
			"How long the BGP session has been established; 0 while it is not.", []string{"peer"}, nil),
		bfdUp: prometheus.NewDesc("vipd_bgp_peer_bfd_up",
			"Whether the BFD session with the BGP peer is up (1) or not (0); only for peers with bfd.", []string{"peer"}, nil),
		failures: prometheus.NewDesc("vipd_bgp_peer_connect_failures_total",
			"Connection attempts to the BGP peer that did not establish a session: refused, unanswered, or closed by a NOTIFICATION.", []string{"peer"}, nil),
		routes: prometheus.NewDesc("vipd_bgp_routes_announced",
			"Routes (VIPs) vipd announces to its BGP peers now.", nil, nil),
	}
}

// SetSource makes source the provider of the stats; it returns false
// while there is no speaker.
func (c *BGPCollector) SetSource(source func() (BGPStats, bool)) {
	c.mu.Lock()
	c.source = source
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *BGPCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.uptime
	ch <- c.routes
	ch <- c.bfdUp
	ch <- c.failures
}

// Collect implements prometheus.Collector.
func (c *BGPCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	s, ok := source()
	if !ok {
		return
	}
	for _, p := range s.Peers {
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, p.State, p.Peer)
		ch <- prometheus.MustNewConstMetric(c.uptime, prometheus.GaugeValue, p.Uptime, p.Peer)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(p.ConnectFailures), p.Peer)
		if p.BFD {
			up := 0.0
			if p.BFDUp {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.bfdUp, prometheus.GaugeValue, up, p.Peer)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(s.Routes))
}
