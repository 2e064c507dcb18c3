package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The metric names are a contract with dashboards and alerts.
func TestNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3")
	m.InstanceState.WithLabelValues("api", "eth0", "51", "ipv4", "master").Set(1)
	m.Priority.WithLabelValues("api", "effective").Set(150)
	m.Transitions.WithLabelValues("api", "backup", "master").Inc()
	m.AdvertsSent.WithLabelValues("api").Inc()
	m.AdvertsReceived.WithLabelValues("api").Inc()
	m.PacketsDropped.WithLabelValues("eth0", "ttl").Inc()
	m.Announcements.WithLabelValues("api", "garp").Inc()
	m.MasterChangesSeen.WithLabelValues("api").Inc()
	m.SplitBrain.WithLabelValues("api").Set(0)
	m.MasterInfo.WithLabelValues("api", "192.0.2.11").Set(1)
	m.VIPRepairs.WithLabelValues("api", "added").Inc()
	m.CheckUp.WithLabelValues("apiserver").Set(1)
	m.CheckDuration.WithLabelValues("apiserver").Observe(0.01)
	want := []string{
		"vipd_instance_state", "vipd_instance_priority", "vipd_transitions_total",
		"vipd_adverts_sent_total", "vipd_adverts_received_total", "vipd_packets_dropped_total",
		"vipd_announcements_sent_total", "vipd_master_changes_seen_total", "vipd_split_brain",
		"vipd_instance_master_info", "vipd_vip_repairs_total", "vipd_check_up", "vipd_check_duration_seconds", "vipd_build_info",
		"go_goroutines", "process_resident_memory_bytes",
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range want {
		if !got[name] {
			t.Errorf("metric %s is missing", name)
		}
	}
	if got := testutil.ToFloat64(m.BuildInfo.WithLabelValues("v1.2.3", runtime.Version())); got != 1 {
		t.Errorf("vipd_build_info{version=v1.2.3} = %v, want 1", got)
	}
	m.DeleteInstance("api")
	if n := testutil.CollectAndCount(m.AdvertsSent); n != 0 {
		t.Errorf("%d series left after DeleteInstance", n)
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	New(reg, "test")
	var sick error
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, reg, func(context.Context) error { return sick }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "vipd_build_info") {
		t.Errorf("/metrics: %d, %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d, %q", code, body)
	}
	sick = errors.New("an instance's protocol loop did not answer")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "did not answer") {
		t.Errorf("/healthz while sick: %d, %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
