package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

const keepalivedConf = `global_defs {
    router_id lb1
}
vrrp_script chk_haproxy {
    script "killall -0 haproxy"
    interval 2
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.0.2.50/24
    }
    track_script {
        chk_haproxy
    }
}
`

func writeConf(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCmdConvertKeepalivedStdout(t *testing.T) {
	path := writeConf(t, "keepalived.conf", keepalivedConf)
	var stdout, stderr bytes.Buffer
	if code := cmdConvertKeepalived([]string{path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, &stderr)
	}
	cfg, err := config.Parse("out.yaml", stdout.Bytes())
	if err != nil {
		t.Fatalf("output does not validate: %v\n%s", err, &stdout)
	}
	if in := cfg.Instances[0]; in.Name != "VI_1" || in.VRID != 51 || in.Version != 2 || len(in.TrackChecks) != 1 {
		t.Errorf("instance %+v", in)
	}
	want := path + ":2: global_defs: router_id lb1: not converted:"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, &stderr)
	}
	if !strings.Contains(stderr.String(), "wrote 1 instance and 1 check to standard output, with 1 warning") {
		t.Errorf("stderr lacks the summary:\n%s", &stderr)
	}
}

func TestCmdConvertKeepalivedOutputFile(t *testing.T) {
	path := writeConf(t, "keepalived.conf", keepalivedConf)
	out := filepath.Join(t.TempDir(), "vipd.yaml")
	var stdout, stderr bytes.Buffer
	// Flags after the file name work too.
	if code := cmdConvertKeepalived([]string{path, "--output", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, &stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty:\n%s", &stdout)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (it may hold a password)", st.Mode().Perm())
	}
	if _, err := config.Load(out); err != nil {
		t.Errorf("written file does not validate: %v", err)
	}
}

func TestCmdConvertKeepalivedErrors(t *testing.T) {
	bad := writeConf(t, "bad.conf", "vrrp_instance VI_1 {\n    interface eth0\n")
	empty := writeConf(t, "empty.conf", "global_defs {\n}\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no file", nil, 2, "give exactly one keepalived configuration file, got 0"},
		{"two files", []string{bad, empty}, 2, "got 2"},
		{"bad flag", []string{"--bogus", bad}, 2, "flag provided but not defined"},
		{"unbalanced", []string{bad}, 1, bad + `:1: missing }: the block of "vrrp_instance" opened here is not closed`},
		{"missing", []string{filepath.Join(t.TempDir(), "nope.conf")}, 1, "no such file or directory"},
		{"nothing to convert", []string{empty}, 1, "no vrrp_instance could be converted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdConvertKeepalived(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, &stderr, tc.code, tc.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty:\n%s", &stdout)
			}
		})
	}
}

func TestCmdConvertKeepalivedHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cmdConvertKeepalived([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "Usage: vipd convert-keepalived") || !strings.Contains(stderr.String(), "-config-id") {
		t.Errorf("help:\n%s", &stderr)
	}
}
