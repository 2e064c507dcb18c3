package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The CLI tests need no namespaces, so they run without root too.

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := `control_socket: /run/vipd/e2e.sock
instances:
  - name: api
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    vips: ["192.0.2.50/24"]
`
	for _, tt := range []struct {
		name, config string
		line         int    // the line of the error
		field        string // in the error's field path
	}{
		{"ok", good, 0, ""},
		{"out of range", strings.Replace(good, "priority: 150", "priority: 300", 1), 6, "priority"},
		{"unknown field", strings.Replace(good, "    vips:", "    prioirty: 5\n    vips:", 1), 8, "prioirty"},
		{"bad prefix", strings.Replace(good, "192.0.2.50/24", "192.0.2.50/33", 1), 8, "vips"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(vipdBin, "validate", "--config", file)
			out, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if tt.line == 0 {
				if err != nil || code != 0 {
					t.Fatalf("validate of a good config: %v, exit %d\n%s", err, code, out)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit code %d, want 1\n%s", code, out)
			}
			// FILE:LINE: FIELD: MESSAGE, the field path naming the field.
			re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) + `:(\d+): (\S*` + regexp.QuoteMeta(tt.field) + `\S*): \S.*$`)
			m := re.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("no %q line at %s:%d in the output:\n%s", "FILE:LINE: FIELD: MESSAGE", file, tt.line, out)
			}
			if m[1] != strconv.Itoa(tt.line) {
				t.Errorf("error at line %s, want %d:\n%s", m[1], tt.line, out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(vipdBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("vipd version: %v\n%s", err, out)
	}
	s := strings.TrimSpace(string(out))
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("vipd version printed %q, want one line", s)
	}
}

// vipd validate refuses a key others can read, and warns of a secret
// written in the config, both at FILE:LINE: FIELD.
func TestValidateAuthHMAC(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "vrrp.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(keys string) string {
		return `instances:
  - name: api
    interface: eth0
    vrid: 51
    vips: ["192.0.2.50/24"]
    auth_hmac:
      keys:
` + keys
	}
	run := func(name, config string) (string, string, int) {
		t.Helper()
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(vipdBin, "validate", "--config", file)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return file, stderr.String(), cmd.ProcessState.ExitCode()
	}

	if _, stderr, code := run("good", cfg("        - {id: 1, secret_file: "+key+"}\n")); code != 0 || stderr != "" {
		t.Errorf("a 0600 key file: exit %d, stderr %q", code, stderr)
	}
	file, stderr, code := run("inline", cfg(`        - {id: 1, secret: "hex:`+strings.Repeat("00", 32)+`"}`+"\n"))
	if want := file + ":8: instances[0].auth_hmac.keys[0].secret: warning: "; code != 0 || !strings.HasPrefix(stderr, want) {
		t.Errorf("an inline secret: exit %d, stderr %q, want it to start %q", code, stderr, want)
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	file, stderr, code = run("open", cfg("        - {id: 1, secret_file: "+key+"}\n"))
	if want := file + ":8: instances[0].auth_hmac.keys[0].secret_file: " + key + " is mode 0640"; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("a key group can read: exit %d, stderr %q, want it to start %q", code, stderr, want)
	}
}
