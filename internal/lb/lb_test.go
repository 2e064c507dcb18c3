package lb

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func vs4(bs ...Backend) VirtualServer {
	return VirtualServer{Name: "web", Addr: netip.MustParseAddr("192.0.2.50"), Port: 80, Protocol: TCP, Backends: bs}
}

func be(addr string, w int) Backend {
	return Backend{Addr: netip.MustParseAddr(addr), Port: 8080, Weight: w}
}

func TestValidate(t *testing.T) {
	ok := vs4(be("192.0.2.11", 1))
	tests := []struct {
		name   string
		change func(v *VirtualServer)
		want   string // substring of the error; "" for none
	}{
		{"ok", func(v *VirtualServer) {}, ""},
		{"no backends", func(v *VirtualServer) { v.Backends = nil }, ""},
		{"udp", func(v *VirtualServer) { v.Protocol = UDP }, ""},
		{"empty name", func(v *VirtualServer) { v.Name = "" }, "name"},
		{"name with a space", func(v *VirtualServer) { v.Name = "a b" }, "name"},
		{"name too long", func(v *VirtualServer) { v.Name = strings.Repeat("a", 65) }, "name"},
		{"no address", func(v *VirtualServer) { v.Addr = netip.Addr{} }, "bad address"},
		{"mapped address", func(v *VirtualServer) { v.Addr = netip.MustParseAddr("::ffff:192.0.2.50") }, "bad address"},
		{"port 0", func(v *VirtualServer) { v.Port = 0 }, "port 0"},
		{"sctp", func(v *VirtualServer) { v.Protocol = 132 }, "protocol"},
		{"scheduler", func(v *VirtualServer) { v.Scheduler = 9 }, "scheduler"},
		{"persistence below 1s", func(v *VirtualServer) { v.Persistence = time.Millisecond }, "persistence"},
		{"negative persistence", func(v *VirtualServer) { v.Persistence = -time.Second }, "persistence"},
		{"family", func(v *VirtualServer) { v.Backends = []Backend{be("2001:db8::11", 1)} }, "family"},
		{"backend port 0", func(v *VirtualServer) { v.Backends[0].Port = 0 }, "port 0"},
		{"down", func(v *VirtualServer) { v.Down = []Backend{be("192.0.2.12", -1)} }, ""},
		{"down twice", func(v *VirtualServer) { v.Down = []Backend{be("192.0.2.11", 1)} }, "twice"},
		{"down family", func(v *VirtualServer) { v.Down = []Backend{be("2001:db8::11", 1)} }, "family"},
		{"down port 0", func(v *VirtualServer) { v.Down = []Backend{{Addr: netip.MustParseAddr("192.0.2.12")}} }, "port 0"},
		{"negative weight", func(v *VirtualServer) { v.Backends[0].Weight = -1 }, "negative weight"},
		{"twice", func(v *VirtualServer) { v.Backends = append(v.Backends, v.Backends[0]) }, "twice"},
		{"weights too large", func(v *VirtualServer) {
			v.Backends = []Backend{be("192.0.2.11", 1000), be("192.0.2.12", 33)}
		}, "weights add up to 1033"},
		{"large weights that reduce", func(v *VirtualServer) {
			v.Backends = []Backend{be("192.0.2.11", 1000000), be("192.0.2.12", 500000)}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ok
			v.Backends = append([]Backend(nil), ok.Backends...)
			tt.change(&v)
			err := v.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if err := (VirtualServer{Name: "1a"}).Validate(); !errors.Is(err, ErrName) {
		t.Errorf("name 1a: %v, want ErrName", err)
	}
}

func TestValidateSet(t *testing.T) {
	a, b := vs4(), vs4()
	b.Name = "other"
	if err := Validate([]VirtualServer{a, b}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("same address, port and protocol: %v", err)
	}
	b.Protocol = UDP
	if err := Validate([]VirtualServer{a, b}); err != nil {
		t.Errorf("same address and port, other protocol: %v", err)
	}
	b.Name = a.Name
	if err := Validate([]VirtualServer{a, b}); err == nil || !strings.Contains(err.Error(), "named") {
		t.Errorf("same name: %v", err)
	}
}

func TestScheduler(t *testing.T) {
	for _, s := range []Scheduler{RoundRobin, Random, SourceHash} {
		got, err := ParseScheduler(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScheduler(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseScheduler("wlc"); err == nil {
		t.Error("ParseScheduler(wlc) did not fail")
	}
}

func TestReduce(t *testing.T) {
	w, total := reduce([]Backend{{Weight: 300}, {Weight: 100}, {Weight: 0}, {Weight: -1}})
	if want := []int{3, 1, 0, 0}; total != 4 || len(w) != 4 || w[0] != want[0] || w[1] != want[1] || w[2] != 0 || w[3] != 0 {
		t.Errorf("reduce = %v, %d; want %v, 4", w, total, want)
	}
	if _, total := reduce([]Backend{{Weight: 0}}); total != 0 {
		t.Errorf("reduce of weight 0 = %d, want 0", total)
	}
}
