package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
)

// bgpControlBackend is a daemon with a bgp section.
type bgpControlBackend struct {
	fakeControlBackend
	bgp *control.BGP
}

func (b *bgpControlBackend) BGP() *control.BGP { return b.bgp }

func TestCmdStatusBGP(t *testing.T) {
	b := &control.BGP{
		Peers: []control.BGPPeer{
			{Address: "192.0.2.1", ASN: 65000, State: "established", Since: time.Now().Add(-90 * time.Second), BFD: "up"},
			{Address: "192.0.2.2", ASN: 65000, State: "active", Reason: "bad-peer-as"},
		},
		Announced: []string{"203.0.113.10/32"},
	}
	path := startControlServer(t, &bgpControlBackend{fakeControlBackend{insts: statusInstances()}, b})
	code, out, errOut := runControlCmd(cmdStatus, "--socket", path, "-bgp")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"BGP PEER ASN STATE FOR BFD REASON",
		"192.0.2.1 65000 established 1m30s up -",
		"192.0.2.2 65000 active - - bad-peer-as",
		"",
		"ANNOUNCED",
		"203.0.113.10/32",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// The plain status ends with the same tables.
	_, out, _ = runControlCmd(cmdStatus, "--socket", path)
	if !strings.HasSuffix(out, "ANNOUNCED\n203.0.113.10/32\n") {
		t.Errorf("status without -bgp:\n%s", out)
	}

	code, out, _ = runControlCmd(cmdStatus, "--socket", path, "-bgp", "--json")
	var got control.BGP
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got.Peers) != 2 || got.Peers[1].Reason != "bad-peer-as" || got.Announced[0] != "203.0.113.10/32" {
		t.Errorf("-bgp --json: exit %d, %v:\n%s", code, err, out)
	}
}

func TestCmdStatusNoBGP(t *testing.T) {
	path := startControlServer(t, &fakeControlBackend{insts: statusInstances()})
	code, out, _ := runControlCmd(cmdStatus, "--socket", path, "-bgp", "--json")
	if code != 0 || strings.TrimSpace(out) != "null" {
		t.Errorf("exit %d, output %q, want null", code, out)
	}
}
