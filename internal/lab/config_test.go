package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

func TestVipdConfig(t *testing.T) {
	got := VipdConfig("/tmp/x/n1.sock", Instance{
		VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{VIP},
	})
	want := `control_socket: "/tmp/x/n1.sock"
instances:
  - name: api
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.50/24"]
    announce: {count: 5, interval: 200ms}
`
	if got != want {
		t.Errorf("VipdConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestKeepalivedConfig(t *testing.T) {
	got := KeepalivedConfig("n2", Instance{
		VRID: 51, Priority: 100, AdvertInterval: 10 * time.Millisecond,
		VIPs: []netip.Prefix{VIP},
	})
	want := `global_defs {
  router_id n2
  vrrp_version 3
  vrrp_garp_interval 0.2
}
vrrp_instance api {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.01
  nopreempt
  garp_master_repeat 5
  garp_master_delay 0
  virtual_ipaddress {
    192.0.2.50/24 dev eth0
  }
}
`
	if got != want {
		t.Errorf("KeepalivedConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestRFCTimes(t *testing.T) {
	for _, tt := range []struct {
		prio     int
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{100, 10 * time.Millisecond, 6093750 * time.Nanosecond, 36093750 * time.Nanosecond},
		{255, 100 * time.Millisecond, 390625 * time.Nanosecond, 300390625 * time.Nanosecond},
	} {
		if got := SkewTime(tt.prio, tt.interval); got != tt.skew {
			t.Errorf("SkewTime(%d, %v) = %v, want %v", tt.prio, tt.interval, got, tt.skew)
		}
		if got := MasterDownInterval(tt.prio, tt.interval); got != tt.mdi {
			t.Errorf("MasterDownInterval(%d, %v) = %v, want %v", tt.prio, tt.interval, got, tt.mdi)
		}
	}
}

func TestNodeAddr(t *testing.T) {
	if got, want := NodeAddr(1), netip.MustParsePrefix("192.0.2.11/24"); got != want {
		t.Errorf("NodeAddr(1) = %v, want %v", got, want)
	}
}

// The instances the lab renders for both daemons, one of each kind.
var (
	ipv6Instance = Instance{
		Name: "api6", VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{VIP6},
	}
	v2Instance = Instance{
		Name: "v2", VRID: 52, Priority: 100, AdvertInterval: time.Second, Preempt: true,
		VIPs: []netip.Prefix{VIP}, Version: 2, AuthPass: "s3cret",
	}
	unicastInstance = Instance{
		Name: "uni", VRID: 53, Priority: 100, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs:          []netip.Prefix{netip.MustParsePrefix("192.0.2.51/24")},
		UnicastPeers:  []netip.Addr{NodeAddr(2).Addr(), NodeAddr(3).Addr()},
		UnicastSource: NodeAddr(1).Addr(),
	}
	unicast6Instance = Instance{
		Name: "uni6", VRID: 53, Priority: 100, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs:          []netip.Prefix{netip.MustParsePrefix("2001:db8::51/64")},
		UnicastPeers:  []netip.Addr{NodeAddr6(2).Addr()},
		UnicastSource: NodeAddr6(1).Addr(),
	}
)

func TestVipdConfigFamiliesUnicastV2(t *testing.T) {
	f := VipdFile{
		ControlSocket: "/tmp/x/n1.sock",
		MetricsListen: "127.0.0.1:9405",
		Instances:     []Instance{ipv6Instance, v2Instance, unicastInstance, unicast6Instance},
	}
	got := f.YAML()
	want := `control_socket: "/tmp/x/n1.sock"
metrics: {listen: "127.0.0.1:9405"}
instances:
  - name: api6
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["2001:db8::50/64"]
    announce: {count: 5, interval: 200ms}
  - name: v2
    interface: eth0
    vrid: 52
    priority: 100
    advert_interval: 1s
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.50/24"]
    announce: {count: 5, interval: 200ms}
    version: 2
    auth_pass: "s3cret"
  - name: uni
    interface: eth0
    vrid: 53
    priority: 100
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.51/24"]
    announce: {count: 5, interval: 200ms}
    unicast_peers: ["192.0.2.12", "192.0.2.13"]
    unicast_source: "192.0.2.11"
  - name: uni6
    interface: eth0
    vrid: 53
    priority: 100
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["2001:db8::51/64"]
    announce: {count: 5, interval: 200ms}
    unicast_peers: ["2001:db8::12"]
    unicast_source: "2001:db8::11"
`
	if got != want {
		t.Errorf("VipdFile.YAML:\n%s\nwant:\n%s", got, want)
	}
	// vipd itself accepts what the lab writes.
	cfg, err := config.Parse("lab.yaml", []byte(got))
	if err != nil {
		t.Fatalf("vipd rejects the lab's config: %v", err)
	}
	if n := len(cfg.Instances); n != 4 {
		t.Errorf("%d instances parsed, want 4", n)
	}
	csum := Instance{VRID: 54, Priority: 100, AdvertInterval: time.Second, VIPs: []netip.Prefix{VIP}, V3ChecksumAsV2: true}
	if _, err := config.Parse("lab.yaml", []byte(VipdConfig("/tmp/s", csum))); err != nil {
		t.Errorf("vipd rejects v3_checksum_as_v2: %v", err)
	}
}

func TestKeepalivedConfigFamiliesUnicastV2(t *testing.T) {
	got := KeepalivedConfig("n1", ipv6Instance, v2Instance, unicastInstance)
	want := `global_defs {
  router_id n1
  vrrp_version 3
  vrrp_garp_interval 0.2
}
vrrp_instance api6 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.1
  garp_master_repeat 5
  garp_master_delay 0
  virtual_ipaddress {
    2001:db8::50/64 dev eth0
  }
}
vrrp_instance v2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  version 2
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  garp_master_repeat 5
  garp_master_delay 0
  virtual_ipaddress {
    192.0.2.50/24 dev eth0
  }
}
vrrp_instance uni {
  state BACKUP
  interface eth0
  virtual_router_id 53
  priority 100
  advert_int 0.1
  unicast_src_ip 192.0.2.11
  unicast_peer {
    192.0.2.12
    192.0.2.13
  }
  garp_master_repeat 5
  garp_master_delay 0
  virtual_ipaddress {
    192.0.2.51/24 dev eth0
  }
}
`
	if got != want {
		t.Errorf("KeepalivedConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestNodeAddr6(t *testing.T) {
	for i, want := range map[int]string{1: "2001:db8::11/64", 3: "2001:db8::13/64", 10: "2001:db8::20/64"} {
		if got := NodeAddr6(i).String(); got != want {
			t.Errorf("NodeAddr6(%d) = %s, want %s", i, got, want)
		}
	}
	if !(Instance{VIPs: []netip.Prefix{VIP6}}).IPv6() || (Instance{VIPs: []netip.Prefix{VIP}}).IPv6() {
		t.Error("Instance.IPv6 is wrong")
	}
}

func TestMetricValue(t *testing.T) {
	const text = `# HELP vipd_packets_dropped_total Packets dropped.
# TYPE vipd_packets_dropped_total counter
vipd_packets_dropped_total{interface="eth0",reason="auth_mismatch"} 0
vipd_packets_dropped_total{interface="eth0",reason="not_a_peer"} 12
vipd_build_info{goversion="go1.26",version="dev"} 1
vipd_up 1
`
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
		ok     bool
	}{
		{"vipd_packets_dropped_total", []string{"reason", "not_a_peer"}, 12, true},
		{"vipd_packets_dropped_total", []string{"interface", "eth0", "reason", "auth_mismatch"}, 0, true},
		{"vipd_packets_dropped_total", []string{"reason", "ttl"}, 0, false},
		{"vipd_up", nil, 1, true},
		{"vipd_packets", nil, 0, false},
	} {
		got, ok := MetricValue(text, tt.name, tt.labels...)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MetricValue(%s, %q) = %v, %t; want %v, %t", tt.name, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMetricSum(t *testing.T) {
	const text = `# HELP vipd_adverts_sent_total VRRP advertisements sent.
# TYPE vipd_adverts_sent_total counter
vipd_adverts_sent_total{instance="s0v1"} 10
vipd_adverts_sent_total{instance="s0v2"} 32
`
	if got, ok := MetricSum(text, "vipd_adverts_sent_total"); got != 42 || !ok {
		t.Errorf("MetricSum = %v, %t; want 42, true", got, ok)
	}
	if got, ok := MetricSum(text, "vipd_adverts_sent_total", "instance", "s0v2"); got != 32 || !ok {
		t.Errorf("MetricSum of s0v2 = %v, %t; want 32, true", got, ok)
	}
	if got, ok := MetricSum(text, "vipd_adverts_received_total"); got != 0 || ok {
		t.Errorf("MetricSum of a missing metric = %v, %t; want 0, false", got, ok)
	}
}

func TestVipdConfigAuthHMAC(t *testing.T) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	signed := Instance{
		VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{VIP},
		AuthHMAC: &AuthHMAC{
			Keys:       []AuthKey{{ID: 1, SecretFile: "/etc/vipd/key1"}, {ID: 2, Secret: HexSecret(secret)}},
			ActiveKey:  2,
			Mode:       "permissive",
			AntiReplay: "time",
			TimeWindow: 10 * time.Second,
		},
	}
	defaults := Instance{
		Name: "api6", VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs:     []netip.Prefix{VIP6},
		AuthHMAC: &AuthHMAC{Keys: []AuthKey{{ID: 7, SecretFile: "key7"}}},
	}
	got := VipdConfig("/tmp/x/n1.sock", signed, defaults)
	want := `control_socket: "/tmp/x/n1.sock"
instances:
  - name: api
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.50/24"]
    announce: {count: 5, interval: 200ms}
    auth_hmac:
      keys:
        - {id: 1, secret_file: "/etc/vipd/key1"}
        - {id: 2, secret: "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}
      active_key: 2
      mode: permissive
      anti_replay: time
      time_window: 10s
  - name: api6
    interface: eth0
    vrid: 51
    priority: 100
    advert_interval: 100ms
    preempt: false
    preempt_delay: 0s
    vips: ["2001:db8::50/64"]
    announce: {count: 5, interval: 200ms}
    auth_hmac:
      keys:
        - {id: 7, secret_file: "key7"}
`
	if got != want {
		t.Errorf("VipdConfig:\n%s\nwant:\n%s", got, want)
	}
	// vipd reads it as meant (Parse reads no secret file).
	cfg, err := config.Parse("lab.yaml", []byte(got))
	if err != nil {
		t.Fatalf("vipd rejects the lab's auth_hmac: %v", err)
	}
	a := cfg.Instances[0].AuthHMAC
	if a == nil || len(a.Keys) != 2 || a.ActiveKey != 2 || a.Mode != config.AuthPermissive ||
		a.AntiReplay != config.AntiReplayTime || a.TimeWindow != 10*time.Second || string(a.Keys[1].Secret) != string(secret) {
		t.Errorf("instance api's auth_hmac as vipd reads it: %+v", a)
	}
	if d := cfg.Instances[1].AuthHMAC; d == nil || d.ActiveKey != 7 || d.Mode != config.AuthEnforce || d.Keys[0].File != "key7" {
		t.Errorf("instance api6's auth_hmac as vipd reads it: %+v, want key 7 active and enforce by default", d)
	}
	// keepalived 2.2 has no auth_hmac: its configuration leaves it out.
	if k := KeepalivedConfig("n1", signed); strings.Contains(k, "auth") || strings.Contains(k, "hex:") {
		t.Errorf("KeepalivedConfig renders auth_hmac:\n%s", k)
	}
}

func TestWriteSecret(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, hexText := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("key-%t", hexText))
		// An existing file readable by others gets mode 0600 all the same.
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteSecret(path, secret, hexText); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", path, fi.Mode().Perm())
		}
		cfg, err := config.Load(writeConfig(t, dir, VipdConfig(filepath.Join(dir, "s"), Instance{
			VRID: 51, Priority: 100, AdvertInterval: time.Second, VIPs: []netip.Prefix{VIP},
			AuthHMAC: &AuthHMAC{Keys: []AuthKey{{ID: 1, SecretFile: path}}},
		})))
		if err != nil {
			t.Fatalf("vipd refuses the key file WriteSecret(hex %t) wrote: %v", hexText, err)
		}
		if got := cfg.Instances[0].AuthHMAC.Keys[0].Secret; string(got) != string(secret) {
			t.Errorf("vipd reads the key file WriteSecret(hex %t) wrote as %q, want %q", hexText, got, secret)
		}
	}
}

func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "vipd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVipdConfigRefreshSourceRoutes(t *testing.T) {
	in := Instance{
		VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}, AnnounceCount: 2,
		AnnounceRefresh: time.Second, VIPsAsSource: true,
		Routes: []Route{
			{To: netip.MustParsePrefix("203.0.113.0/25"), Via: netip.MustParseAddr("198.51.100.1")},
			{To: netip.MustParsePrefix("203.0.113.128/25"), Dev: "eth0", Src: netip.MustParseAddr("192.0.2.50"), Metric: 7},
			{To: netip.MustParsePrefix("203.0.113.0/24"), Via: netip.MustParseAddr("192.0.2.1"), Table: 100},
			{To: netip.MustParsePrefix("198.51.100.128/25"), Type: "blackhole"},
		},
		Rules: []Rule{
			{From: netip.MustParsePrefix("192.0.2.50/32"), Table: 100},
			{To: netip.MustParsePrefix("203.0.113.0/24"), Table: 100, Priority: 1000},
		},
	}
	got := VipdConfig("/tmp/x/n1.sock", in)
	want := `control_socket: "/tmp/x/n1.sock"
instances:
  - name: api
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    preempt: true
    preempt_delay: 0s
    vips: ["192.0.2.50/32"]
    announce: {count: 2, interval: 200ms, refresh: 1s}
    vips_as_source: true
    routes:
      - {to: "203.0.113.0/25", via: "198.51.100.1"}
      - {to: "203.0.113.128/25", dev: "eth0", metric: 7, src: "192.0.2.50"}
      - {to: "203.0.113.0/24", via: "192.0.2.1", table: 100}
      - {to: "198.51.100.128/25", type: blackhole}
    rules:
      - {from: "192.0.2.50/32", table: 100}
      - {to: "203.0.113.0/24", table: 100, priority: 1000}
`
	if got != want {
		t.Errorf("VipdConfig:\n%s\nwant:\n%s", got, want)
	}
	// vipd reads it as meant.
	cfg, err := config.Parse("lab.yaml", []byte(got))
	if err != nil {
		t.Fatalf("vipd rejects the lab's routes, rules or refresh: %v", err)
	}
	c := cfg.Instances[0]
	if c.Announce.Refresh != time.Second || !c.VIPsAsSource || len(c.Routes) != 4 || len(c.Rules) != 2 {
		t.Errorf("as vipd reads it: refresh %v, vips_as_source %t, %d routes, %d rules; want 1s, true, 4, 2",
			c.Announce.Refresh, c.VIPsAsSource, len(c.Routes), len(c.Rules))
	}
	if r := c.Routes[1]; r.Dev != "eth0" || r.Metric != 7 || r.Src != netip.MustParseAddr("192.0.2.50") || r.Type != config.RouteUnicast {
		t.Errorf("the src route as vipd reads it: %+v", r)
	}
	if r := c.Routes[3]; r.Type != config.RouteBlackhole {
		t.Errorf("the blackhole route as vipd reads it: %+v", r)
	}
	if r := c.Rules[1]; r.Table != 100 || r.Priority != 1000 || r.From.IsValid() {
		t.Errorf("the second rule as vipd reads it: %+v", r)
	}
	// keepalived's configuration leaves them out.
	if k := KeepalivedConfig("n1", in); strings.Contains(k, "virtual_routes") || strings.Contains(k, "virtual_rules") || strings.Contains(k, "garp_master_refresh") {
		t.Errorf("KeepalivedConfig renders vipd's routes, rules or refresh:\n%s", k)
	}
}

func TestSamples(t *testing.T) {
	const text = `# TYPE vipd_packets_dropped_total counter
vipd_packets_dropped_total{interface="eth0",reason="not_a_peer"} 12
# TYPE vipd_check_duration_seconds histogram
vipd_check_duration_seconds_bucket{check="api",le="0.5"} 3
vipd_check_duration_seconds_bucket{check="api",le="+Inf"} 4
vipd_check_duration_seconds_sum{check="api"} 1.25
vipd_check_duration_seconds_count{check="api"} 4
vipd_up 1
`
	ss, err := Samples([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range ss {
		k := s.Name
		for _, l := range []string{"reason", "check", "le"} {
			if v, ok := s.Labels[l]; ok {
				k += " " + l + "=" + v
			}
		}
		got[k] = s.Value
	}
	want := map[string]float64{
		"vipd_packets_dropped_total reason=not_a_peer":         12,
		"vipd_check_duration_seconds_bucket check=api le=0.5":  3,
		"vipd_check_duration_seconds_bucket check=api le=+Inf": 4,
		"vipd_check_duration_seconds_sum check=api":            1.25,
		"vipd_check_duration_seconds_count check=api":          4,
		"vipd_up": 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Samples:\n got %v\nwant %v", got, want)
	}
	if _, err := Samples([]byte("vipd_up{ 1\n")); err == nil {
		t.Error("Samples of a broken exposition: no error")
	}
}
