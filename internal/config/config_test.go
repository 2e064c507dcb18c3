package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// doc joins lines into a YAML file, so a case's line numbers can be counted.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// inst is a valid one-instance file (lines 1-6) followed by extra instance
// fields from line 7.
func inst(extra ...string) string {
	return doc(append([]string{
		"instances:",
		"  - name: api",
		"    interface: eth0",
		"    vrid: 51",
		"    vips:",
		"      - 192.0.2.50/24",
	}, extra...)...)
}

// with is inst with one of its fields (by line prefix) replaced.
func with(old, new string, extra ...string) string {
	s := inst(extra...)
	out := strings.Replace(s, "    "+old+"\n", "    "+new+"\n", 1)
	if out == s {
		panic("with: no line " + old)
	}
	return out
}

func TestParseExample(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "vipd.yaml")
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:          path,
		ControlSocket: "/run/vipd/vipd.sock",
		Metrics:       Metrics{Listen: "127.0.0.1:9405"},
		Instances: []Instance{{
			Name:           "api",
			Interface:      "eth0",
			VRID:           51,
			Priority:       150,
			AdvertInterval: 100 * time.Millisecond,
			Preempt:        true,
			PreemptDelay:   0,
			VIPs:           []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24")},
			Announce:       Announce{Count: 5, Interval: 200 * time.Millisecond},
			Notify:         Notify{Timeout: DefaultNotifyTimeout},
			Family:         "ipv4", Version: 3,
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q):\n got %+v\nwant %+v", path, got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse("vipd.yaml", []byte(doc(
		"instances:",
		"  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.1]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:          "vipd.yaml",
		ControlSocket: DefaultControlSocket,
		Instances: []Instance{{
			Name:           "a",
			Interface:      "eth0",
			VRID:           1,
			Priority:       DefaultPriority,
			AdvertInterval: DefaultAdvertInterval,
			Preempt:        DefaultPreempt,
			PreemptDelay:   DefaultPreemptDelay,
			VIPs:           []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")},
			Announce:       Announce{Count: DefaultAnnounceCount, Interval: DefaultAnnounceInterval},
			Notify:         Notify{Timeout: DefaultNotifyTimeout},
			Family:         "ipv4", Version: 3,
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseValues(t *testing.T) {
	got, err := Parse("vipd.yaml", []byte(doc(
		"control_socket: /tmp/v.sock",
		"instances:",
		"  - name: db.primary_1",
		"    interface: bond0.100",
		"    vrid: 255",
		"    priority: 1",
		"    advert_interval: 40.95s",
		"    preempt: false",
		"    preempt_delay: 1h",
		"    vips: [198.51.100.7/31, 198.18.0.1, 198.18.0.2/15]",
		"    announce: {count: 100, interval: 10s}",
		"  - name: web",
		"    interface: bond0.100",
		"    vrid: 0x34",
		"    priority: 254",
		"    advert_interval: 10ms",
		"    preempt_delay: 0",
		"    vips: [192.0.2.51/24]",
		"    announce: {count: 1, interval: 10ms}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Instance{{
		Name:           "db.primary_1",
		Interface:      "bond0.100",
		VRID:           255,
		Priority:       1,
		AdvertInterval: 40950 * time.Millisecond,
		Preempt:        false,
		PreemptDelay:   time.Hour,
		VIPs: []netip.Prefix{
			netip.MustParsePrefix("198.51.100.7/31"),
			netip.MustParsePrefix("198.18.0.1/32"),
			netip.MustParsePrefix("198.18.0.2/15"), // host bits kept
		},
		Announce: Announce{Count: 100, Interval: 10 * time.Second},
		Notify:   Notify{Timeout: DefaultNotifyTimeout},
		Family:   "ipv4", Version: 3,
	}, {
		Name:           "web",
		Interface:      "bond0.100",
		VRID:           0x34,
		Priority:       254,
		AdvertInterval: 10 * time.Millisecond,
		Preempt:        true,
		PreemptDelay:   0,
		VIPs:           []netip.Prefix{netip.MustParsePrefix("192.0.2.51/24")},
		Announce:       Announce{Count: 1, Interval: 10 * time.Millisecond},
		Notify:         Notify{Timeout: DefaultNotifyTimeout},
		Family:         "ipv4", Version: 3,
	}}
	if got.ControlSocket != "/tmp/v.sock" {
		t.Errorf("ControlSocket = %q", got.ControlSocket)
	}
	if !reflect.DeepEqual(got.Instances, want) {
		t.Errorf("got  %+v\nwant %+v", got.Instances, want)
	}
}

func TestParseErrors(t *testing.T) {
	const instFields = "name, interface, vrid, priority, advert_interval, preempt, preempt_delay, vips, announce, track_checks, track_interfaces, notify, version, auth_pass, unicast_peers, unicast_source, v3_checksum_as_v2, auth_hmac, vips_as_source, routes, virtual_mac, virtual_mac_interface, rules, track_virtual_servers, bgp"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// The file as a whole.
		{"empty", "", []string{
			"vipd.yaml: empty file; at least one instance is required",
		}},
		{"comments only", "# nothing\n", []string{
			"vipd.yaml: empty file; at least one instance is required",
		}},
		{"null document", "---\n~\n", []string{
			"vipd.yaml:2: empty document; at least one instance is required",
		}},
		{"syntax", doc("instances:", "  - name: api", " vrid: 1"), []string{
			"vipd.yaml:2: invalid YAML: did not find expected key",
		}},
		{"syntax first line", "\t- x\n", []string{
			"vipd.yaml:1: invalid YAML: found character that cannot start any token",
		}},
		{"control character", doc("instances:", "  - name: a\x01"), []string{
			"vipd.yaml:2: invalid YAML: control characters are not allowed",
		}},
		{"invalid utf-8", doc("instances:", "", "  - name: \xff"), []string{
			"vipd.yaml:3: invalid YAML: invalid leading UTF-8 octet",
		}},
		{"two documents", inst("---", "instances: []"), []string{
			"vipd.yaml:7: only one YAML document is allowed",
		}},
		{"top level list", "- a\n", []string{
			"vipd.yaml:1: expected a mapping, got a list",
		}},
		{"top level scalar", "hello\n", []string{
			`vipd.yaml:1: expected a mapping, got "hello"`,
		}},
		{"no instances field", "control_socket: /run/x.sock\n", []string{
			"vipd.yaml:1: instances: required field is missing",
		}},
		{"instances empty", "instances: []\n", []string{
			"vipd.yaml:1: instances: at least one instance is required",
		}},
		{"instances null", "instances:\n", []string{
			"vipd.yaml:1: instances: expected a list of instances, got null",
		}},
		{"instances mapping", doc("instances:", "  name: api"), []string{
			"vipd.yaml:2: instances: expected a list of instances, got a mapping",
		}},
		{"instance not a mapping", doc("instances:", "  - api"), []string{
			`vipd.yaml:2: instances[0]: expected a mapping, got "api"`,
		}},

		// Field names.
		{"unknown top-level", "instance: []\n", []string{
			`vipd.yaml:1: instance: unknown field; did you mean "instances"? (valid fields: control_socket, metrics, checks, instances, sync_groups, virtual_servers, bgp, anycast)`,
			"vipd.yaml:1: instances: required field is missing",
		}},
		{"unknown with suggestion", inst("    prioriti: 100"), []string{
			`vipd.yaml:7: instances[0].prioriti: unknown field; did you mean "priority"? (valid fields: ` + instFields + ")",
		}},
		{"unknown without suggestion", inst("    weight: 100"), []string{
			"vipd.yaml:7: instances[0].weight: unknown field (valid fields: " + instFields + ")",
		}},
		{"unknown in announce", inst("    announce:", "      rounds: 3"), []string{
			"vipd.yaml:8: instances[0].announce.rounds: unknown field (valid fields: count, interval, refresh)",
		}},
		{"field twice", inst("    vrid: 52"), []string{
			"vipd.yaml:7: instances[0].vrid: field is set twice (first at line 4)",
		}},
		{"non-string key", inst("    [a]: 1"), []string{
			"vipd.yaml:7: instances[0]: expected a field name, got a list",
		}},
		{"alias", doc("instances:", "  - name: &n api", "    interface: eth0", "    vrid: 51", "    vips: [192.0.2.50]",
			"  - name: *n", "    interface: eth0", "    vrid: 52", "    vips: [192.0.2.51]"), []string{
			"vipd.yaml:6: instances[1].name: YAML aliases are not supported",
		}},
		{"merge key", doc("instances:", "  - &a {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50]}", "  - <<: *a"), []string{
			"vipd.yaml:3: instances[1]: YAML merge keys (<<) are not supported",
			"vipd.yaml:3: instances[1].name: required field is missing",
			"vipd.yaml:3: instances[1].interface: required field is missing",
			"vipd.yaml:3: instances[1].vrid: required field is missing",
			"vipd.yaml:3: instances[1].vips: required field is missing",
		}},

		// Required fields, at the instance's line.
		{"missing all", doc("control_socket: /run/x.sock", "instances:", "  - preempt: true"), []string{
			"vipd.yaml:3: instances[0].name: required field is missing",
			"vipd.yaml:3: instances[0].interface: required field is missing",
			"vipd.yaml:3: instances[0].vrid: required field is missing",
			"vipd.yaml:3: instances[0].vips: required field is missing",
		}},

		// control_socket.
		{"control_socket relative", "control_socket: vipd.sock\n" + inst(), []string{
			`vipd.yaml:1: control_socket: "vipd.sock" is not an absolute path`,
		}},
		{"control_socket too long", "control_socket: /" + strings.Repeat("a", 107) + "\n" + inst(), []string{
			"vipd.yaml:1: control_socket: path is 108 bytes long; a Unix socket path is at most 107",
		}},
		{"control_socket list", "control_socket: [/a]\n" + inst(), []string{
			"vipd.yaml:1: control_socket: expected a string, got a list",
		}},

		// metrics.
		{"metrics listen no port", "metrics:\n  listen: 127.0.0.1\n" + inst(), []string{
			`vipd.yaml:2: metrics.listen: "127.0.0.1" is not host:port (e.g. 127.0.0.1:9405)`,
		}},
		{"metrics listen bad port", "metrics:\n  listen: 127.0.0.1:http\n" + inst(), []string{
			`vipd.yaml:2: metrics.listen: port "http" is not a number in 1..65535`,
		}},
		{"metrics listen host name", "metrics:\n  listen: example.org:9405\n" + inst(), []string{
			`vipd.yaml:2: metrics.listen: host "example.org" is not an IP address or localhost`,
		}},
		{"metrics unknown field", "metrics:\n  port: 9405\n" + inst(), []string{
			`vipd.yaml:2: metrics.port: unknown field (valid fields: listen)`,
		}},

		// name.
		{"name invalid", doc("instances:", `  - name: "my api"`, "    interface: eth0", "    vrid: 51", "    vips: [192.0.2.50]"), []string{
			`vipd.yaml:2: instances[0].name: "my api" is not a valid instance name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
		}},
		{"name empty", doc("instances:", `  - name: ""`, "    interface: eth0", "    vrid: 51", "    vips: [192.0.2.50]"), []string{
			`vipd.yaml:2: instances[0].name: "" is not a valid instance name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
		}},
		{"name too long", doc("instances:", "  - name: "+strings.Repeat("n", 65), "    interface: eth0", "    vrid: 51", "    vips: [192.0.2.50]"), []string{
			`vipd.yaml:2: instances[0].name: "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…" is not a valid instance name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
		}},
		{"name null", doc("instances:", "  - name:", "    interface: eth0", "    vrid: 51", "    vips: [192.0.2.50]"), []string{
			"vipd.yaml:2: instances[0].name: expected a string, got null",
		}},

		// interface.
		{"interface with colon", with("interface: eth0", "interface: eth0:1"), []string{
			`vipd.yaml:3: instances[0].interface: "eth0:1" is not a valid interface name: it contains ':'`,
		}},
		{"interface with slash", with("interface: eth0", "interface: a/b"), []string{
			`vipd.yaml:3: instances[0].interface: "a/b" is not a valid interface name: it contains '/'`,
		}},
		{"interface with space", with("interface: eth0", `interface: "eth 0"`), []string{
			`vipd.yaml:3: instances[0].interface: "eth 0" is not a valid interface name: it contains ' '`,
		}},
		{"interface too long", with("interface: eth0", "interface: enp0s31f6abcdefghi"), []string{
			`vipd.yaml:3: instances[0].interface: "enp0s31f6abcdefghi" is not a valid interface name: longer than 15 bytes`,
		}},
		{"interface dot", with("interface: eth0", `interface: ".."`), []string{
			`vipd.yaml:3: instances[0].interface: ".." is not a valid interface name: reserved`,
		}},
		{"interface empty", with("interface: eth0", `interface: ""`), []string{
			"vipd.yaml:3: instances[0].interface: interface name is empty",
		}},

		// vrid and integers in general.
		{"vrid too big", with("vrid: 51", "vrid: 300"), []string{
			"vipd.yaml:4: instances[0].vrid: 300 is out of range 1..255",
		}},
		{"vrid zero", with("vrid: 51", "vrid: 0"), []string{
			"vipd.yaml:4: instances[0].vrid: 0 is out of range 1..255",
		}},
		{"vrid negative", with("vrid: 51", "vrid: -1"), []string{
			"vipd.yaml:4: instances[0].vrid: -1 is out of range 1..255",
		}},
		{"vrid huge", with("vrid: 51", "vrid: 99999999999999999999999"), []string{
			"vipd.yaml:4: instances[0].vrid: 99999999999999999999999 is out of range 1..255",
		}},
		{"vrid huge negative", with("vrid: 51", "vrid: -99999999999999999999999"), []string{
			"vipd.yaml:4: instances[0].vrid: -99999999999999999999999 is out of range 1..255",
		}},
		{"vrid uint64", with("vrid: 51", "vrid: 18446744073709551615"), []string{
			"vipd.yaml:4: instances[0].vrid: 18446744073709551615 is out of range 1..255",
		}},
		{"vrid string", with("vrid: 51", "vrid: abc"), []string{
			`vipd.yaml:4: instances[0].vrid: expected an integer, got "abc"`,
		}},
		{"vrid quoted number", with("vrid: 51", `vrid: "51"`), []string{
			`vipd.yaml:4: instances[0].vrid: expected an integer, got "51"`,
		}},
		{"vrid float", with("vrid: 51", "vrid: 51.5"), []string{
			"vipd.yaml:4: instances[0].vrid: expected an integer, got 51.5",
		}},
		{"vrid infinity", with("vrid: 51", "vrid: .inf"), []string{
			"vipd.yaml:4: instances[0].vrid: expected an integer, got .inf",
		}},
		{"vrid bool", with("vrid: 51", "vrid: true"), []string{
			"vipd.yaml:4: instances[0].vrid: expected an integer, got true",
		}},
		{"vrid null", with("vrid: 51", "vrid: null"), []string{
			"vipd.yaml:4: instances[0].vrid: expected an integer, got null",
		}},
		{"vrid mapping", with("vrid: 51", "vrid: {a: 1}"), []string{
			"vipd.yaml:4: instances[0].vrid: expected an integer, got a mapping",
		}},

		// priority.
		{"priority 255", inst("    priority: 255"), []string{
			"vipd.yaml:7: instances[0].priority: 255 is reserved for the address owner, which vipd does not support; use 1..254",
		}},
		{"priority 0", inst("    priority: 0"), []string{
			"vipd.yaml:7: instances[0].priority: 0 is out of range 1..254",
		}},
		{"priority 1000", inst("    priority: 1000"), []string{
			"vipd.yaml:7: instances[0].priority: 1000 is out of range 1..254",
		}},
		{"priority string", inst("    priority: high"), []string{
			`vipd.yaml:7: instances[0].priority: expected an integer, got "high"`,
		}},

		// Durations.
		{"advert_interval not a duration", inst("    advert_interval: fast"), []string{
			`vipd.yaml:7: instances[0].advert_interval: expected a Go duration such as 100ms, got "fast"`,
		}},
		{"advert_interval bare number", inst("    advert_interval: 100"), []string{
			"vipd.yaml:7: instances[0].advert_interval: expected a Go duration such as 100ms, got 100",
		}},
		{"advert_interval zero", inst("    advert_interval: 0"), []string{
			"vipd.yaml:7: instances[0].advert_interval: 0 is out of range 10ms..40.95s",
		}},
		{"advert_interval too short", inst("    advert_interval: 5ms"), []string{
			"vipd.yaml:7: instances[0].advert_interval: 5ms is out of range 10ms..40.95s",
		}},
		{"advert_interval too long", inst("    advert_interval: 41s"), []string{
			"vipd.yaml:7: instances[0].advert_interval: 41s is out of range 10ms..40.95s",
		}},
		{"advert_interval negative", inst("    advert_interval: -1s"), []string{
			"vipd.yaml:7: instances[0].advert_interval: -1s is out of range 10ms..40.95s",
		}},
		{"advert_interval not centiseconds", inst("    advert_interval: 105ms"), []string{
			"vipd.yaml:7: instances[0].advert_interval: 105ms is not a multiple of 10ms",
		}},
		{"advert_interval overflow", inst("    advert_interval: 9999999999h"), []string{
			`vipd.yaml:7: instances[0].advert_interval: expected a Go duration such as 100ms, got "9999999999h"`,
		}},
		{"preempt_delay too long", inst("    preempt_delay: 61m"), []string{
			"vipd.yaml:7: instances[0].preempt_delay: 61m is out of range 0s..1h",
		}},
		{"preempt_delay negative", inst("    preempt_delay: -1ms"), []string{
			"vipd.yaml:7: instances[0].preempt_delay: -1ms is out of range 0s..1h",
		}},
		{"preempt_delay null", inst("    preempt_delay: ~"), []string{
			"vipd.yaml:7: instances[0].preempt_delay: expected a Go duration such as 100ms, got null",
		}},

		// preempt.
		{"preempt yes", inst("    preempt: yes"), []string{
			`vipd.yaml:7: instances[0].preempt: expected true or false, got "yes"`,
		}},
		{"preempt number", inst("    preempt: 1"), []string{
			"vipd.yaml:7: instances[0].preempt: expected true or false, got 1",
		}},

		// vips.
		{"vips empty", doc("instances:", "  - name: api", "    interface: eth0", "    vrid: 51", "    vips: []"), []string{
			"vipd.yaml:5: instances[0].vips: at least one VIP is required",
		}},
		{"vips a string", doc("instances:", "  - name: api", "    interface: eth0", "    vrid: 51", "    vips: 192.0.2.50/24"), []string{
			`vipd.yaml:5: instances[0].vips: expected a list of addresses, got "192.0.2.50/24"`,
		}},
		{"vip ipv6", inst("      - 2001:db8::1/64"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 2001:db8::1 is IPv6 but the instance's first VIP is IPv4: an instance has one address family (use a second instance with the same VRID for the other)",
		}},
		{"vip ipv4-mapped", inst("      - ::ffff:192.0.2.9"), []string{
			"vipd.yaml:7: instances[0].vips[1]: ::ffff:192.0.2.9 is an IPv4-mapped IPv6 address; write the IPv4 address",
		}},
		{"vip garbage", inst("      - www.example"), []string{
			`vipd.yaml:7: instances[0].vips[1]: expected an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64, got "www.example"`,
		}},
		{"vip bad prefix length", inst("      - 192.0.2.51/33"), []string{
			`vipd.yaml:7: instances[0].vips[1]: expected an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64, got "192.0.2.51/33"`,
		}},
		{"vip null", inst("      -"), []string{
			"vipd.yaml:7: instances[0].vips[1]: expected an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64, got null",
		}},
		{"vip number", inst("      - 3221225985"), []string{
			`vipd.yaml:7: instances[0].vips[1]: expected an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64, got "3221225985"`,
		}},
		{"vip unspecified", inst("      - 0.0.0.0"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 0.0.0.0 is the unspecified address, not usable as a VIP",
		}},
		{"vip loopback", inst("      - 127.0.0.2/8"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 127.0.0.2 is a loopback address, not usable as a VIP",
		}},
		{"vip multicast", inst("      - 224.0.0.18"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 224.0.0.18 is a multicast address, not usable as a VIP",
		}},
		{"vip broadcast", inst("      - 255.255.255.255"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 255.255.255.255 is the broadcast address, not usable as a VIP",
		}},
		{"vip /0", inst("      - 192.0.2.51/0"), []string{
			"vipd.yaml:7: instances[0].vips[1]: prefix length /0 is not allowed",
		}},
		{"vip twice in one instance", inst("      - 192.0.2.50/32"), []string{
			"vipd.yaml:7: instances[0].vips[1]: 192.0.2.50 is listed twice (first at line 6)",
		}},

		// announce.
		{"announce count 0", inst("    announce:", "      count: 0"), []string{
			"vipd.yaml:8: instances[0].announce.count: 0 is out of range 1..100",
		}},
		{"announce count float", inst("    announce:", "      count: 2.0"), []string{
			"vipd.yaml:8: instances[0].announce.count: expected an integer, got 2.0",
		}},
		{"announce interval", inst("    announce:", "      interval: 11s"), []string{
			"vipd.yaml:8: instances[0].announce.interval: 11s is out of range 10ms..10s",
		}},
		{"announce not a mapping", inst("    announce: 5"), []string{
			"vipd.yaml:7: instances[0].announce: expected a mapping, got 5",
		}},

		// Across instances: at the second use, citing the first.
		{"duplicate name", doc(
			"instances:",
			"  - {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50]}",
			"  - {name: api, interface: eth0, vrid: 52, vips: [192.0.2.51]}",
		), []string{
			`vipd.yaml:3: instances[1].name: instance name "api" is already used (line 2)`,
		}},
		{"duplicate vrid on interface", doc(
			"instances:",
			"  - {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50]}",
			"  - {name: db, interface: eth1, vrid: 51, vips: [192.0.2.51]}",
			"  - name: web",
			"    interface: eth0",
			"    vrid: 51",
			"    vips: [192.0.2.52]",
		), []string{
			`vipd.yaml:6: instances[2].vrid: VRID 51 is already used for IPv4 on eth0 by instance "api" (line 2)`,
		}},
		{"duplicate vip across instances", doc(
			"instances:",
			"  - {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50/24]}",
			"  - name: db",
			"    interface: eth1",
			"    vrid: 52",
			"    vips:",
			"      - 198.51.100.1/24",
			"      - 192.0.2.50/25",
		), []string{
			`vipd.yaml:8: instances[1].vips[1]: 192.0.2.50 is already a VIP of instance "api" (line 2)`,
		}},
		{"duplicates with invalid name", doc(
			"instances:",
			"  - {name: 'a b', interface: eth0, vrid: 51, vips: [192.0.2.50]}",
			"  - {name: db, interface: eth0, vrid: 51, vips: [192.0.2.50]}",
		), []string{
			`vipd.yaml:2: instances[0].name: "a b" is not a valid instance name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
			"vipd.yaml:3: instances[1].vrid: VRID 51 is already used for IPv4 on eth0 by instances[0] (line 2)",
			"vipd.yaml:3: instances[1].vips[0]: 192.0.2.50 is already a VIP of instances[0] (line 2)",
		}},

		// Everything at once, ordered by line.
		{"many", doc(
			"control_socket: relative",
			"instances:",
			"  - name: api",
			"    interface: eth0",
			"    vrid: 300",
			"    priority: 255",
			"    vips: [2001:db8::1]",
			"    bogus: 1",
			"  - interface: eth0",
			"    advert_interval: 1",
		), []string{
			`vipd.yaml:1: control_socket: "relative" is not an absolute path`,
			"vipd.yaml:5: instances[0].vrid: 300 is out of range 1..255",
			"vipd.yaml:6: instances[0].priority: 255 is reserved for the address owner, which vipd does not support; use 1..254",
			"vipd.yaml:8: instances[0].bogus: unknown field (valid fields: " + instFields + ")",
			"vipd.yaml:9: instances[1].name: required field is missing",
			"vipd.yaml:9: instances[1].vrid: required field is missing",
			"vipd.yaml:9: instances[1].vips: required field is missing",
			"vipd.yaml:10: instances[1].advert_interval: expected a Go duration such as 100ms, got 1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("vipd.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			es, ok := err.(Errors)
			if !ok {
				t.Fatalf("error is %T, want Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", tt.in, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Parse("dir/vipd.yaml", []byte(with("vrid: 51", "vrid: 300")))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) failed", err)
	}
	want := &Error{File: "dir/vipd.yaml", Line: 4, Field: "instances[0].vrid", Msg: "300 is out of range 1..255"}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v, want %+v", e, want)
	}

	errs := Errors{
		{File: "a.yaml", Line: 1, Field: "f", Msg: "one"},
		{File: "a.yaml", Line: 2, Msg: "two"},
	}
	if got, want := errs.Error(), "a.yaml:1: f: one\na.yaml:2: two"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte(with("vrid: 51", "vrid: 0")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":4: instances[0].vrid: 0 is out of range 1..255"; err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %s", err, want)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseChecks(t *testing.T) {
	src := doc(
		"checks:",
		"  - name: apiserver",
		"    http:",
		"      url: https://127.0.0.1:6443/readyz",
		"      ca_file: /var/lib/k0s/pki/ca.crt",
		"      expect_status: [200, 204]",
		"    interval: 1s",
		"    timeout: 500ms",
		"    fall: 3",
		"    rise: 2",
		"  - name: haproxy",
		"    tcp: {address: \"127.0.0.1:6443\"}",
		"    initial_state: up",
		"  - name: custom",
		"    exec: {command: [/usr/local/bin/check-etcd, --quick]}",
		"    interval: 2s",
		"instances:",
		"  - name: api",
		"    interface: eth0",
		"    vrid: 51",
		"    vips: [192.0.2.50/24]",
		"    track_checks:",
		"      - {check: apiserver, weight: -60}",
		"      - {check: custom}",
		"    track_interfaces:",
		"      - {interface: eth1}",
		"    notify:",
		"      command: [/usr/local/bin/notify]",
		"      master: [/usr/local/bin/became-master, now]",
		"      timeout: 5s",
	)
	cfg, err := Parse("vipd.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Check{
		{Name: "apiserver", Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2,
			HTTP: &HTTPCheck{URL: "https://127.0.0.1:6443/readyz", Method: "GET", CAFile: "/var/lib/k0s/pki/ca.crt", ExpectStatus: []int{200, 204}}},
		{Name: "haproxy", Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2, InitialUp: true,
			TCP: &TCPCheck{Address: "127.0.0.1:6443"}},
		{Name: "custom", Interval: 2 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2,
			Exec: &ExecCheck{Command: []string{"/usr/local/bin/check-etcd", "--quick"}}},
	}
	if !reflect.DeepEqual(cfg.Checks, want) {
		t.Errorf("checks:\n got %+v\nwant %+v", cfg.Checks, want)
	}
	in := cfg.Instances[0]
	if want := []TrackCheck{{Check: "apiserver", Weight: -60}, {Check: "custom"}}; !reflect.DeepEqual(in.TrackChecks, want) {
		t.Errorf("track_checks %+v, want %+v", in.TrackChecks, want)
	}
	if want := []TrackInterface{{Interface: "eth1"}}; !reflect.DeepEqual(in.TrackInterfaces, want) {
		t.Errorf("track_interfaces %+v, want %+v", in.TrackInterfaces, want)
	}
	wantNotify := Notify{Command: []string{"/usr/local/bin/notify"}, Master: []string{"/usr/local/bin/became-master", "now"}, Timeout: 5 * time.Second}
	if !reflect.DeepEqual(in.Notify, wantNotify) {
		t.Errorf("notify %+v, want %+v", in.Notify, wantNotify)
	}
}

func TestParseCheckErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown check", inst("    track_checks: [{check: nope}]"), []string{
			`vipd.yaml:7: instances[0].track_checks[0].check: unknown check "nope": no checks are defined (add them under checks:)`,
		}},
		{"unknown check with some defined", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}}") + inst("    track_checks: [{check: b}]"), []string{
			`vipd.yaml:9: instances[0].track_checks[0].check: unknown check "b" (defined: a)`,
		}},
		{"timeout not shorter", doc("checks:", "  - name: a", "    tcp: {address: \"127.0.0.1:1\"}", "    interval: 1s", "    timeout: 1s") + inst(), []string{
			`vipd.yaml:5: checks[0].timeout: 1s must be shorter than the interval (1s)`,
		}},
		{"empty command", doc("checks:", "  - name: a", "    exec: {command: []}") + inst(), []string{
			`vipd.yaml:3: checks[0].exec.command: the command is empty: give the program and its arguments, e.g. [/usr/local/bin/check, --quick]`,
		}},
		{"not http", doc("checks:", "  - name: a", "    http: {url: \"ftp://127.0.0.1/\"}") + inst(), []string{
			`vipd.yaml:3: checks[0].http.url: "ftp://127.0.0.1/" is not an http or https URL`,
		}},
		{"weight range", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}}") + inst("    track_checks: [{check: a, weight: -254}]"), []string{
			`vipd.yaml:9: instances[0].track_checks[0].weight: -254 is out of range -253..253`,
		}},
		{"no kind", doc("checks:", "  - name: a") + inst(), []string{
			`vipd.yaml:2: checks[0]: exactly one of exec, http and tcp is required, got 0`,
		}},
		{"two kinds", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}, exec: {command: [x]}}") + inst(), []string{
			`vipd.yaml:2: checks[0]: exactly one of exec, http and tcp is required, got 2`,
		}},
		{"duplicate check", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}}", "  - {name: a, tcp: {address: \"127.0.0.1:2\"}}") + inst(), []string{
			`vipd.yaml:3: checks[1].name: check name "a" is already used (line 2)`,
		}},
		{"tracked twice", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}}") + inst("    track_checks: [{check: a}, {check: a}]"), []string{
			`vipd.yaml:9: instances[0].track_checks[1]: check "a" is tracked twice (first at line 9)`,
		}},
		{"tcp address", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1\"}}") + inst(), []string{
			`vipd.yaml:2: checks[0].tcp.address: "127.0.0.1" is not host:port (e.g. 127.0.0.1:6443)`,
		}},
		{"cert without key", doc("checks:", "  - name: a", "    http: {url: \"https://127.0.0.1/\", cert_file: /c.pem}") + inst(), []string{
			`vipd.yaml:3: checks[0].http: cert_file and key_file go together`,
		}},
		{"notify empty", inst("    notify: {master: []}"), []string{
			`vipd.yaml:7: instances[0].notify.master: the command is empty: give the program and its arguments, e.g. [/usr/local/bin/check, --quick]`,
		}},
		{"initial_state", doc("checks:", "  - {name: a, tcp: {address: \"127.0.0.1:1\"}, initial_state: maybe}") + inst(), []string{
			`vipd.yaml:2: checks[0].initial_state: "maybe" is not up or down`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("vipd.yaml", []byte(tt.src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", tt.src, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

func TestParseFamilies(t *testing.T) {
	src := doc(
		"instances:",
		"  - {name: v4, interface: eth0, vrid: 51, vips: [192.0.2.50/24], unicast_peers: [192.0.2.12, 192.0.2.13], unicast_source: 192.0.2.11}",
		"  - {name: v6, interface: eth0, vrid: 51, vips: [2001:db8::50/64]}",
		"  - {name: v2, interface: eth0, vrid: 52, version: 2, advert_interval: 100s, auth_pass: secret, vips: [192.0.2.60]}",
		"  - {name: flat, interface: eth0, vrid: 53, v3_checksum_as_v2: true, vips: [192.0.2.70]}",
	)
	cfg, err := Parse("vipd.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	v4, v6, v2, flat := cfg.Instances[0], cfg.Instances[1], cfg.Instances[2], cfg.Instances[3]
	if v4.Family != "ipv4" || v4.Version != 3 || len(v4.UnicastPeers) != 2 || v4.UnicastSource != netip.MustParseAddr("192.0.2.11") {
		t.Errorf("v4 = %+v", v4)
	}
	if v6.Family != "ipv6" || v6.VIPs[0] != netip.MustParsePrefix("2001:db8::50/64") {
		t.Errorf("v6 = %+v", v6)
	}
	if v2.Version != 2 || v2.AuthPass != "secret" || v2.AdvertInterval != 100*time.Second {
		t.Errorf("v2 = %+v", v2)
	}
	if !flat.V3ChecksumAsV2 {
		t.Errorf("flat = %+v", flat)
	}
}

func TestParseFamilyErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"mixed families", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50, 2001:db8::50]}"), []string{
			`vipd.yaml:2: instances[0].vips[1]: 2001:db8::50 is IPv6 but the instance's first VIP is IPv4: an instance has one address family (use a second instance with the same VRID for the other)`,
		}},
		{"same family same vrid", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [2001:db8::50]}", "  - {name: b, interface: eth0, vrid: 1, vips: [2001:db8::51]}"), []string{
			`vipd.yaml:3: instances[1].vrid: VRID 1 is already used for IPv6 on eth0 by instance "a" (line 2)`,
		}},
		{"empty peers", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50], unicast_peers: []}"), []string{
			`vipd.yaml:2: instances[0].unicast_peers: an empty list would silently mean multicast; remove the field to use multicast, or list the peers`,
		}},
		{"peer family", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50], unicast_peers: [2001:db8::12]}"), []string{
			`vipd.yaml:2: instances[0].unicast_peers[0]: peer 2001:db8::12 is not IPv4 like the instance's VIPs`,
		}},
		{"peer twice", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50], unicast_peers: [192.0.2.12, 192.0.2.12]}"), []string{
			`vipd.yaml:2: instances[0].unicast_peers[1]: 192.0.2.12 is listed twice (first at line 2)`,
		}},
		{"source without peers", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50], unicast_source: 192.0.2.11}"), []string{
			`vipd.yaml:2: instances[0].unicast_source: unicast_source needs unicast_peers`,
		}},
		{"auth with v3", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [192.0.2.50], auth_pass: secret}"), []string{
			`vipd.yaml:2: instances[0].auth_pass: VRRPv3 has no authentication (RFC 9568 §9 removed it); set version: 2 to use a password, as keepalived's authentication { auth_type PASS } does`,
		}},
		{"long password", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, version: 2, vips: [192.0.2.50], auth_pass: 123456789}"), []string{
			`vipd.yaml:2: instances[0].auth_pass: a VRRPv2 password is 1 to 8 bytes, got 9`,
		}},
		{"v2 ipv6", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, version: 2, vips: [2001:db8::50]}"), []string{
			`vipd.yaml:2: instances[0].version: VRRPv2 (RFC 3768) is IPv4 only; use version 3 for IPv6 VIPs`,
		}},
		{"v2 fractional interval", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 1500ms, vips: [192.0.2.50]}"), []string{
			`vipd.yaml:2: instances[0].advert_interval: VRRPv2 advertises whole seconds: 1.5s is not a multiple of 1s`,
		}},
		{"v2 interval up to 255s", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, version: 2, advert_interval: 300s, vips: [192.0.2.50]}"), []string{
			`vipd.yaml:2: instances[0].advert_interval: 300s is out of range 1s..255s for VRRPv2`,
		}},
		{"v3 interval up to 40.95s", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, advert_interval: 100s, vips: [192.0.2.50]}"), []string{
			`vipd.yaml:2: instances[0].advert_interval: 100s is out of range 10ms..40.95s`,
		}},
		{"version 4", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, version: 4, vips: [192.0.2.50]}"), []string{
			`vipd.yaml:2: instances[0].version: 4 is out of range 2..3`,
		}},
		{"link-local vip", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, vips: [fe80::50]}"), []string{
			`vipd.yaml:2: instances[0].vips[0]: fe80::50 is a link-local address, not usable as a VIP`,
		}},
		{"checksum option on ipv6", doc("instances:", "  - {name: a, interface: eth0, vrid: 1, v3_checksum_as_v2: true, vips: [2001:db8::50]}"), []string{
			`vipd.yaml:2: instances[0].v3_checksum_as_v2: applies to IPv4 only (IPv6 checksums always include the pseudo-header)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("vipd.yaml", []byte(tt.src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", tt.src, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}
