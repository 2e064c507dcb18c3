package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// twoInsts is a valid file of two instances on two interfaces (lines
// 1-13), then extra lines.
func twoInsts(extra ...string) string {
	return doc(append([]string{
		"instances:",
		"  - name: front",
		"    interface: eth0",
		"    vrid: 51",
		"    priority: 150",
		"    vips: [192.0.2.50/24]",
		"    track_checks: [{check: api}]",
		"  - name: back",
		"    interface: eth1",
		"    vrid: 52",
		"    priority: 150",
		"    vips: [198.51.100.1/24]",
		"checks: [{name: api, exec: {command: [/bin/true]}}]",
	}, extra...)...)
}

func TestSyncGroups(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(twoInsts(
		"sync_groups:",
		"  - name: gw",
		"    instances: [front, back]",
		"    notify: {command: [/usr/local/bin/notify], master: [/bin/m], timeout: 2s}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := []SyncGroup{{Name: "gw", Instances: []string{"front", "back"},
		Notify: Notify{Command: []string{"/usr/local/bin/notify"}, Master: []string{"/bin/m"}, Timeout: 2 * time.Second}}}
	if !reflect.DeepEqual(cfg.SyncGroups, want) {
		t.Errorf("SyncGroups = %+v, want %+v", cfg.SyncGroups, want)
	}
	for _, in := range cfg.Instances {
		if in.SyncGroup != "gw" {
			t.Errorf("instance %s: SyncGroup = %q, want gw", in.Name, in.SyncGroup)
		}
	}

	cfg, err = Parse("vipd.yaml", []byte(twoInsts()))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SyncGroups) != 0 || cfg.Instances[0].SyncGroup != "" {
		t.Errorf("without sync_groups: %+v, %q", cfg.SyncGroups, cfg.Instances[0].SyncGroup)
	}
}

func TestSyncGroupErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one member", twoInsts("sync_groups:", "  - {name: gw, instances: [front]}"), []string{
			"vipd.yaml:15: sync_groups[0].instances: a sync group needs at least two instances",
		}},
		{"unknown member", twoInsts("sync_groups:", "  - {name: gw, instances: [front, bakc]}"), []string{
			`vipd.yaml:15: sync_groups[0].instances[1]: unknown instance "bakc"; did you mean "back"?`,
		}},
		{"unknown member far", twoInsts("sync_groups:", "  - {name: gw, instances: [front, xyzzy]}"), []string{
			`vipd.yaml:15: sync_groups[0].instances[1]: unknown instance "xyzzy" (instances: front, back)`,
		}},
		{"member twice", twoInsts("sync_groups:", "  - {name: gw, instances: [front, back, front]}"), []string{
			`vipd.yaml:15: sync_groups[0].instances[2]: instance "front" is listed twice (first at line 15)`,
		}},
		{"two groups", twoInsts("sync_groups:", "  - {name: a, instances: [front, back]}", "  - {name: b, instances: [back, front]}"), []string{
			`vipd.yaml:16: sync_groups[1].instances[0]: instance "back" is already in sync group "a": an instance can be in one group only`,
			`vipd.yaml:16: sync_groups[1].instances[1]: instance "front" is already in sync group "a": an instance can be in one group only`,
		}},
		{"name twice", strings.Replace(twoInsts("sync_groups:", "  - {name: gw, instances: [front, back]}", "  - {name: gw, instances: [third, fourth]}"),
			"\nchecks:", "\n  - {name: third, interface: eth2, vrid: 53, vips: [203.0.113.1/24]}\n  - {name: fourth, interface: eth2, vrid: 54, vips: [203.0.113.2/24]}\nchecks:", 1), []string{
			`vipd.yaml:18: sync_groups[1].name: sync group name "gw" is already used (line 17)`,
		}},
		{"priorities differ", strings.Replace(twoInsts("sync_groups:", "  - {name: gw, instances: [front, back]}"), "priority: 150\n    vips: [198", "priority: 140\n    vips: [198", 1), []string{
			`vipd.yaml:15: sync_groups[0].instances[1]: instance "back" has priority 140 but "front" (line 15) has 150: members of a sync group need one priority, or their elections rank nodes differently and churn`,
		}},
		{"preempt differs", strings.Replace(twoInsts("sync_groups:", "  - {name: gw, instances: [front, back]}"), "vrid: 52", "vrid: 52\n    preempt: false", 1), []string{
			`vipd.yaml:16: sync_groups[0].instances[1]: instance "back" preempts differently from "front" (line 16): members of a sync group need the same preempt and preempt_delay, or one waits for the other forever`,
		}},
		{"weighted check", strings.Replace(twoInsts("sync_groups:", "  - {name: gw, instances: [front, back]}"), "[{check: api}]", "[{check: api, weight: -20}]", 1), []string{
			`vipd.yaml:15: sync_groups[0].instances[0]: instance "front" tracks check "api" with weight -20: in a sync group a weight would change this member's priority alone, and the members would rank nodes differently; track it without a weight (FAULT moves the whole group)`,
		}},
		{"bad name", twoInsts("sync_groups:", "  - {name: 'a b', instances: [front, back]}"), []string{
			`vipd.yaml:15: sync_groups[0].name: "a b" is not a valid sync group name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
		}},
		{"unknown field", twoInsts("sync_groups:", "  - {name: gw, instances: [front, back], members: []}"), []string{
			`vipd.yaml:15: sync_groups[0].members: unknown field (valid fields: name, instances, notify)`,
		}},
		{"missing instances", twoInsts("sync_groups:", "  - {name: gw}"), []string{
			`vipd.yaml:15: sync_groups[0].instances: required field is missing`,
		}},
		{"not a list", twoInsts("sync_groups: {name: gw}"), []string{
			`vipd.yaml:14: sync_groups: expected a list of sync groups, got a mapping`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.in, tt.want) })
	}
}

// wantErrors parses in and checks that it is refused with exactly want.
func wantErrors(t *testing.T, in string, want []string) {
	t.Helper()
	_, err := Parse("vipd.yaml", []byte(in))
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("error is %T (%v), want Errors", err, err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", in, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
