package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/control"
)

// lbControlBackend is a daemon with virtual servers.
type lbControlBackend struct {
	fakeControlBackend
	vss []control.VirtualServer
}

func (b *lbControlBackend) VirtualServers() []control.VirtualServer { return b.vss }

func statusVirtualServers() []control.VirtualServer {
	live := uint64(12)
	return []control.VirtualServer{{
		Name: "apiserver", Address: "192.0.2.50", Port: 6443, Protocol: "tcp", Mode: "proxy", Scheduler: "least_conn",
		Quorum: 1, Healthy: 1, Up: true,
		RealServers: []control.RealServer{
			{Address: "192.0.2.11", Port: 6443, Weight: 1, Up: true, Local: true, Connections: 1021, LiveConnections: &live},
			{Address: "192.0.2.12", Port: 6443, Weight: 2, LiveConnections: new(uint64)},
		},
	}, {
		Name: "dns", Address: "2001:db8::53", Port: 53, Protocol: "udp", Mode: "nat", Scheduler: "random", Quorum: 1,
		Error:       "lb: real servers on another host need forwarding: virtual server dns: set net.ipv6.conf.all.forwarding=1",
		RealServers: []control.RealServer{{Address: "2001:db8::11", Port: 53, Weight: 1}},
	}}
}

func TestCmdStatusVirtualServers(t *testing.T) {
	path := startControlServer(t, &lbControlBackend{fakeControlBackend{insts: statusInstances()}, statusVirtualServers()})
	code, out, errOut := runControlCmd(cmdStatus, "--socket", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var rows []string
	for _, l := range lines {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"",
		"VIRTUAL SERVER ADDRESS PROTO MODE STATE HEALTHY REAL SERVER WEIGHT CHECK LOCAL CONNS LIVE",
		"apiserver 192.0.2.50:6443 tcp proxy up 1/2 ≥1 192.0.2.11:6443 1 up yes 1021 12",
		"192.0.2.12:6443 2 down no 0 0",
		"dns [2001:db8::53]:53 udp nat error 0/1 ≥1 [2001:db8::11]:53 1 down no 0 -",
		"dns: lb: real servers on another host need forwarding: virtual server dns: set net.ipv6.conf.all.forwarding=1",
	}
	if len(rows) != 2+len(want) || strings.Join(rows[2:], "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant after the instances:\n%s", out, strings.Join(want, "\n"))
	}

	// --json stays the instances array; -virtual-servers --json is theirs.
	code, out, _ = runControlCmd(cmdStatus, "--socket", path, "--json")
	var insts []control.Instance
	if err := json.Unmarshal([]byte(out), &insts); code != 0 || err != nil || len(insts) != 1 {
		t.Errorf("--json: exit %d, %v, output:\n%s", code, err, out)
	}
	code, out, _ = runControlCmd(cmdStatus, "--socket", path, "--json", "--virtual-servers")
	var vss []control.VirtualServer
	if err := json.Unmarshal([]byte(out), &vss); code != 0 || err != nil || len(vss) != 2 || !vss[0].RealServers[0].Local || vss[1].Error == "" {
		t.Errorf("--json --virtual-servers: exit %d, %v, output:\n%s", code, err, out)
	}
	if !strings.Contains(out, `"real_servers": [`) || !strings.Contains(out, `"healthy": 1,`) || !strings.Contains(out, `"connections": 1021`) ||
		!strings.Contains(out, `"mode": "proxy",`) || !strings.Contains(out, `"live_connections": 12`) || strings.Count(out, `"live_connections"`) != 2 {
		t.Errorf("JSON field names:\n%s", out)
	}

	// A daemon without virtual servers: the table as before, [] for them.
	plain := startControlServer(t, &lbControlBackend{fakeControlBackend{insts: statusInstances()}, []control.VirtualServer{}})
	if code, out, _ := runControlCmd(cmdStatus, "--socket", plain); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("without virtual servers: exit %d, output:\n%s", code, out)
	}
	if code, out, _ := runControlCmd(cmdStatus, "--socket", plain, "--json", "--virtual-servers"); code != 0 || out != "[]\n" {
		t.Errorf("without virtual servers, --json --virtual-servers: exit %d, output %q", code, out)
	}
}
