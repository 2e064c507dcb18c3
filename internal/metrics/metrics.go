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
//
// The series of the instances are not stored in vectors: at every scrape
// the Instances collector asks its source (the daemon) for a sample of each
// running instance and builds them then. A vector child keeps its label
// pairs as protobuf values, several hundred bytes a series, which at
// hundreds of instances was most of vipd's private memory.
type Metrics struct {
	Instances      *InstanceCollector
	Routes         *RoutesCollector
	PacketsDropped *prometheus.CounterVec // interface, reason
	CheckUp        *prometheus.GaugeVec   // check
	CheckDuration  *prometheus.HistogramVec
	SyncGroupState *prometheus.GaugeVec // group, state
	BuildInfo      *prometheus.GaugeVec // version, goversion
	// Load balancing (docs/load-balancing.md).
	VirtualServerUp      *prometheus.GaugeVec // virtual_server
	VirtualServerHealthy *prometheus.GaugeVec // virtual_server
	RealServerUp         *prometheus.GaugeVec // virtual_server, address, port
	Connections          *ConnectionsCollector
	Proxy                *ProxyCollector // proxy virtual servers (proxy.go)
	// BGP is the BGP speaker's sessions and routes (docs/bgp.md).
	BGP *BGPCollector
}

// New creates the collectors and registers them, with the Go and process
// collectors, into reg.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		Instances: newInstanceCollector(),
		Routes:    newRoutesCollector(),
		BGP:       newBGPCollector(),
		Proxy:     newProxyCollector(),
		PacketsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipd_packets_dropped_total",
			Help: "Received VRRP packets dropped, by reason.",
		}, []string{"interface", "reason"}),
		CheckUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_check_up",
			Help: "1 while the health check counts as up.",
		}, []string{"check"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vipd_check_duration_seconds",
			Help:    "How long health check runs took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check"}),
		SyncGroupState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_sync_group_state",
			Help: "1 for the sync group's current state, 0 for the others: master once every member is, fault while one is, backup otherwise.",
		}, []string{"group", "state"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_build_info",
			Help: "1, labelled with vipd's version and the Go version it was built with.",
		}, []string{"version", "goversion"}),
		VirtualServerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_virtual_server_up",
			Help: "1 while at least the virtual server's quorum of real servers is healthy; 0 while it refuses new connections.",
		}, []string{"virtual_server"}),
		VirtualServerHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_virtual_server_healthy_real_servers",
			Help: "How many of the virtual server's real servers pass their health check.",
		}, []string{"virtual_server"}),
		RealServerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipd_real_server_up",
			Help: "1 while the real server passes its health check.",
		}, []string{"virtual_server", "address", "port"}),
		Connections: newConnectionsCollector(),
	}
	reg.MustRegister(
		m.Instances, m.Routes, m.PacketsDropped, m.CheckUp, m.CheckDuration, m.SyncGroupState, m.BuildInfo,
		m.VirtualServerUp, m.VirtualServerHealthy, m.RealServerUp, m.Connections, m.Proxy, m.BGP,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return m
}

// SetSyncGroupState sets a sync group's state series; state indexes
// States.
func (m *Metrics) SetSyncGroupState(group string, state int) {
	for i, st := range States {
		v := 0.0
		if i == state {
			v = 1
		}
		m.SyncGroupState.WithLabelValues(group, st).Set(v)
	}
}

// DeleteSyncGroup removes a sync group's series.
func (m *Metrics) DeleteSyncGroup(group string) {
	m.SyncGroupState.DeletePartialMatch(prometheus.Labels{"group": group})
}

// DeleteVirtualServer removes a virtual server's series and its real
// servers'.
func (m *Metrics) DeleteVirtualServer(name string) {
	m.VirtualServerUp.DeleteLabelValues(name)
	m.VirtualServerHealthy.DeleteLabelValues(name)
	m.RealServerUp.DeletePartialMatch(prometheus.Labels{"virtual_server": name})
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
