package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const unitPath = "systemd/vipd.service"

// parseUnit reads a systemd unit into section → key → values, in order.
// It knows comments, sections and KEY=VALUE lines; vipd.service uses no
// line continuations.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string]map[string][]string{}
	var sec string
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUnitSettings pins what the unit promises: how vipd is run, reloaded
// and cleaned up after, and its sandbox.
func TestUnitSettings(t *testing.T) {
	u := parseUnit(t, filepath.Join(moduleRoot(t), unitPath))
	svc := u["Service"]
	want := map[string]string{
		"Type":                    "notify",
		"ExecStart":               "/usr/sbin/vipd run --config /etc/vipd/vipd.yaml",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"ExecStopPost":            "/usr/sbin/vipd cleanup --config /etc/vipd/vipd.yaml",
		"Restart":                 "always",
		"User":                    "vipd",
		"Group":                   "vipd",
		"AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_RAW",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"RuntimeDirectory":        "vipd",
		"RuntimeDirectoryMode":    "0750",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectKernelTunables":   "yes",
		"ReadWritePaths":          "/proc/sys/net/ipv4/conf",
		"ProtectControlGroups":    "yes",
		"ProtectClock":            "yes",
		"RestrictNamespaces":      "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"RestrictRealtime":        "yes",
		"RestrictSUIDSGID":        "yes",
		"SystemCallArchitectures": "native",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX",
	}
	for k, v := range want {
		got := svc[k]
		if len(got) != 1 || got[0] != v {
			t.Errorf("[Service] %s = %q, want exactly %q", k, got, v)
		}
	}
	for _, k := range []string{"RestartSec", "WatchdogSec", "TimeoutStopSec"} {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s is not set once: %q", k, svc[k])
		}
	}
	// Settings that would break vipd: it must reach the host's network and
	// its /proc/sys/net/ipv4/conf.
	for _, k := range []string{"PrivateNetwork", "PrivateUsers", "ProcSubset", "DynamicUser"} {
		if v, ok := svc[k]; ok && !slices.Equal(v, []string{"no"}) {
			t.Errorf("[Service] %s = %q would cut vipd off from the host's network or /proc/sys", k, v)
		}
	}
	if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("[Install] WantedBy = %q, want multi-user.target", got)
	}
}

// installUnit builds vipd and writes the unit into a temporary directory
// with its vipd paths pointing at the build, so that systemd-analyze can
// check the commands. It returns the unit's path.
func installUnit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := buildVipd(t, dir)
	unit := strings.ReplaceAll(readFile(t, filepath.Join(moduleRoot(t), unitPath)), "/usr/sbin/vipd", bin)
	path := filepath.Join(dir, "vipd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnitVerify runs systemd-analyze verify. It works without systemd as
// PID 1. Warnings (an unknown key, a bad value) leave its exit status 0, so
// any line about the unit is a failure too.
func TestUnitVerify(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	path := installUnit(t)
	cmd := exec.Command(sa, "verify", path)
	cmd.Dir = filepath.Dir(path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "vipd") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// TestUnitExposure keeps the sandbox from eroding: systemd-analyze 252
// rates the unit 1.8 ("OK"); above 2.5 is a failure.
func TestUnitExposure(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	path := installUnit(t)
	cmd := exec.Command(sa, "security", "--offline=yes", "--threshold=25", "--no-pager", path)
	cmd.Dir = filepath.Dir(path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v (exposure above 2.5?)\n%s", err, out)
	}
	if i := strings.LastIndex(string(out), "Overall"); i >= 0 {
		t.Logf("%s", out[i:])
	}
}
