package helm

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"

	"github.com/vipd/vipd/internal/config"
)

const (
	chartDir = "vipd"
	// The release configs/k8s stands for: helm install vipd -n kube-system.
	releaseName = "vipd"
	namespace   = "kube-system"
)

var refDir = filepath.Join("..", "..", "configs", "k8s")

// object is one Kubernetes object as decoded from YAML.
type object = map[string]any

// values parses values as helm install --values would take them.
func values(t *testing.T, s string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("values %q: %v", s, err)
	}
	return v
}

// render is helm template: the chart with vals over its defaults, rendered
// on the client only, as release vipd in kube-system.
func render(vals map[string]any) ([]object, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.DiscardHandler)
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true // what helm template sets: no release name check
	r, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, errors.New("install returned no v1 release")
	}
	return decode(rel.Manifest)
}

func mustRender(t *testing.T, vals map[string]any) []object {
	t.Helper()
	objs, err := render(vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return objs
}

// decode parses every document of a YAML stream, skipping empty ones.
func decode(s string) ([]object, error) {
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(s))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

func reference(t *testing.T, file string) []object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, file))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(string(b))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return objs
}

// dig returns the value at path in o, nil if there is none.
func dig(o any, path ...string) any {
	for _, k := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[k]
	}
	return o
}

func kinds(objs []object) []string {
	var k []string
	for _, o := range objs {
		k = append(k, dig(o, "kind").(string))
	}
	return k
}

// find returns the one object of kind, failing the test unless there is
// exactly one.
func find(t *testing.T, objs []object, kind string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if dig(o, "kind") == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s among %q, want 1", len(found), kind, kinds(objs))
	}
	return found[0]
}

// TestLint: helm lint --strict, for each kind and with the ServiceMonitor:
// an error or a warning fails the test (informational messages, such as
// "icon is recommended", do not).
func TestLint(t *testing.T) {
	for name, vals := range map[string]string{
		"defaults":       "",
		"StaticPod":      "kind: StaticPod",
		"ServiceMonitor": "serviceMonitor: {enabled: true}\nconfig: {metrics: {listen: ':9405'}}",
	} {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			res := lint.Run([]string{chartDir}, values(t, vals))
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					t.Error(m)
				}
			}
			for _, err := range res.Errors {
				t.Error(err)
			}
		})
	}
}

// stripHelm checks and removes what the chart adds for helm and a plain
// manifest has no use for: helm's two labels on every object (the chart's
// name and version, managed-by Helm), and on the DaemonSet's pods the hash
// of the ConfigMap that makes helm upgrade roll them when the config
// changes. Everything else must be as in configs/k8s.
func stripHelm(t *testing.T, o object) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	labels, _ := dig(o, "metadata", "labels").(map[string]any)
	for k, want := range map[string]string{"helm.sh/chart": "vipd-" + ch.Metadata.Version, "app.kubernetes.io/managed-by": "Helm"} {
		if got := labels[k]; got != want {
			t.Errorf("%s: label %s is %v, want %s", dig(o, "kind"), k, got, want)
		}
		delete(labels, k)
	}
	if dig(o, "kind") != "DaemonSet" {
		return
	}
	annotations, _ := dig(o, "spec", "template", "metadata", "annotations").(map[string]any)
	sum, _ := annotations["checksum/config"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Errorf("pod annotation checksum/config is %q, want a SHA-256", sum)
	}
	delete(annotations, "checksum/config")
	if len(annotations) == 0 {
		delete(dig(o, "spec", "template", "metadata").(map[string]any), "annotations")
	}
}

// parseConfig replaces the ConfigMap's vipd.yaml by its YAML tree: the
// chart writes the config with toYaml, so keys are sorted and flow lists
// become block lists, but the tree is the reference's.
func parseConfig(t *testing.T, cm object) {
	t.Helper()
	data, _ := dig(cm, "data").(map[string]any)
	s, ok := data["vipd.yaml"].(string)
	if !ok {
		t.Fatalf("ConfigMap %v has no vipd.yaml", dig(cm, "metadata", "name"))
	}
	var tree any
	if err := yaml.Unmarshal([]byte(s), &tree); err != nil {
		t.Fatalf("ConfigMap's vipd.yaml: %v\n%s", err, s)
	}
	data["vipd.yaml"] = tree
}

// TestDaemonSetIsReference: with the default values the chart renders
// configs/k8s/vipd-daemonset.yaml, object by object and field by field,
// but for what stripHelm removes. Comments aside, the priority table and
// the init container's script are compared as text.
func TestDaemonSetIsReference(t *testing.T) {
	want := reference(t, "vipd-daemonset.yaml")
	got := mustRender(t, nil)
	if !slices.Equal(kinds(got), kinds(want)) {
		t.Fatalf("rendered %q, want %q", kinds(got), kinds(want))
	}
	for i := range got {
		stripHelm(t, got[i])
		if dig(got[i], "kind") == "ConfigMap" {
			parseConfig(t, got[i])
			parseConfig(t, want[i])
		}
		if d := cmp.Diff(want[i], got[i]); d != "" {
			t.Errorf("%s differs from configs/k8s/vipd-daemonset.yaml (-reference +chart):\n%s", dig(want[i], "kind"), d)
		}
	}
}

// TestStaticPodIsReference: kind StaticPod renders exactly
// configs/k8s/vipd-static-pod.yaml, and nothing else. The kubelet, not
// helm, manages it, so it has no helm labels.
func TestStaticPodIsReference(t *testing.T) {
	want := reference(t, "vipd-static-pod.yaml")
	got := mustRender(t, values(t, "kind: StaticPod"))
	if !slices.Equal(kinds(got), []string{"Pod"}) {
		t.Fatalf("rendered %q, want a Pod only", kinds(got))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the static pod differs from configs/k8s/vipd-static-pod.yaml (-reference +chart):\n%s", d)
	}
}

// TestServiceMonitor: only when enabled, a ServiceMonitor that scrapes,
// through a headless Service selecting the DaemonSet's pods, the port the
// liveness probe uses, with the labels the alerting rules expect.
func TestServiceMonitor(t *testing.T) {
	for _, k := range kinds(mustRender(t, nil)) {
		if k == "ServiceMonitor" || k == "Service" {
			t.Errorf("default values render a %s", k)
		}
	}
	objs := mustRender(t, values(t, `
serviceMonitor: {enabled: true, labels: {release: prometheus}}
metrics: {port: 9500}
config: {metrics: {listen: ":9500"}}
`))
	if want := []string{"ConfigMap", "Service", "DaemonSet", "ServiceMonitor"}; !slices.Equal(kinds(objs), want) {
		t.Fatalf("rendered %q, want %q", kinds(objs), want)
	}
	sm, svc, ds := find(t, objs, "ServiceMonitor"), find(t, objs, "Service"), find(t, objs, "DaemonSet")

	if got := dig(sm, "metadata", "labels", "release"); got != "prometheus" {
		t.Errorf("ServiceMonitor label release = %v, want serviceMonitor.labels' prometheus", got)
	}
	if got := dig(sm, "spec", "namespaceSelector", "matchNames"); !cmp.Equal(got, []any{namespace}) {
		t.Errorf("ServiceMonitor namespaceSelector.matchNames = %v, want [%s]", got, namespace)
	}
	selects := func(selector, labels any) bool {
		s, _ := selector.(map[string]any)
		l, _ := labels.(map[string]any)
		for k, v := range s {
			if l[k] != v {
				return false
			}
		}
		return len(s) > 0
	}
	if !selects(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
		t.Errorf("ServiceMonitor selector %v does not select the Service's labels %v",
			dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels"))
	}
	if !selects(dig(svc, "spec", "selector"), dig(ds, "spec", "template", "metadata", "labels")) {
		t.Errorf("Service selector %v does not select the DaemonSet's pods %v",
			dig(svc, "spec", "selector"), dig(ds, "spec", "template", "metadata", "labels"))
	}
	if got := dig(svc, "spec", "clusterIP"); got != "None" {
		t.Errorf("Service clusterIP = %v, want None: one endpoint per node", got)
	}

	endpoints, _ := dig(sm, "spec", "endpoints").([]any)
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor has %d endpoints, want 1", len(endpoints))
	}
	ep := endpoints[0]
	ports, _ := dig(svc, "spec", "ports").([]any)
	if len(ports) != 1 || dig(ports[0], "name") != dig(ep, "port") {
		t.Fatalf("Service ports %v, want one named as the endpoint's port %v", ports, dig(ep, "port"))
	}
	vipd := dig(ds, "spec", "template", "spec", "containers").([]any)[0]
	probe := dig(vipd, "livenessProbe", "httpGet", "port")
	for _, f := range []string{"port", "targetPort"} {
		if got := dig(ports[0], f); got != 9500 || got != probe {
			t.Errorf("Service %s = %v, want 9500, the probe's port (%v)", f, got, probe)
		}
	}
	if got := dig(ep, "path"); got != "/metrics" {
		t.Errorf("ServiceMonitor path = %v, want /metrics", got)
	}
	if got := dig(ep, "honorLabels"); got != true {
		t.Errorf("ServiceMonitor honorLabels = %v, want true: instance is the VRRP instance's", got)
	}
	relabel := map[string]any{}
	for _, r := range dig(ep, "relabelings").([]any) {
		relabel[dig(r, "targetLabel").(string)] = r
	}
	if got := dig(relabel["host"], "sourceLabels"); !cmp.Equal(got, []any{"__address__"}) {
		t.Errorf("host label from %v, want [__address__]", got)
	}
	if got := dig(relabel["job"], "replacement"); got != "vipd" {
		t.Errorf("job label %v, want vipd", got)
	}
}

// TestValuesRejected: combinations that cannot work fail the render, with
// a message naming the value to change.
func TestValuesRejected(t *testing.T) {
	for vals, want := range map[string]string{
		// The default listener is loopback: Prometheus could not reach it.
		"serviceMonitor: {enabled: true}":                         "config.metrics.listen",
		"serviceMonitor: {enabled: true}\nmetrics: {port: null}":  "metrics.port",
		"serviceMonitor: {enabled: true}\nkind: StaticPod":        "kind DaemonSet",
		"metrics: {port: 9500}":                                   "the liveness probe would fail",
		"kind: Deployment":                                        "kind",
		"priorities: [{node: cp-1, priority: 255}]":               "priority",
		"priorities: []":                                          "priorities",
		"image: {repository: registry.example.com/vipd, tag: ''}": "tag",
	} {
		_, err := render(values(t, vals))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %q: error %v, want one mentioning %q", vals, err, want)
		}
	}
}

// renderNode runs the DaemonSet's init container script, as the pod would,
// over the ConfigMap's files, for node; it returns the vipd.yaml written.
func renderNode(t *testing.T, objs []object, node string) (string, error) {
	t.Helper()
	inits, _ := dig(find(t, objs, "DaemonSet"), "spec", "template", "spec", "initContainers").([]any)
	if len(inits) != 1 {
		t.Fatalf("%d init containers, want 1", len(inits))
	}
	command, _ := dig(inits[0], "command").([]any)
	if len(command) != 3 || command[0] != "sh" {
		t.Fatalf("init container runs %v, want sh -ec SCRIPT", command)
	}
	// The pod's paths, moved into a temporary directory.
	dir := t.TempDir()
	script := strings.NewReplacer("/template/", dir+"/template/", "/etc/vipd/", dir+"/etc/vipd/").Replace(command[2].(string))
	for _, d := range []string{"template", "etc/vipd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range dig(find(t, objs, "ConfigMap"), "data").(map[string]any) {
		if err := os.WriteFile(filepath.Join(dir, "template", k), []byte(v.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", command[1].(string), script)
	cmd.Env = append(os.Environ(), "NODE_NAME="+node)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New(string(bytes.TrimSpace(out)))
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc/vipd/vipd.yaml"))
	return string(b), err
}

// TestConfigFromValues: a config and priority table given as values reach
// the ConfigMap as given (merged over the chart's defaults, which a null
// drops), and what the init container writes from them is, on each node, a
// config vipd's own parser accepts, with that node's priority.
func TestConfigFromValues(t *testing.T) {
	vals := values(t, `
config:
  control_socket: null
  metrics: {listen: "[::1]:9405"}
  instances:
    - name: api
      interface: bond0
      vrid: 7
      priority: ${VIPD_PRIORITY}
      advert_interval: 200ms
      vips: ["192.0.2.60/24"]
    - name: ingress
      interface: bond0
      vrid: 8
      priority: ${VIPD_PRIORITY}
      preempt: false
      vips: ["198.51.100.7/24"]
priorities:
  - {node: cp-a, priority: 200}
  - {node: "*", priority: 10}
`)
	wantTree := values(t, `
metrics: {listen: "[::1]:9405"}
instances:
  - {name: api, interface: bond0, vrid: 7, priority: "${VIPD_PRIORITY}", advert_interval: 200ms, vips: ["192.0.2.60/24"]}
  - {name: ingress, interface: bond0, vrid: 8, priority: "${VIPD_PRIORITY}", preempt: false, vips: ["198.51.100.7/24"]}
`)
	objs := mustRender(t, vals)
	cm := find(t, objs, "ConfigMap")
	if got := dig(cm, "data", "priorities"); got != "cp-a 200\n* 10\n" {
		t.Errorf("priorities = %q, want the table in order", got)
	}
	parseConfig(t, cm)
	if d := cmp.Diff(wantTree, dig(cm, "data", "vipd.yaml")); d != "" {
		t.Errorf("the ConfigMap's vipd.yaml is not the config given (-values +ConfigMap):\n%s", d)
	}

	objs = mustRender(t, vals) // parseConfig replaced the text
	for node, prio := range map[string]uint8{"cp-a": 200, "cp-b": 10} {
		text, err := renderNode(t, objs, node)
		if err != nil {
			t.Fatalf("node %s: %v", node, err)
		}
		cfg, err := config.Parse("vipd.yaml", []byte(text))
		if err != nil {
			t.Fatalf("node %s: vipd rejects the config: %v\n%s", node, err, text)
		}
		if len(cfg.Instances) != 2 || cfg.Instances[0].Name != "api" || cfg.Instances[1].Name != "ingress" {
			t.Fatalf("node %s: instances %+v, want api and ingress", node, cfg.Instances)
		}
		for _, in := range cfg.Instances {
			if in.Priority != prio || in.Interface != "bond0" {
				t.Errorf("node %s: instance %s: priority %d on %s, want %d on bond0", node, in.Name, in.Priority, in.Interface, prio)
			}
		}
		if cfg.Metrics.Listen != "[::1]:9405" {
			t.Errorf("node %s: metrics.listen %q", node, cfg.Metrics.Listen)
		}
	}
}

// TestDefaultConfigParses: the default values give every node in the
// table a config vipd accepts, and a node not in it fails, named.
func TestDefaultConfigParses(t *testing.T) {
	objs := mustRender(t, nil)
	for node, prio := range map[string]uint8{"cp-1": 150, "cp-2": 100, "cp-3": 50} {
		text, err := renderNode(t, objs, node)
		if err != nil {
			t.Fatalf("node %s: %v", node, err)
		}
		cfg, err := config.Parse("vipd.yaml", []byte(text))
		if err != nil {
			t.Fatalf("node %s: %v\n%s", node, err, text)
		}
		if got := cfg.Instances[0].Priority; got != prio {
			t.Errorf("node %s: priority %d, want %d", node, got, prio)
		}
	}
	if _, err := renderNode(t, objs, "cp-9"); err == nil || !strings.Contains(err.Error(), "cp-9") ||
		!strings.Contains(err.Error(), "ConfigMap kube-system/vipd") {
		t.Errorf("node without a priority: %v, want a failure naming the node and the ConfigMap", err)
	}
}

// TestConfigChangeRollsPods: the pods' config checksum follows the
// ConfigMap, so helm upgrade restarts them when, and only when, the config
// or the priority table changes.
func TestConfigChangeRollsPods(t *testing.T) {
	sum := func(vals string) any {
		return dig(find(t, mustRender(t, values(t, vals)), "DaemonSet"), "spec", "template", "metadata", "annotations", "checksum/config")
	}
	base := sum("")
	for vals, changes := range map[string]bool{
		"priorities: [{node: '*', priority: 100}]":                true,
		"config: {control_socket: /run/vipd/x.sock}":              true,
		"image: {repository: registry.example.com/vipd, tag: v2}": false,
		"podAnnotations: {a: b}":                                  false,
	} {
		if got := sum(vals) != base; got != changes {
			t.Errorf("values %q: checksum changed %v, want %v", vals, got, changes)
		}
	}
}
