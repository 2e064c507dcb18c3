package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// vipdBin is the vipd binary TestMain builds for the whole package, or the
// one VIPD_E2E_BINARY names.
var vipdBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vipd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// VIPD_E2E_BINARY tests a binary built elsewhere, e.g. a release.
	if vipdBin = os.Getenv("VIPD_E2E_BINARY"); vipdBin != "" {
		return m.Run()
	}
	if vipdBin, err = buildVipd(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// buildVipd builds ./cmd/vipd of the module this test lives in, the way a
// release is built (static, no cgo, the Makefile's TAGS).
func buildVipd(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vipd")
	cmd := exec.Command(goBin, "build", "-tags", "nethttpomithttp2", "-o", bin, "./cmd/vipd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/vipd: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory (the package's directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
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
}
