package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
)

type fakeControlBackend struct {
	insts     []control.Instance
	reloadErr error
}

func (f *fakeControlBackend) Status() []control.Instance { return f.insts }
func (f *fakeControlBackend) Reload() error              { return f.reloadErr }

// startControl serves b on a socket in a new directory until the test ends
// and returns the socket's path.
func startControlServer(t *testing.T, b control.Backend) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vipd-cmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "vipd.sock")
	s, err := control.Listen(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func statusInstances() []control.Instance {
	return []control.Instance{{
		Name: "api", Interface: "eth0", VRID: 51, Family: "ipv4", State: "backup",
		Priority: 90, ConfiguredPriority: 150, Master: "192.0.2.11",
		Since:         time.Now().Add(-3*time.Minute - 12*time.Second),
		FailingChecks: []string{"nginx"},
		VIPs:          []string{"192.0.2.50/24"},
	}}
}

func runControlCmd(f func([]string, io.Writer, io.Writer) int, args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCmdStatusTable(t *testing.T) {
	path := startControlServer(t, &fakeControlBackend{insts: statusInstances()})
	code, out, errOut := runControlCmd(cmdStatus, "--socket", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Fatalf("output:\n%s", out)
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "api eth0 51 ipv4 backup 90/150 192.0.2.11 3m12s nginx" &&
		strings.Join(f, " ") != "api eth0 51 ipv4 backup 90/150 192.0.2.11 3m13s nginx" {
		t.Errorf("row = %q", lines[1])
	}
}

func TestCmdStatusJSON(t *testing.T) {
	path := startControlServer(t, &fakeControlBackend{insts: statusInstances()})
	code, out, errOut := runControlCmd(cmdStatus, "--socket", path, "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got []control.Instance
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if len(got) != 1 || got[0].Name != "api" || got[0].Priority != 90 || !strings.Contains(out, "\n  {\n    \"name\": \"api\",") {
		t.Errorf("output:\n%s", out)
	}

	empty := startControlServer(t, &fakeControlBackend{})
	if code, out, _ := runControlCmd(cmdStatus, "--json", "--socket", empty); code != 0 || out != "[]\n" {
		t.Errorf("no instances: exit %d, output %q; want []", code, out)
	}
}

func TestCmdStatusSocketFromConfig(t *testing.T) {
	path := startControlServer(t, &fakeControlBackend{insts: statusInstances()})
	cfg := filepath.Join(t.TempDir(), "vipd.yaml")
	yaml := "control_socket: " + path + "\n" +
		"instances:\n  - name: api\n    interface: eth0\n    vrid: 51\n    vips: [192.0.2.50/24]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runControlCmd(cmdStatus, "--config", cfg); code != 0 || !strings.Contains(out, "api") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runControlCmd(cmdReload, "--config", cfg); code != 0 || out != "reloaded\n" {
		t.Errorf("reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("control_socket: relative.sock\n"), 0o644)
	code, _, errOut := runControlCmd(cmdStatus, "--config", bad)
	if code != 1 || !strings.Contains(errOut, bad+":") || !strings.Contains(errOut, "pass --socket") {
		t.Errorf("invalid config: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestCmdReload(t *testing.T) {
	path := startControlServer(t, &fakeControlBackend{})
	if code, out, errOut := runControlCmd(cmdReload, "--socket", path); code != 0 || out != "reloaded\n" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestCmdReloadRefused(t *testing.T) {
	reasons := "/etc/vipd/vipd.yaml:7: instances[0].vrid: 300 is out of range 1..255\n" +
		"/etc/vipd/vipd.yaml:12: instances[1].name: \"api\" is already used by instances[0]"
	path := startControlServer(t, &fakeControlBackend{reloadErr: errors.New(reasons)})
	code, out, errOut := runControlCmd(cmdReload, "--socket", path)
	want := reasons + "\nvipd: reload refused; the daemon keeps running its previous configuration\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}
}

func TestCmdStatusReloadNoDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	for name, f := range map[string]func([]string, io.Writer, io.Writer) int{"status": cmdStatus, "reload": cmdReload} {
		code, out, errOut := runControlCmd(f, "--socket", path)
		want := "vipd: no vipd answering on " + path + " (is it running? is --socket right?): connect: no such file or directory\n"
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", name, code, out, errOut, want)
		}
	}
}

func TestCmdStatusReloadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--socket", "/a", "--config", "/b"},
		{"extra"},
		{"--nope"},
	} {
		for name, f := range map[string]func([]string, io.Writer, io.Writer) int{"status": cmdStatus, "reload": cmdReload} {
			if code, _, errOut := runControlCmd(f, args...); code != 2 || errOut == "" {
				t.Errorf("%s %q: exit %d, stderr %q; want 2 and a message", name, args, code, errOut)
			}
		}
	}
	if code, _, errOut := runControlCmd(cmdStatus, "-h"); code != 0 || !strings.Contains(errOut, "-socket") {
		t.Errorf("-h: exit %d, stderr %q", code, errOut)
	}
}
