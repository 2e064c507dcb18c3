package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// States are the instance states, in the order of InstanceSample.Transitions.
var States = [...]string{"init", "backup", "master", "fault"}

// InstanceSample is one instance's series at a scrape.
type InstanceSample struct {
	Name, Interface, Family string
	VRID                    uint8
	// State indexes States.
	State                 int
	Configured, Effective uint8
	Master                string // "" while no Master is known
	SplitBrain            bool
	Sent, Received        uint64
	// Announcements are counted under AnnounceKind: garp or na.
	Announcements  uint64
	AnnounceKind   string
	MasterChanges  uint64
	Added, Removed uint64 // VIP repairs
	// Transitions counts state changes, from × to, indexed as States.
	Transitions [len(States)][len(States)]uint64
}

// InstanceCollector builds the instances' series at every scrape from the
// samples its source yields.
type InstanceCollector struct {
	mu     sync.Mutex
	source func(yield func(*InstanceSample))

	state, priority, transitions, sent, received, announcements,
	masterChanges, splitBrain, masterInfo, repairs *prometheus.Desc
}

func newInstanceCollector() *InstanceCollector {
	return &InstanceCollector{
		state: prometheus.NewDesc("vipd_instance_state",
			"1 for the instance's current VRRP state, 0 for the others.",
			[]string{"instance", "interface", "vrid", "family", "state"}, nil),
		priority: prometheus.NewDesc("vipd_instance_priority",
			"The instance's VRRP priority: configured, and effective (after check weights).",
			[]string{"instance", "kind"}, nil),
		transitions: prometheus.NewDesc("vipd_transitions_total",
			"State transitions of an instance.", []string{"instance", "from", "to"}, nil),
		sent: prometheus.NewDesc("vipd_adverts_sent_total",
			"VRRP advertisements sent.", []string{"instance"}, nil),
		received: prometheus.NewDesc("vipd_adverts_received_total",
			"Valid VRRP advertisements received for the instance.", []string{"instance"}, nil),
		announcements: prometheus.NewDesc("vipd_announcements_sent_total",
			"Gratuitous ARPs (garp) and unsolicited neighbour advertisements (na) sent, one per VIP per round.",
			[]string{"instance", "kind"}, nil),
		masterChanges: prometheus.NewDesc("vipd_master_changes_seen_total",
			"Times the instance saw the Master of its virtual router change.", []string{"instance"}, nil),
		splitBrain: prometheus.NewDesc("vipd_split_brain",
			"1 while this host is Master and another router advertises as Master for the same virtual router.",
			[]string{"instance"}, nil),
		masterInfo: prometheus.NewDesc("vipd_instance_master_info",
			"1 for the address of the instance's current Master, as this host knows it.",
			[]string{"instance", "master"}, nil),
		repairs: prometheus.NewDesc("vipd_vip_repairs_total",
			"Times the kernel's addresses drifted from what the instance needs and vipd repaired them: a VIP put back on a Master (added), or taken off a host that is not Master (removed).",
			[]string{"instance", "action"}, nil),
	}
}

// SetSource makes source the provider of the instances' samples; it calls
// yield once per instance.
func (c *InstanceCollector) SetSource(source func(yield func(*InstanceSample))) {
	c.mu.Lock()
	c.source = source
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *InstanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.priority, c.transitions, c.sent, c.received,
		c.announcements, c.masterChanges, c.splitBrain, c.masterInfo, c.repairs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *InstanceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	source(func(s *InstanceSample) {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		vrid := strconv.Itoa(int(s.VRID))
		for i, st := range States {
			gauge(c.state, b2f(i == s.State), s.Name, s.Interface, vrid, s.Family, st)
		}
		gauge(c.priority, float64(s.Configured), s.Name, "configured")
		gauge(c.priority, float64(s.Effective), s.Name, "effective")
		for from, row := range s.Transitions {
			for to, n := range row {
				if n > 0 {
					counter(c.transitions, n, s.Name, States[from], States[to])
				}
			}
		}
		counter(c.sent, s.Sent, s.Name)
		counter(c.received, s.Received, s.Name)
		counter(c.announcements, s.Announcements, s.Name, s.AnnounceKind)
		counter(c.masterChanges, s.MasterChanges, s.Name)
		gauge(c.splitBrain, b2f(s.SplitBrain), s.Name)
		if s.Master != "" {
			gauge(c.masterInfo, 1, s.Name, s.Master)
		}
		counter(c.repairs, s.Added, s.Name, "added")
		counter(c.repairs, s.Removed, s.Name, "removed")
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
