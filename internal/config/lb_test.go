package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// withVS is inst (lines 1-6) plus extra instance lines, then a valid
// virtual server at line 7+len(instExtra) with its fields replaced or
// added by vsExtra (lines after "real_servers").
func withVS(instExtra []string, vsLines ...string) string {
	lines := append(append([]string{}, instExtra...), "virtual_servers:")
	if len(vsLines) == 0 {
		vsLines = []string{
			"  - name: apiserver",
			"    address: 192.0.2.50",
			"    port: 6443",
			"    real_servers:",
			"      - {address: 192.0.2.11, port: 6443}",
			"      - {address: 192.0.2.12}",
		}
	}
	return inst(append(lines, vsLines...)...)
}

func TestVirtualServers(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(inst(
		"    track_virtual_servers:",
		"      - {virtual_server: apiserver, weight: -50}",
		"      - {virtual_server: dns}",
		"virtual_servers:",
		"  - name: apiserver",
		"    address: 192.0.2.50",
		"    port: 6443",
		"    protocol: tcp",
		"    mode: nat",
		"    scheduler: source_hash",
		"    persistence: 30s",
		"    quorum: 2",
		"    check:",
		"      http: {path: /readyz, scheme: https, insecure_skip_verify: true, expect_status: 200}",
		"      interval: 2s",
		"      timeout: 500ms",
		"      fall: 2",
		"      rise: 1",
		"    real_servers:",
		"      - {address: 192.0.2.11, port: 6443, weight: 3}",
		"      - {address: 192.0.2.12, port: 6443}",
		"  - name: dns",
		"    address: 2001:db8::53",
		"    port: 53",
		"    protocol: udp",
		"    check: {tcp: {}, port: 53}",
		"    real_servers: [{address: '2001:db8::11'}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := []VirtualServer{{
		Name: "apiserver", Address: netip.MustParseAddr("192.0.2.50"), Port: 6443, Protocol: "tcp", Mode: "nat",
		Scheduler: "source_hash", Persistence: 30 * time.Second, Quorum: 2,
		Check: RealServerCheck{Interval: 2 * time.Second, Timeout: 500 * time.Millisecond, Fall: 2, Rise: 1,
			HTTP: &RealServerHTTP{Path: "/readyz", Scheme: "https", InsecureSkipVerify: true, ExpectStatus: []int{200}}},
		RealServers: []RealServer{
			{Address: netip.MustParseAddr("192.0.2.11"), Port: 6443, Weight: 3},
			{Address: netip.MustParseAddr("192.0.2.12"), Port: 6443, Weight: 1},
		},
	}, {
		Name: "dns", Address: netip.MustParseAddr("2001:db8::53"), Port: 53, Protocol: "udp", Mode: "nat",
		Scheduler: "round_robin", Quorum: 1,
		Check:       RealServerCheck{Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2, Port: 53, TCP: true},
		RealServers: []RealServer{{Address: netip.MustParseAddr("2001:db8::11"), Port: 53, Weight: 1}},
	}}
	if !reflect.DeepEqual(cfg.VirtualServers, want) {
		t.Errorf("VirtualServers =\n%+v\nwant\n%+v", cfg.VirtualServers, want)
	}
	wantTrack := []TrackVirtualServer{{VirtualServer: "apiserver", Weight: -50}, {VirtualServer: "dns"}}
	if got := cfg.Instances[0].TrackVirtualServers; !reflect.DeepEqual(got, wantTrack) {
		t.Errorf("TrackVirtualServers = %+v, want %+v", got, wantTrack)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "vipd.yaml:29: virtual_servers[1].address: warning: 2001:db8::53 is no instance's VIP") {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestVirtualServerDefaults(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(withVS(nil)))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.VirtualServers[0]
	want := RealServerCheck{Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2, TCP: true}
	if v.Protocol != "tcp" || v.Mode != "nat" || v.Scheduler != "round_robin" || v.Quorum != 1 || v.Persistence != 0 || !reflect.DeepEqual(v.Check, want) {
		t.Errorf("defaults: %+v", v)
	}
	if v.RealServers[1].Port != 6443 || v.RealServers[1].Weight != 1 {
		t.Errorf("real server defaults: %+v", v.RealServers[1])
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestVirtualServerProxy(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(withVS(nil,
		"  - name: apiserver",
		"    address: 192.0.2.50",
		"    port: 6443",
		"    mode: proxy",
		"    scheduler: least_conn",
		"    proxy_protocol: v2",
		"    real_servers: [{address: 192.0.2.11}]",
		"  - {name: other, address: 192.0.2.50, port: 443, mode: proxy, drain_timeout: 20s, real_servers: [{address: 192.0.2.11}]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.VirtualServers[0], cfg.VirtualServers[1]
	if a.Mode != "proxy" || a.Scheduler != "least_conn" || a.DrainTimeout != DefaultDrainTimeout || a.ProxyProtocol != "v2" {
		t.Errorf("proxy virtual server: %+v", a)
	}
	if b.DrainTimeout != 20*time.Second || b.ProxyProtocol != "" {
		t.Errorf("drain_timeout 20s: %+v", b)
	}
}

func TestVirtualServerErrors(t *testing.T) {
	vs := func(extra ...string) string {
		return withVS(nil, append([]string{
			"  - name: apiserver",
			"    address: 192.0.2.50",
			"    port: 6443",
			"    real_servers:",
			"      - {address: 192.0.2.11, port: 6443}",
			"      - {address: 192.0.2.12}",
		}, extra...)...)
	}
	// The virtual server starts at line 8 and its real servers are on
	// lines 12 and 13; extra lines from 14.
	swap := func(old, new string) string { return strings.Replace(vs(), old, new, 1) }
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown field", vs("    backends: []"), []string{
			"vipd.yaml:14: virtual_servers[0].backends: unknown field (valid fields: name, address, port, protocol, mode, scheduler, persistence, quorum, drain_timeout, proxy_protocol, check, real_servers)",
		}},
		{"proxy mode", vs("    mode: proxy", "    scheduler: least_conn", "    drain_timeout: 0s", "    proxy_protocol: v2"), nil},
		{"proxy mode across families", swap("{address: 192.0.2.12}", "{address: '2001:db8::12'}\n    mode: proxy"), nil},
		{"bad mode", vs("    mode: dr"), []string{
			`vipd.yaml:14: virtual_servers[0].mode: "dr" is not a mode: nat (in the kernel) or proxy (userspace)`,
		}},
		{"least_conn with nat", vs("    scheduler: least_conn"), []string{
			"vipd.yaml:14: virtual_servers[0].scheduler: least_conn needs mode proxy, which counts connections; with nat use round_robin, random or source_hash",
		}},
		{"bad scheduler", vs("    scheduler: wrr"), []string{
			`vipd.yaml:14: virtual_servers[0].scheduler: "wrr" is not one of round_robin, random, source_hash, least_conn`,
		}},
		{"udp with proxy", vs("    mode: proxy", "    protocol: udp"), []string{
			"vipd.yaml:15: virtual_servers[0].protocol: udp needs mode nat: the proxy carries TCP only",
		}},
		{"drain_timeout with nat", vs("    mode: nat", "    drain_timeout: 10s"), []string{
			"vipd.yaml:15: virtual_servers[0].drain_timeout: drain_timeout needs mode proxy: with nat the kernel carries the connections",
		}},
		{"proxy_protocol with nat", vs("    proxy_protocol: v2"), []string{
			"vipd.yaml:14: virtual_servers[0].proxy_protocol: proxy_protocol needs mode proxy: with nat the kernel carries the connections",
		}},
		{"drain_timeout too long", vs("    mode: proxy", "    drain_timeout: 31s"), []string{
			"vipd.yaml:15: virtual_servers[0].drain_timeout: 31s is out of range 0s..30s",
		}},
		{"proxy_protocol v1", vs("    mode: proxy", "    proxy_protocol: v1"), []string{
			`vipd.yaml:15: virtual_servers[0].proxy_protocol: "v1" is not one of v2`,
		}},
		{"bad protocol", vs("    protocol: sctp"), []string{
			`vipd.yaml:14: virtual_servers[0].protocol: "sctp" is not one of tcp, udp`,
		}},
		{"port 0", swap("port: 6443\n    real", "port: 0\n    real"), []string{
			"vipd.yaml:10: virtual_servers[0].port: 0 is out of range 1..65535",
		}},
		{"real server port 0", swap("192.0.2.11, port: 6443", "192.0.2.11, port: 0"), []string{
			"vipd.yaml:12: virtual_servers[0].real_servers[0].port: 0 is out of range 1..65535",
		}},
		{"missing fields", withVS(nil, "  - {name: a}"), []string{
			"vipd.yaml:8: virtual_servers[0].address: required field is missing",
			"vipd.yaml:8: virtual_servers[0].port: required field is missing",
			"vipd.yaml:8: virtual_servers[0].real_servers: required field is missing",
		}},
		{"no real servers", withVS(nil, "  - {name: a, address: 192.0.2.50, port: 80, real_servers: []}"), []string{
			"vipd.yaml:8: virtual_servers[0].real_servers: at least one real server is required",
		}},
		{"bad name", swap("name: apiserver", "name: 1api"), []string{
			`vipd.yaml:8: virtual_servers[0].name: "1api" is not a valid virtual server name: a letter, then up to 63 of A-Z a-z 0-9 _ . -`,
		}},
		{"bad address", swap("address: 192.0.2.50", "address: 192.0.2.50/24"), []string{
			`vipd.yaml:9: virtual_servers[0].address: expected an IP address such as 192.0.2.11 or 2001:db8::11, got "192.0.2.50/24"`,
		}},
		{"real server twice", vs("      - {address: 192.0.2.11, port: 6443}"), []string{
			"vipd.yaml:14: virtual_servers[0].real_servers[2]: real server 192.0.2.11:6443 is listed twice (first at line 12)",
		}},
		{"real server twice by default port", swap("{address: 192.0.2.12}", "{address: 192.0.2.11}"), []string{
			"vipd.yaml:13: virtual_servers[0].real_servers[1]: real server 192.0.2.11:6443 is listed twice (first at line 12)",
		}},
		{"weight 0", swap("{address: 192.0.2.12}", "{address: 192.0.2.12, weight: 0}"), []string{
			"vipd.yaml:13: virtual_servers[0].real_servers[1].weight: 0 is out of range 1..256",
		}},
		{"weight 257", swap("{address: 192.0.2.12}", "{address: 192.0.2.12, weight: 257}"), []string{
			"vipd.yaml:13: virtual_servers[0].real_servers[1].weight: 257 is out of range 1..256",
		}},
		{"family", swap("{address: 192.0.2.12}", "{address: '2001:db8::12'}"), []string{
			"vipd.yaml:13: virtual_servers[0].real_servers[1].address: 2001:db8::12 is IPv6 but the virtual server's address 192.0.2.50 is IPv4: NAT does not translate between families",
		}},
		{"real server unknown field", swap("{address: 192.0.2.12}", "{address: 192.0.2.12, backup: true}"), []string{
			"vipd.yaml:13: virtual_servers[0].real_servers[1].backup: unknown field (valid fields: address, port, weight)",
		}},
		{"quorum above count", vs("    quorum: 3"), []string{
			"vipd.yaml:14: virtual_servers[0].quorum: 3 is more than the 2 real servers: the virtual server could never be up",
		}},
		{"quorum 0", vs("    quorum: 0"), []string{
			"vipd.yaml:14: virtual_servers[0].quorum: 0 is out of range 1..1024",
		}},
		{"persistence not whole seconds", vs("    persistence: 1500ms"), []string{
			"vipd.yaml:14: virtual_servers[0].persistence: 1500ms is not a multiple of 1s",
		}},
		{"timeout not below interval", vs("    check: {interval: 1s, timeout: 1s}"), []string{
			"vipd.yaml:14: virtual_servers[0].check.timeout: 1s must be shorter than the interval (1s)",
		}},
		{"check both kinds", vs("    check: {tcp: {}, http: {path: /}}"), []string{
			"vipd.yaml:14: virtual_servers[0].check: tcp and http exclude each other: give one",
		}},
		{"check unknown field", vs("    check: {exec: {command: [/bin/true]}}"), []string{
			"vipd.yaml:14: virtual_servers[0].check.exec: unknown field (valid fields: tcp, http, port, interval, timeout, fall, rise)",
		}},
		{"tcp check with fields", vs("    check: {tcp: {address: 192.0.2.11:80}}"), []string{
			"vipd.yaml:14: virtual_servers[0].check.tcp.address: unknown field (valid fields: )",
		}},
		{"http bad path", vs("    check: {http: {path: readyz}}"), []string{
			`vipd.yaml:14: virtual_servers[0].check.http.path: "readyz" does not start with /`,
		}},
		{"http bad scheme", vs("    check: {http: {scheme: ftp}}"), []string{
			`vipd.yaml:14: virtual_servers[0].check.http.scheme: "ftp" is not one of http, https`,
		}},
		{"http bad status", vs("    check: {http: {expect_status: [200, 99]}}"), []string{
			"vipd.yaml:14: virtual_servers[0].check.http.expect_status[1]: 99 is out of range 100..599",
		}},
		{"duplicate name", vs("  - {name: apiserver, address: 192.0.2.50, port: 80, real_servers: [{address: 192.0.2.11}]}"), []string{
			`vipd.yaml:14: virtual_servers[1].name: virtual server name "apiserver" is already used (line 8)`,
		}},
		{"duplicate address and port", vs("  - {name: other, address: 192.0.2.50, port: 6443, real_servers: [{address: 192.0.2.11}]}"), []string{
			"vipd.yaml:14: virtual_servers[1].port: tcp 192.0.2.50 port 6443 is already a virtual server (line 8)",
		}},
		{"same port other protocol", vs("  - {name: other, address: 192.0.2.50, port: 6443, protocol: udp, real_servers: [{address: 192.0.2.11}]}"), nil},
		{"not a list", inst("virtual_servers: {name: a}"), []string{
			"vipd.yaml:7: virtual_servers: expected a list of virtual servers, got a mapping",
		}},
		{"unknown tracked", withVS([]string{"    track_virtual_servers: [{virtual_server: apiservr}]"}), []string{
			`vipd.yaml:7: instances[0].track_virtual_servers[0].virtual_server: unknown virtual server "apiservr" (defined: apiserver)`,
		}},
		{"tracked with none defined", inst("    track_virtual_servers: [{virtual_server: apiserver}]"), []string{
			`vipd.yaml:7: instances[0].track_virtual_servers[0].virtual_server: unknown virtual server "apiserver": no virtual servers are defined (add them under virtual_servers:)`,
		}},
		{"tracked twice", withVS([]string{"    track_virtual_servers: [{virtual_server: apiserver}, {virtual_server: apiserver, weight: -5}]"}), []string{
			`vipd.yaml:7: instances[0].track_virtual_servers[1]: virtual server "apiserver" is tracked twice (first at line 7)`,
		}},
		{"tracked weight out of range", withVS([]string{"    track_virtual_servers: [{virtual_server: apiserver, weight: -300}]"}), []string{
			"vipd.yaml:7: instances[0].track_virtual_servers[0].weight: -300 is out of range -253..253",
		}},
		{"tracked unknown field", withVS([]string{"    track_virtual_servers: [{vs: apiserver}]"}), []string{
			"vipd.yaml:7: instances[0].track_virtual_servers[0].vs: unknown field (valid fields: virtual_server, weight)",
			"vipd.yaml:7: instances[0].track_virtual_servers[0].virtual_server: required field is missing",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if _, err := Parse("vipd.yaml", []byte(tt.in)); err != nil {
					t.Fatalf("input:\n%s\nerror: %v", tt.in, err)
				}
				return
			}
			wantErrors(t, tt.in, tt.want)
		})
	}
}

func TestVirtualServerSyncGroup(t *testing.T) {
	in := twoInsts(
		"sync_groups:",
		"  - {name: gw, instances: [front, back]}",
		"virtual_servers:",
		"  - {name: api, address: 192.0.2.50, port: 6443, real_servers: [{address: 192.0.2.11}]}",
	)
	weighted := strings.Replace(in, "[{check: api}]", "[{check: api}]\n    track_virtual_servers: [{virtual_server: api, weight: -10}]", 1)
	_, err := Parse("vipd.yaml", []byte(weighted))
	want := `vipd.yaml:16: sync_groups[0].instances[0]: instance "front" tracks virtual server "api" with weight -10: in a sync group a weight would change this member's priority alone, and the members would rank nodes differently; track it without a weight (FAULT moves the whole group)`
	if err == nil || err.Error() != want {
		t.Errorf("weighted in a group: %v\nwant %s", err, want)
	}
	fault := strings.Replace(in, "[{check: api}]", "[{check: api}]\n    track_virtual_servers: [{virtual_server: api}]", 1)
	if _, err := Parse("vipd.yaml", []byte(fault)); err != nil {
		t.Errorf("FAULT-mode tracking in a group: %v", err)
	}
}

// TestParseExampleVirtualServers parses the commented virtual_servers
// example of configs/vipd.yaml, uncommented, so that it cannot rot.
func TestParseExampleVirtualServers(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "vipd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\n# virtual_servers:\n")
	if i < 0 {
		t.Fatal("no commented virtual_servers example")
	}
	var block []string
	for _, line := range strings.Split(s[i+1:], "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		block = append(block, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
	}
	cfg, err := Parse("vipd.yaml", []byte(s[:i+1]+strings.Join(block, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VirtualServers) != 1 || len(cfg.VirtualServers[0].RealServers) != 3 || len(cfg.Warnings) != 0 {
		t.Errorf("virtual servers %+v, warnings %v", cfg.VirtualServers, cfg.Warnings)
	}
}
