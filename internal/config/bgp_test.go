package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestBGP(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(inst(
		"    bgp: true",
		"bgp:",
		"  asn: 65001",
		"  peers:",
		"    - {address: 192.0.2.1, asn: 65000, source: 192.0.2.11}",
		"    - address: 2001:db8::1",
		"      asn: 4200000000",
		"      port: 1179",
		"      multihop: 2",
		"      hold_time: 30s",
		"      bfd: true",
		"      bfd_interval: 100ms",
		"      bfd_multiplier: 5",
		"  communities: [\"65001:100\", \"0:1\"]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := &BGP{
		ASN:      65001,
		RouterID: netip.MustParseAddr("192.0.2.11"),
		Peers: []BGPPeer{
			{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65000, Port: 179, Source: netip.MustParseAddr("192.0.2.11"), HoldTime: 9 * time.Second,
				BFDInterval: 300 * time.Millisecond, BFDMultiplier: 3},
			{Address: netip.MustParseAddr("2001:db8::1"), ASN: 4200000000, Port: 1179, Multihop: 2, HoldTime: 30 * time.Second,
				BFD: true, BFDInterval: 100 * time.Millisecond, BFDMultiplier: 5},
		},
		Communities: []uint32{65001<<16 | 100, 1},
	}
	if !reflect.DeepEqual(cfg.BGP, want) {
		t.Errorf("got %+v\nwant %+v", cfg.BGP, want)
	}
	if !cfg.Instances[0].BGP {
		t.Error("instance bgp: true not set")
	}
}

func TestBGPErrors(t *testing.T) {
	// The instance is lines 1-6; bgp: from line 7.
	b := func(lines ...string) string {
		return inst(append([]string{"bgp:", "  asn: 65001", "  router_id: 192.0.2.11"}, lines...)...)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"asn 0", inst("bgp:", "  asn: 0", "  peers: [{address: 192.0.2.1, asn: 65000, source: 192.0.2.11}]"), []string{
			"vipd.yaml:8: bgp.asn: 0 is out of range 1..4294967294",
		}},
		{"peer asn too big", b("  peers: [{address: 192.0.2.1, asn: 4294967295}]"), []string{
			"vipd.yaml:10: bgp.peers[0].asn: 4294967295 is out of range 1..4294967294",
		}},
		{"peer twice", b("  peers:", "    - {address: 192.0.2.1, asn: 65000}", "    - {address: 192.0.2.1, asn: 65002}"), []string{
			"vipd.yaml:12: bgp.peers[1].address: peer 192.0.2.1 is listed twice (first at line 11)",
		}},
		{"hold time", b("  peers: [{address: 192.0.2.1, asn: 65000, hold_time: 2s}]"), []string{
			"vipd.yaml:10: bgp.peers[0].hold_time: 2s is out of range 3s..18h12m15s",
		}},
		{"hold time fraction", b("  peers: [{address: 192.0.2.1, asn: 65000, hold_time: 3500ms}]"), []string{
			"vipd.yaml:10: bgp.peers[0].hold_time: 3500ms is not a multiple of 1s",
		}},
		{"no router id", inst("bgp:", "  asn: 65001", "  peers: [{address: 192.0.2.1, asn: 65000}]"), []string{
			"vipd.yaml:8: bgp.router_id: required field is missing: without it the router ID is the first peer's IPv4 source, and that peer has none",
		}},
		{"ipv6 router id", inst("bgp:", "  asn: 65001", "  router_id: 2001:db8::1", "  peers: [{address: 192.0.2.1, asn: 65000}]"), []string{
			"vipd.yaml:9: bgp.router_id: a router ID is an IPv4 address (RFC 6286), got 2001:db8::1",
		}},
		{"no peers", b("  peers: []"), []string{
			"vipd.yaml:10: bgp.peers: at least one peer is required",
		}},
		{"family mismatch", b("  peers: [{address: 192.0.2.1, asn: 65000, source: '2001:db8::11'}]"), []string{
			"vipd.yaml:10: bgp.peers[0].source: source 2001:db8::11 and peer 192.0.2.1 are of different address families",
		}},
		{"bad community", b("  peers: [{address: 192.0.2.1, asn: 65000}]", "  communities: [\"65536:1\"]"), []string{
			`vipd.yaml:11: bgp.communities[0]: "65536:1" is not a community: two numbers 0..65535 as in 65001:100`,
		}},
		{"unknown peer field", b("  peers: [{address: 192.0.2.1, asn: 65000, graceful_restart: true}]"), []string{
			"vipd.yaml:10: bgp.peers[0].graceful_restart: unknown field (valid fields: address, asn, port, password, multihop, source, hold_time, bfd, bfd_interval, bfd_multiplier)",
		}},
		{"bfd interval too short", b("  peers: [{address: 192.0.2.1, asn: 65000, bfd: true, bfd_interval: 5ms}]"), []string{
			"vipd.yaml:10: bgp.peers[0].bfd_interval: 5ms is out of range 10ms..1m",
		}},
		{"bfd interval fraction", b("  peers: [{address: 192.0.2.1, asn: 65000, bfd: true, bfd_interval: 10500us}]"), []string{
			"vipd.yaml:10: bgp.peers[0].bfd_interval: 10500us is not a multiple of 1ms",
		}},
		{"bfd multiplier", b("  peers: [{address: 192.0.2.1, asn: 65000, bfd: true, bfd_multiplier: 0}]"), []string{
			"vipd.yaml:10: bgp.peers[0].bfd_multiplier: 0 is out of range 1..255",
		}},
		{"bfd multiplier too big", b("  peers:", "    - address: 192.0.2.1", "      asn: 65000", "      bfd: true", "      bfd_multiplier: 256"), []string{
			"vipd.yaml:14: bgp.peers[0].bfd_multiplier: 256 is out of range 1..255",
		}},
		{"bfd not a bool", b("  peers: [{address: 192.0.2.1, asn: 65000, bfd: yes please}]"), []string{
			`vipd.yaml:10: bgp.peers[0].bfd: expected true or false, got "yes please"`,
		}},
		{"bfd interval without bfd", b("  peers:", "    - {address: 192.0.2.1, asn: 65000, bfd_interval: 100ms, bfd_multiplier: 4}"), []string{
			"vipd.yaml:11: bgp.peers[0].bfd_interval: bfd_interval has no effect without bfd: true",
			"vipd.yaml:11: bgp.peers[0].bfd_multiplier: bfd_multiplier has no effect without bfd: true",
		}},
		{"bgp without section", inst("    bgp: true"), []string{
			"vipd.yaml:7: instances[0].bgp: bgp: true needs the top-level bgp section (asn and peers)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.in, tt.want)
		})
	}
}

func TestAnycast(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(doc(
		"checks:",
		"  - {name: apiserver, tcp: {address: \"127.0.0.1:6443\"}}",
		"instances:",
		"  - {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50/24]}",
		"bgp: {asn: 65001, router_id: 192.0.2.11, peers: [{address: 192.0.2.1, asn: 65000}]}",
		"anycast:",
		"  - name: dns",
		"    vips: [198.51.100.10/32, \"2001:db8::10\"]",
		"    track_checks: [{check: apiserver}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Anycast{{Name: "dns", VIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/32"), netip.MustParsePrefix("2001:db8::10/128")}, TrackChecks: []string{"apiserver"}}}
	if !reflect.DeepEqual(cfg.Anycast, want) {
		t.Errorf("got %+v, want %+v", cfg.Anycast, want)
	}
}

func TestAnycastErrors(t *testing.T) {
	const b = "bgp: {asn: 65001, router_id: 192.0.2.11, peers: [{address: 192.0.2.1, asn: 65000}]}"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"also an instance VIP", inst(b, "anycast:", "  - {name: a, vips: [192.0.2.50/32]}"), []string{
			`vipd.yaml:9: anycast[0].vips[0]: 192.0.2.50 is already a VIP of instance "api"`,
		}},
		{"in two groups", inst(b, "anycast:", "  - {name: a, vips: [198.51.100.10/32]}", "  - {name: b, vips: [198.51.100.10/32]}"), []string{
			`vipd.yaml:10: anycast[1].vips[0]: 198.51.100.10 is already a VIP of anycast "a"`,
		}},
		{"not a host route", inst(b, "anycast:", "  - {name: a, vips: [198.51.100.0/24]}"), []string{
			"vipd.yaml:9: anycast[0].vips[0]: an anycast VIP is a host route: 198.51.100.0/32, not 198.51.100.0/24",
		}},
		{"without bgp", inst("anycast:", "  - {name: a, vips: [198.51.100.10/32]}"), []string{
			"vipd.yaml:8: anycast[0]: anycast needs the top-level bgp section (asn and peers)",
		}},
		{"unknown check", inst(b, "anycast:", "  - {name: a, vips: [198.51.100.10/32], track_checks: [{check: nope}]}"), []string{
			`vipd.yaml:9: anycast[0].track_checks[0].check: unknown check "nope": no checks are defined (add them under checks:)`,
		}},
		{"same name", inst(b, "anycast:", "  - {name: a, vips: [198.51.100.10/32]}", "  - {name: a, vips: [198.51.100.11/32]}"), []string{
			`vipd.yaml:10: anycast[1].name: anycast name "a" is already used (line 9)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.in, tt.want)
		})
	}
}
