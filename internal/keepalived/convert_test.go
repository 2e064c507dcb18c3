package keepalived

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vipd/vipd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden converts every testdata/*.conf. A file that converts has
// NAME.yaml (which must pass config.Parse) and NAME.warnings; one that
// does not has NAME.err, and NAME.warnings when warnings came first.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".conf")
		t.Run(name, func(t *testing.T) {
			base := strings.TrimSuffix(file, ".conf")
			var out, warns, errText string
			cfg, err := Parse(file, Options{})
			if err == nil {
				var res *Result
				res, err = Convert(cfg)
				out = string(res.YAML)
				warns = joinWarnings(res.Warnings)
			}
			if err != nil {
				errText = err.Error() + "\n"
				if errors.Is(err, ErrInvalidOutput) {
					t.Fatalf("converter bug: %v\n%s", err, out)
				}
			}
			golden(t, base+".yaml", out)
			golden(t, base+".warnings", warns)
			golden(t, base+".err", errText)
			if out == "" {
				return
			}
			if _, err := config.Parse(base+".yaml", []byte(out)); err != nil {
				t.Errorf("vipd rejects the output:\n%v\n%s", err, out)
			}
		})
	}
}

func joinWarnings(ws []Finding) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// golden compares got with the file at path; an empty got means the file
// must not exist. With -update it writes (or removes) the file instead.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if got != "" {
			t.Errorf("%s does not exist; run go test -update. Got:\n%s", path, got)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// convertFile converts testdata/name and parses the result as vipd's
// config.
func convertFile(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := Parse(filepath.Join("testdata", name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.yaml", res.YAML)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConvertValues reads a conversion back through config.Parse and
// checks the values that matter for interoperation.
func TestConvertValues(t *testing.T) {
	c := convertFile(t, "pair-backup.conf")
	in := c.Instances[0]
	if in.Name != "VI_1" || in.VRID != 51 || in.Priority != 100 || in.Preempt || in.Version != 2 || in.Interface != "eth0" {
		t.Errorf("instance %+v", in)
	}
	want := []config.TrackCheck{{Check: "chk_haproxy"}, {Check: "chk_apiserver", Weight: -40}}
	if diff := cmp.Diff(want, in.TrackChecks); diff != "" {
		t.Errorf("track_checks (-want +got):\n%s", diff)
	}
	if len(c.Checks) != 2 {
		t.Fatalf("checks %+v", c.Checks)
	}
	if got := c.Checks[0].Exec.Command; !cmp.Equal(got, []string{"killall", "-0", "haproxy"}) {
		t.Errorf("chk_haproxy command %q", got)
	}
	if ch := c.Checks[1]; ch.Fall != 1 || ch.Rise != 1 || ch.Interval.Seconds() != 3 {
		t.Errorf("chk_apiserver %+v: want keepalived's fall and rise 1, interval 3s", ch)
	}
}

func TestMixedFamiliesKeepFirst(t *testing.T) {
	const conf = `vrrp_instance X {
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {
        2001:db8::7/64
        192.0.2.7/24
    }
}
`
	cfg, err := ParseBytes("k.conf", []byte(conf), Options{FS: memFS{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.yaml", res.YAML)
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Instances[0]; in.Family != "ipv6" || len(in.VIPs) != 1 || in.Version != 3 {
		t.Errorf("instance %+v: want only the IPv6 VIP, version 3", in)
	}
	if w := joinWarnings(res.Warnings); !strings.Contains(w, "k.conf:6: vrrp_instance X: virtual_ipaddress 192.0.2.7/24: not converted") {
		t.Errorf("warnings:\n%s", w)
	}
}

// TestConvertVirtualServer reads a converted virtual_server back through
// config.Parse: the values keepalived's LVS meant.
func TestConvertVirtualServer(t *testing.T) {
	c := convertFile(t, "lvs-kubeadm.conf")
	if len(c.VirtualServers) != 1 {
		t.Fatalf("virtual servers %+v", c.VirtualServers)
	}
	v := c.VirtualServers[0]
	if v.Address.String() != "192.0.2.50" || v.Port != 8443 || v.Protocol != "tcp" || v.Mode != "nat" ||
		v.Scheduler != "round_robin" || v.Persistence.Seconds() != 50 || v.Quorum != 1 || len(v.RealServers) != 3 {
		t.Errorf("virtual server %+v", v)
	}
	ch := v.Check
	if ch.HTTP == nil || ch.HTTP.Scheme != "https" || ch.HTTP.Path != "/readyz" || !ch.HTTP.InsecureSkipVerify ||
		!cmp.Equal(ch.HTTP.ExpectStatus, []int{200}) || ch.Interval.Seconds() != 3 || ch.Timeout.Seconds() != 2 || ch.Fall != 3 || ch.Rise != 1 {
		t.Errorf("check %+v %+v: want https /readyz, 3s, 2s, fall 3 (nb_get_retry 2), rise 1", ch, ch.HTTP)
	}
	if r := v.RealServers[1]; r.Address.String() != "192.0.2.12" || r.Port != 6443 || r.Weight != 2 {
		t.Errorf("real server %+v", r)
	}
}
