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
	m.Instances.SetSource(func(yield func(*InstanceSample)) {
		s := &InstanceSample{Name: "api", Interface: "eth0", Family: "ipv4", VRID: 51, State: 2,
			Configured: 150, Effective: 150, Master: "192.0.2.11", AnnounceKind: "garp"}
		s.Transitions[1][2] = 1
		yield(s)
	})
	m.Routes.SetSource(func() RouteStats { return RouteStats{Routes: 2, Rules: 1, Repairs: 1} })
	m.PacketsDropped.WithLabelValues("eth0", "ttl").Inc()
	m.CheckUp.WithLabelValues("apiserver").Set(1)
	m.CheckDuration.WithLabelValues("apiserver").Observe(0.01)
	m.SetSyncGroupState("gw", 2)
	m.VirtualServerUp.WithLabelValues("apiserver").Set(1)
	m.VirtualServerHealthy.WithLabelValues("apiserver").Set(2)
	m.RealServerUp.WithLabelValues("apiserver", "192.0.2.11", "6443").Set(1)
	want := []string{
		"vipd_instance_state", "vipd_instance_priority", "vipd_transitions_total",
		"vipd_adverts_sent_total", "vipd_adverts_received_total", "vipd_packets_dropped_total",
		"vipd_announcements_sent_total", "vipd_master_changes_seen_total", "vipd_split_brain",
		"vipd_instance_master_info", "vipd_vip_repairs_total",
		"vipd_virtual_routes", "vipd_virtual_routes_pending", "vipd_virtual_route_conflicts", "vipd_virtual_route_repairs_total", "vipd_virtual_route_failures_total", "vipd_check_up", "vipd_check_duration_seconds", "vipd_sync_group_state", "vipd_build_info",
		"vipd_virtual_server_up", "vipd_virtual_server_healthy_real_servers", "vipd_real_server_up",
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
			t.Errorf("metric %s not exported", name)
		}
	}
	if got := testutil.ToFloat64(m.SyncGroupState.WithLabelValues("gw", "master")); got != 1 {
		t.Errorf("vipd_sync_group_state{group=gw,state=master} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.SyncGroupState.WithLabelValues("gw", "backup")); got != 0 {
		t.Errorf("vipd_sync_group_state{group=gw,state=backup} = %v, want 0", got)
	}
	m.DeleteSyncGroup("gw")
	if n := testutil.CollectAndCount(m.SyncGroupState); n != 0 {
		t.Errorf("%d sync group series left after DeleteSyncGroup", n)
	}
	if got := testutil.ToFloat64(m.BuildInfo.WithLabelValues("v1.2.3", runtime.Version())); got != 1 {
		t.Errorf("vipd_build_info{version=v1.2.3} = %v, want 1", got)
	}
}

// An instance's series are exactly what its sample says, and go with it.
func TestInstanceSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "test")
	var samples []*InstanceSample
	m.Instances.SetSource(func(yield func(*InstanceSample)) {
		for _, s := range samples {
			yield(s)
		}
	})
	s := &InstanceSample{Name: "api", Interface: "eth0", Family: "ipv6", VRID: 51, State: 2,
		Configured: 150, Effective: 90, Master: "fe80::11", SplitBrain: true, Sent: 7, Received: 3,
		Announcements: 5, AnnounceKind: "na", MasterChanges: 2, Added: 1}
	s.Transitions[0][1], s.Transitions[1][2] = 1, 2
	samples = []*InstanceSample{s}
	want := `
# HELP vipd_instance_state 1 for the instance's current VRRP state, 0 for the others.
# TYPE vipd_instance_state gauge
vipd_instance_state{family="ipv6",instance="api",interface="eth0",state="backup",vrid="51"} 0
vipd_instance_state{family="ipv6",instance="api",interface="eth0",state="fault",vrid="51"} 0
vipd_instance_state{family="ipv6",instance="api",interface="eth0",state="init",vrid="51"} 0
vipd_instance_state{family="ipv6",instance="api",interface="eth0",state="master",vrid="51"} 1
# HELP vipd_instance_priority The instance's VRRP priority: configured, and effective (after check weights).
# TYPE vipd_instance_priority gauge
vipd_instance_priority{instance="api",kind="configured"} 150
vipd_instance_priority{instance="api",kind="effective"} 90
# HELP vipd_transitions_total State transitions of an instance.
# TYPE vipd_transitions_total counter
vipd_transitions_total{from="backup",instance="api",to="master"} 2
vipd_transitions_total{from="init",instance="api",to="backup"} 1
# HELP vipd_adverts_sent_total VRRP advertisements sent.
# TYPE vipd_adverts_sent_total counter
vipd_adverts_sent_total{instance="api"} 7
# HELP vipd_adverts_received_total Valid VRRP advertisements received for the instance.
# TYPE vipd_adverts_received_total counter
vipd_adverts_received_total{instance="api"} 3
# HELP vipd_announcements_sent_total Gratuitous ARPs (garp) and unsolicited neighbour advertisements (na) sent, one per VIP per round.
# TYPE vipd_announcements_sent_total counter
vipd_announcements_sent_total{instance="api",kind="na"} 5
# HELP vipd_master_changes_seen_total Times the instance saw the Master of its virtual router change.
# TYPE vipd_master_changes_seen_total counter
vipd_master_changes_seen_total{instance="api"} 2
# HELP vipd_split_brain 1 while this host is Master and another router advertises as Master for the same virtual router.
# TYPE vipd_split_brain gauge
vipd_split_brain{instance="api"} 1
# HELP vipd_instance_master_info 1 for the address of the instance's current Master, as this host knows it.
# TYPE vipd_instance_master_info gauge
vipd_instance_master_info{instance="api",master="fe80::11"} 1
# HELP vipd_vip_repairs_total Times the kernel's addresses drifted from what the instance needs and vipd repaired them: a VIP put back on a Master (added), or taken off a host that is not Master (removed).
# TYPE vipd_vip_repairs_total counter
vipd_vip_repairs_total{action="added",instance="api"} 1
vipd_vip_repairs_total{action="removed",instance="api"} 0
`
	names := []string{"vipd_instance_state", "vipd_instance_priority", "vipd_transitions_total", "vipd_adverts_sent_total",
		"vipd_adverts_received_total", "vipd_announcements_sent_total", "vipd_master_changes_seen_total", "vipd_split_brain",
		"vipd_instance_master_info", "vipd_vip_repairs_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	samples = nil
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 0 {
		t.Errorf("%d series (%v) once the instance is gone, want 0", n, err)
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
