package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is every collector vipd exports. Its names are a contract:
// metrics_test.go pins them.
type Metrics struct {
	InstanceState     *prometheus.GaugeVec   // instance, interface, vrid, family, state
	Priority          *prometheus.GaugeVec   // instance, kind = configured | effective
	Transitions       *prometheus.CounterVec // instance, from, to
	AdvertsSent       *prometheus.CounterVec // instance
	AdvertsReceived   *prometheus.CounterVec // instance
	PacketsDropped    *prometheus.CounterVec // interface, reason
	Announcements     *prometheus.CounterVec // instance, kind = garp | na
	MasterChangesSeen *prometheus.CounterVec // instance
	SplitBrain        *prometheus.GaugeVec   // instance
	MasterInfo        *prometheus.GaugeVec   // instance, master
	VIPRepairs        *prometheus.CounterVec // instance, action = added | removed
	CheckUp           *prometheus.GaugeVec   // check
	CheckDuration     *prometheus.HistogramVec
	BuildInfo         *prometheus.GaugeVec // version, goversion
}

// New creates the collectors and registers them, with the Go and process
// collectors, into reg.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		InstanceState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_instance_state",
			Help: "1 for the instance's current VRRP state, 0 for the others.",
		}, []string{"instance", "interface", "vrid", "family", "state"}),
		Priority: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_instance_priority",
			Help: "The instance's VRRP priority: configured, and effective (after check weights).",
		}, []string{"instance", "kind"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_transitions_total",
			Help: "State transitions of an instance.",
		}, []string{"instance", "from", "to"}),
		AdvertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_adverts_sent_total",
			Help: "VRRP advertisements sent.",
		}, []string{"instance"}),
		AdvertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_adverts_received_total",
			Help: "Valid VRRP advertisements received for the instance.",
		}, []string{"instance"}),
		PacketsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_packets_dropped_total",
			Help: "Received VRRP packets dropped, by reason.",
		}, []string{"interface", "reason"}),
		Announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_announcements_sent_total",
			Help: "Gratuitous ARPs (garp) and unsolicited neighbour advertisements (na) sent, one per VIP per round.",
		}, []string{"instance", "kind"}),
		MasterChangesSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_master_changes_seen_total",
			Help: "Times the instance saw the Master of its virtual router change.",
		}, []string{"instance"}),
		SplitBrain: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_split_brain",
			Help: "1 while this host is Master and another router advertises as Master for the same virtual router.",
		}, []string{"instance"}),
		MasterInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_instance_master_info",
			Help: "1 for the address of the instance's current Master, as this host knows it.",
		}, []string{"instance", "master"}),
		VIPRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_vip_repairs_total",
			Help: "Times the kernel's addresses drifted from what the instance needs and vipd repaired them: a VIP put back on a Master (added), or taken off a host that is not Master (removed).",
		}, []string{"instance", "action"}),
		CheckUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_check_up",
			Help: "1 while the health check counts as up.",
		}, []string{"check"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vipd_check_duration_seconds",
			Help:    "How long health check runs took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_build_info",
			Help: "1, labelled with vipd's version and the Go version it was built with.",
		}, []string{"version", "goversion"}),
	}
	reg.MustRegister(
		m.InstanceState, m.Priority, m.Transitions, m.AdvertsSent, m.AdvertsReceived,
		m.PacketsDropped, m.Announcements, m.MasterChangesSeen, m.SplitBrain, m.MasterInfo, m.VIPRepairs,
		m.CheckUp, m.CheckDuration, m.BuildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return m
}

// Serve serves /metrics from g and /healthz on ln until ctx is done.
// /healthz answers 200 "ok" while healthy(ctx) returns nil, else 503 with
// the error: a liveness probe that sees a wedged protocol loop.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer, healthy func(context.Context) error, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		hctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := healthy(hctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// DeleteInstance removes every series of the named instance, after a reload
// removed it.
func (m *Metrics) DeleteInstance(name string) {
	l := prometheus.Labels{"instance": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.InstanceState, m.Priority, m.Transitions, m.AdvertsSent, m.AdvertsReceived,
		m.Announcements, m.MasterChangesSeen, m.SplitBrain, m.MasterInfo, m.VIPRepairs,
	} {
		v.DeletePartialMatch(l)
	}
}
