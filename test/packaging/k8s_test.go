package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vipd/vipd/internal/config"
)

// The parts of the Kubernetes objects the checks below look at.
type (
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec struct {
			podSpec  `yaml:",inline"`
			Template struct {
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
		Data map[string]string `yaml:"data"`
	}
	podSpec struct {
		HostNetwork                  bool         `yaml:"hostNetwork"`
		PriorityClassName            string       `yaml:"priorityClassName"`
		AutomountServiceAccountToken *bool        `yaml:"automountServiceAccountToken"`
		ServiceAccountName           string       `yaml:"serviceAccountName"`
		InitContainers               []container  `yaml:"initContainers"`
		Containers                   []container  `yaml:"containers"`
		Tolerations                  []toleration `yaml:"tolerations"`
		Affinity                     struct {
			NodeAffinity struct {
				Required struct {
					Terms []struct {
						MatchExpressions []struct {
							Key      string `yaml:"key"`
							Operator string `yaml:"operator"`
						} `yaml:"matchExpressions"`
					} `yaml:"nodeSelectorTerms"`
				} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
			} `yaml:"nodeAffinity"`
		} `yaml:"affinity"`
		NodeSelector map[string]string `yaml:"nodeSelector"`
		Volumes      []struct {
			Name     string `yaml:"name"`
			HostPath *struct {
				Path string `yaml:"path"`
			} `yaml:"hostPath"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	}
	container struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		SecurityContext struct {
			Privileged               *bool `yaml:"privileged"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	toleration struct {
		Key      string `yaml:"key"`
		Operator string `yaml:"operator"`
		Effect   string `yaml:"effect"`
	}
)

// manifests decodes every document of every file in configs/k8s into the
// subset above, by file name. A syntax error, or a document without kind,
// apiVersion or name, fails the test.
func manifests(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot(t), "configs/k8s/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in configs/k8s: %v", err)
	}
	all := map[string][]object{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, f))))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without kind, apiVersion or metadata.name", f)
			}
			all[filepath.Base(f)] = append(all[filepath.Base(f)], o)
		}
	}
	return all
}

func kinds(objs []object) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.Kind)
	}
	return k
}

func TestManifests(t *testing.T) {
	all := manifests(t)
	for file, want := range map[string][]string{
		"vipd-static-pod.yaml": {"Pod"},
		"vipd-daemonset.yaml":  {"ConfigMap", "DaemonSet"},
	} {
		if got := kinds(all[file]); !slices.Equal(got, want) {
			t.Errorf("%s: kinds %q, want %q", file, got, want)
		}
	}
	for file, objs := range all {
		for _, o := range objs {
			var spec podSpec
			switch o.Kind {
			case "Pod":
				spec = o.Spec.podSpec
			case "DaemonSet":
				spec = o.Spec.Template.Spec
			default:
				continue
			}
			t.Run(file+"/"+o.Kind, func(t *testing.T) { checkPodSpec(t, spec) })
		}
	}
}

// checkPodSpec: host network, critical priority, no API credentials, and a
// vipd container with NET_ADMIN and NET_RAW only.
func checkPodSpec(t *testing.T, s podSpec) {
	if !s.HostNetwork {
		t.Error("hostNetwork is not true: VRRP must run on the host's interfaces")
	}
	if s.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q, want system-node-critical", s.PriorityClassName)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false: vipd needs no API credentials")
	}
	if s.ServiceAccountName != "" {
		t.Errorf("serviceAccountName = %q; vipd needs none", s.ServiceAccountName)
	}
	var vipd *container
	for i, c := range s.Containers {
		if c.Name == "vipd" {
			vipd = &s.Containers[i]
		}
	}
	if vipd == nil || len(s.Containers) != 1 {
		t.Fatalf("want exactly one container, named vipd; have %d", len(s.Containers))
	}
	if len(vipd.Args) < 1 || vipd.Args[0] != "run" || !slices.Contains(vipd.Args, "/etc/vipd/vipd.yaml") {
		t.Errorf("vipd args = %q, want run --config /etc/vipd/vipd.yaml", vipd.Args)
	}
	for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
		sc := c.SecurityContext
		add := slices.Clone(sc.Capabilities.Add)
		slices.Sort(add)
		wantAdd := []string(nil)
		if c.Name == "vipd" {
			wantAdd = []string{"NET_ADMIN", "NET_RAW"}
		}
		if !slices.Equal(add, wantAdd) {
			t.Errorf("container %s adds capabilities %q, want %q", c.Name, add, wantAdd)
		}
		if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("container %s drops %q, want [ALL]", c.Name, sc.Capabilities.Drop)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if !sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
	}
	mounts := map[string]string{}
	for _, m := range vipd.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, p := range []string{"/etc/vipd", "/run/vipd"} {
		if mounts[p] == "" {
			t.Errorf("vipd container mounts nothing at %s", p)
		}
	}
}

// TestStaticPodConfigFromHost: the static pod reads /etc/vipd from the host.
func TestStaticPodConfigFromHost(t *testing.T) {
	pod := manifests(t)["vipd-static-pod.yaml"][0]
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/etc/vipd" {
			return
		}
	}
	t.Error("no hostPath volume for /etc/vipd")
}

// TestDaemonSetControlPlane: the DaemonSet lands on control-plane nodes
// only, and tolerates their taints.
func TestDaemonSetControlPlane(t *testing.T) {
	var ds object
	for _, o := range manifests(t)["vipd-daemonset.yaml"] {
		if o.Kind == "DaemonSet" {
			ds = o
		}
	}
	s := ds.Spec.Template.Spec
	selects := s.NodeSelector["node-role.kubernetes.io/control-plane"] != ""
	for _, term := range s.Affinity.NodeAffinity.Required.Terms {
		for _, e := range term.MatchExpressions {
			selects = selects || e.Key == "node-role.kubernetes.io/control-plane" && e.Operator == "Exists"
		}
	}
	if !selects {
		t.Error("the DaemonSet does not select node-role.kubernetes.io/control-plane nodes")
	}
	tolerates := false
	for _, tol := range s.Tolerations {
		tolerates = tolerates || tol.Key == "node-role.kubernetes.io/control-plane" && tol.Operator == "Exists"
	}
	if !tolerates {
		t.Error("the DaemonSet does not tolerate node-role.kubernetes.io/control-plane")
	}
}

// TestDaemonSetRendersConfig runs the DaemonSet's init container script, as
// the pod would, over the ConfigMap, for each node it names and one it does
// not, and validates each vipd.yaml it writes with vipd's own config
// package.
func TestDaemonSetRendersConfig(t *testing.T) {
	var cm, ds object
	for _, o := range manifests(t)["vipd-daemonset.yaml"] {
		switch o.Kind {
		case "ConfigMap":
			cm = o
		case "DaemonSet":
			ds = o
		}
	}
	inits := ds.Spec.Template.Spec.InitContainers
	if len(inits) != 1 || len(inits[0].Command) != 3 || inits[0].Command[0] != "sh" {
		t.Fatalf("want one init container running sh -ec SCRIPT, have %+v", inits)
	}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "template" && (v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name) {
			t.Errorf("volume template is not ConfigMap %s", cm.Metadata.Name)
		}
	}
	// The pod's paths, moved into a temporary directory.
	dir := t.TempDir()
	script := strings.NewReplacer("/template/", dir+"/template/", "/etc/vipd/", dir+"/etc/vipd/").Replace(inits[0].Command[2])
	for _, d := range []string{"template", "etc/vipd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, "template", k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "etc/vipd/vipd.yaml")
	for node, prio := range map[string]uint8{"cp-1": 150, "cp-2": 100, "cp-3": 50} {
		os.Remove(out)
		cmd := exec.Command(inits[0].Command[0], inits[0].Command[1], script)
		cmd.Env = append(os.Environ(), "NODE_NAME="+node)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("render for %s: %v\n%s", node, err, b)
		}
		cfg, err := config.Load(out)
		if err != nil {
			t.Fatalf("rendered config for %s: %v\n%s", node, err, readFile(t, out))
		}
		if got := cfg.Instances[0].Priority; got != prio {
			t.Errorf("node %s: priority %d, want %d", node, got, prio)
		}
	}
	os.Remove(out)
	cmd := exec.Command(inits[0].Command[0], inits[0].Command[1], script)
	cmd.Env = append(os.Environ(), "NODE_NAME=cp-9")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "cp-9") {
		t.Errorf("render for a node without a priority: err %v, want a failure naming it:\n%s", err, b)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("render for a node without a priority wrote a config")
	}
}
