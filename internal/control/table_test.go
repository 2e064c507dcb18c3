package control

import (
	"strings"
	"testing"
	"time"
)

func TestWriteTable(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 3, 12, 0, time.UTC)
	insts := append(testInstances[:2:2],
		Instance{Name: "new", Interface: "eth2", VRID: 7, Family: "ipv6", State: "init",
			Priority: 100, ConfiguredPriority: 100},
		Instance{Name: "long-name-here", Interface: "bond0.100", VRID: 255, Family: "ipv4", State: "fault",
			Priority: 1, ConfiguredPriority: 254, Since: now.Add(-50 * time.Hour),
			FailingChecks: []string{"link\tdown"}},
	)
	var b strings.Builder
	WriteTable(&b, now, insts)
	want := `NAME            IFACE      VRID  FAMILY  STATE   PRIORITY  MASTER      SINCE  CHECKS
api             eth0       51    ipv4    master  150/150   192.0.2.11  3m12s  -
db              eth1       52    ipv4    backup  90/150    192.0.2.12  1h3m   pg,disk
new             eth2       7     ipv6    init    100/100   -           -      -
long-name-here  bond0.100  255   ipv4    fault   1/254     -           2d2h   link?down
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableEmpty(t *testing.T) {
	var b strings.Builder
	WriteTable(&b, time.Now(), nil)
	if want := "NAME  IFACE  VRID  FAMILY  STATE  PRIORITY  MASTER  SINCE  CHECKS\n"; b.String() != want {
		t.Errorf("table = %q, want %q", b.String(), want)
	}
}

func TestSince(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "0s"},
		{900 * time.Millisecond, "0s"},
		{59 * time.Second, "59s"},
		{60 * time.Second, "1m0s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{time.Hour - time.Second, "59m59s"},
		{time.Hour, "1h0m"},
		{5*time.Hour + 3*time.Minute + 59*time.Second, "5h3m"},
		{24 * time.Hour, "1d0h"},
		{400*24*time.Hour + 5*time.Hour, "400d5h"},
		{-time.Minute, "0s"}, // the clock was stepped back
	} {
		if got := since(now, now.Add(-tt.ago)); got != tt.want {
			t.Errorf("since(%v ago) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := since(now, time.Time{}); got != "-" {
		t.Errorf("since(zero) = %q, want -", got)
	}
}
