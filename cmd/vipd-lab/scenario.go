package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// A Scenario is one part of the benchmark, the unit --only selects. Run
// builds a lab of its own, prints its progress to env.w as it goes and
// returns its table; it returns an error only when it cannot go on (a
// measurement that fails is a cell of the table).
type Scenario struct {
	Name string
	Run  func(ctx context.Context, env *benchEnv) (*table, error)
}

// scenarios are the parts of the whole benchmark, in the order they run.
var scenarios = []Scenario{
	{"failover", benchFailover},
	{"health", benchHealth},
	{"reliability", benchReliability},
	{"scale1000", benchScale1000},
	{"auth", benchAuth},
	{"lb", benchLB},
	{"bgp", benchBGP},
}

// scenarioNames are the names of scenarios, in order.
func scenarioNames() []string {
	s := make([]string, len(scenarios))
	for i, sc := range scenarios {
		s[i] = sc.Name
	}
	return s
}

// benchEnv is what every scenario is given: the flags of "vipd-lab bench".
type benchEnv struct {
	w         io.Writer
	vipd      string // vipd's binary, an absolute path
	vipdNoBGP string // the same built without GoBGP, or ""
	runs      int    // measurements per cell (failover, health)
	intervals []time.Duration
}

// selectScenarios returns the scenarios only names (comma-separated), in
// the order given.
func selectScenarios(only string) ([]Scenario, error) {
	var out []Scenario
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(scenarios, func(sc Scenario) bool { return sc.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("--only: unknown part %q (%s)", name, strings.Join(scenarioNames(), ", "))
		}
		out = append(out, scenarios[i])
	}
	return out, nil
}

// bench runs the scenarios only names, each table after its progress lines
// and a blank line.
func bench(ctx context.Context, env *benchEnv, only string) error {
	scs, err := selectScenarios(only)
	if err != nil {
		return err
	}
	for _, sc := range scs {
		t, err := sc.Run(ctx, env)
		if err == nil {
			fmt.Fprintln(env.w)
			err = t.print(env.w)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		fmt.Fprintln(env.w)
	}
	return nil
}

// A table is a scenario's result: columns aligned under a header, then
// lines of notes.
type table struct {
	header []string
	rows   [][]string
	notes  []string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range t.notes {
		fmt.Fprintln(w, n)
	}
	return nil
}

// A row compares vipd with another daemon, or with an anchor of its own.
type row struct {
	scenario, vipd, other, ratio, note string
}

// The headers of tables of rows.
var (
	vsKeepalived = []string{"scenario", "vipd", "keepalived", "vipd/keepalived", "RFC / goal"}
	vsAnchor     = []string{"scenario", "vipd", "anchor", "ratio", "note"}
)

// rowTable is a table of rows under header.
func rowTable(header []string, rows []row) *table {
	t := &table{header: header}
	for _, r := range rows {
		t.add(r.scenario, r.vipd, r.other, r.ratio, r.note)
	}
	return t
}

// median is the median of ds, 0 for none.
func median[T time.Duration | float64](ds []T) T {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is v/k with two decimals, "-" when either is missing (not ok) or k
// is 0.
func ratio(v, k float64, ok bool) string {
	if !ok || k == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/k)
}

// ms formats a duration for people: milliseconds with one decimal below a
// second, seconds with two above.
func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// msPerSecond formats CPU time per second: two decimals below 1 ms/s.
func msPerSecond(d time.Duration) string {
	f := float64(d) / 1e6
	if f < 1 {
		return fmt.Sprintf("%.2f ms/s", f)
	}
	return fmt.Sprintf("%.1f ms/s", f)
}

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
