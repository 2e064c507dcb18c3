package packaging

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// root is the module's root directory.
var root = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod above the working directory")
})

func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := root()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// need returns the path of tool. Without it the test skips, unless CI is
// set: CI must install it (see .ci/run).
func need(t testing.TB, tool, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (Debian package %s); CI must install it", tool, debPackage)
	}
	t.Skipf("%s is missing (Debian package %s); set CI=true to make this a failure", tool, debPackage)
	return ""
}

// needRoot skips t when not root, unless CI is set.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("needs root; CI=%q, euid=%d", os.Getenv("CI"), os.Geteuid())
	}
	t.Skip("needs root (run as root, or set CI=true to make this a failure)")
}

// makeCmd runs make in the module root with args. A make above us (make
// test) must not hand its jobserver and flags down.
func makeCmd(t testing.TB, args ...string) string {
	t.Helper()
	need(t, "make", "make")
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = moduleRoot(t)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR", "PREFIX", "BIN", "DIST", "VERSION":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildVipd builds ./cmd/vipd into dir, static and with the build tags
// of a release (the Makefile's TAGS), and returns the binary's path.
func buildVipd(t testing.TB, dir string) string {
	t.Helper()
	return buildVipdTags(t, dir, "nethttpomithttp2")
}

// buildVipdTags is buildVipd with the build tags tags (comma-separated).
func buildVipdTags(t testing.TB, dir, tags string) string {
	t.Helper()
	bin := filepath.Join(dir, "vipd")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "./cmd/vipd")
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/vipd: %v\n%s", err, out)
	}
	return bin
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
