// Package monitoring holds no code: its test checks the Prometheus alerting
// rules and the Grafana dashboard beside it against promtool and against
// the metrics vipd exports.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/vipd/vipd/internal/metrics"

	"github.com/vipd/vipd/internal/testenv"
)

const (
	rulesFile     = "vipd-alerts.yaml"
	rulesTestFile = "vipd-alerts_test.yaml"
	dashboardFile = "vipd-dashboard.json"
	runbook       = "https://github.com/vipd/vipd/blob/main/README.md#"
)

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         *string           `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(readFile(t, rulesFile), &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", rulesFile)
	}
	return rules
}

// dashboardExprs returns the PromQL of every panel target, and the
// template variables' queries.
func dashboardExprs(t *testing.T) (panels, variables []string) {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q: a target without expr", dashboardFile, p.Title)
			}
			panels = append(panels, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			variables = append(variables, v.Definition)
		}
	}
	if len(panels) == 0 {
		t.Fatalf("%s: no panel queries", dashboardFile)
	}
	return panels, variables
}

// TestPromtool: the rules load, their unit tests pass, and every dashboard
// query is valid PromQL. CI must have promtool (Debian's prometheus
// package, in the Makefile's DEB_PACKAGES).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus); CI must install it")
		}
		t.Skip("promtool is missing (Debian package prometheus); set CI=true to make this a failure")
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", rulesFile)
	run("test", "rules", rulesTestFile)

	// The dashboard's queries as recording rules, with Grafana's variables
	// given values, so promtool parses them.
	panels, _ := dashboardExprs(t)
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$host", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range panels {
		q, _ := json.Marshal(grafana.Replace(e))
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", path)
}

var metricName = regexp.MustCompile(`\b(?:vipd|process|go)_[a-z0-9_]+`)

// TestMetricNames: every vipd_ (and process_, go_) series an alert or a
// panel names is one vipd exports.
func TestMetricNames(t *testing.T) {
	exported := exportedNames(t)
	check := func(where string, texts ...string) {
		reported := map[string]bool{}
		for _, text := range texts {
			for _, name := range metricName.FindAllString(text, -1) {
				if !strings.HasPrefix(name, "vipd_") && runtime.GOOS != "linux" {
					continue // the process collector is Linux's
				}
				if !exported[name] && !reported[name] {
					reported[name] = true
					t.Errorf("%s names %s, which vipd does not export", where, name)
				}
			}
		}
	}
	for _, r := range readRules(t) {
		texts := []string{r.Expr}
		for _, a := range r.Annotations {
			texts = append(texts, a)
		}
		check(rulesFile+": "+r.Alert+r.Record, texts...)
	}
	// The queries, the variables', and the titles and descriptions too.
	panels, variables := dashboardExprs(t)
	check(dashboardFile, append(append(panels, variables...), string(readFile(t, dashboardFile)))...)
}

// exportedNames gathers a registry with every series present, as
// internal/metrics' TestNames does, and returns the names a query can use:
// the families, and a histogram's _bucket, _sum and _count.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "v1.2.3")
	m.Instances.SetSource(func(yield func(*metrics.InstanceSample)) {
		s := &metrics.InstanceSample{Name: "api", Interface: "eth0", Family: "ipv4", VRID: 51, State: 2,
			Configured: 150, Effective: 150, Master: "192.0.2.11", AnnounceKind: "garp"}
		s.Transitions[1][2] = 1
		yield(s)
	})
	m.Routes.SetSource(func() metrics.RouteStats { return metrics.RouteStats{Routes: 2, Rules: 1, Repairs: 1} })
	m.PacketsDropped.WithLabelValues("eth0", "ttl").Inc()
	m.CheckUp.WithLabelValues("apiserver").Set(1)
	m.CheckDuration.WithLabelValues("apiserver").Observe(0.01)
	m.VirtualServerUp.WithLabelValues("apiserver").Set(1)
	m.VirtualServerHealthy.WithLabelValues("apiserver").Set(3)
	m.RealServerUp.WithLabelValues("apiserver", "192.0.2.11", "6443").Set(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

// TestAlertConventions: every alert waits (for:), has a severity, a
// summary and a description, and a runbook link to its heading in
// README.md's Monitoring section; vipd-alerts_test.yaml has a case where it
// fires and one where it does not.
func TestAlertConventions(t *testing.T) {
	anchors := monitoringAnchors(t)
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, rulesTestFile), &tests); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	if !slices.Equal(tests.RuleFiles, []string{rulesFile}) {
		t.Errorf("%s: rule_files %v, want [%s]", rulesTestFile, tests.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range readRules(t) {
		if r.Alert == "" {
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: alert %s defined twice", rulesFile, r.Alert)
		}
		seen[r.Alert] = true
		if r.For == nil {
			t.Errorf("%s: no for:", r.Alert)
		}
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := runbook + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		} else if !anchors[strings.ToLower(r.Alert)] {
			t.Errorf("%s: README.md's Monitoring section has no heading %s", r.Alert, r.Alert)
		}
		if !fires[r.Alert] {
			t.Errorf("%s: %s has no case where it fires", r.Alert, rulesTestFile)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: %s has no case where it does not fire", r.Alert, rulesTestFile)
		}
	}
	for name := range fires {
		if !seen[name] {
			t.Errorf("%s tests alert %s, which %s does not define", rulesTestFile, name, rulesFile)
		}
	}
}

// monitoringAnchors returns the GitHub anchors of the headings in README.md's
// "## Monitoring" section.
func monitoringAnchors(t *testing.T) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(readFile(t, "../../README.md")), "\n") {
		if strings.HasPrefix(line, "## ") {
			in = line == "## Monitoring"
		}
		if !in || !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[testenv.Anchor(line)] = true
	}
	if len(anchors) == 0 {
		t.Fatal("README.md has no ## Monitoring section")
	}
	return anchors
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
