package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSelectScenarios(t *testing.T) {
	scs, err := selectScenarios("auth, failover")
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 2 || scs[0].Name != "auth" || scs[1].Name != "failover" {
		t.Errorf("got %v, want auth then failover", scs)
	}
	if got, want := strings.Join(scenarioNames(), ","), "failover,health,reliability,scale1000,auth,lb,bgp"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if _, err := selectScenarios("failover,soak"); err == nil || !strings.Contains(err.Error(), `"soak"`) {
		t.Errorf("unknown part: %v", err)
	}
}

func TestTablePrint(t *testing.T) {
	tb := rowTable(vsKeepalived, []row{{"a", "1.0 ms/s", "2.0 ms/s", ratio(1, 2, true), "goal"}, {"longer scenario", "-", "-", ratio(1, 0, true), "x"}})
	tb.notes = []string{"", "note"}
	var b bytes.Buffer
	if err := tb.print(&b); err != nil {
		t.Fatal(err)
	}
	want := `scenario         vipd      keepalived  vipd/keepalived  RFC / goal
a                1.0 ms/s  2.0 ms/s    0.50             goal
longer scenario  -         -           -                x

note
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * ms}, 3 * ms},
		{[]time.Duration{5 * ms, 1 * ms, 3 * ms}, 3 * ms},
		{[]time.Duration{4 * ms, 1 * ms}, 2500 * time.Microsecond},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
