package packaging

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// debArch is the Debian architecture nfpm gives a Go one.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}

// buildDeb runs make deb with VERSION set to describe (what git describe
// would print) and returns the package's path.
func buildDeb(t *testing.T, describe string) string {
	t.Helper()
	arch, ok := debArch[runtime.GOARCH]
	if !ok {
		t.Skipf("no Debian architecture known for GOARCH=%s", runtime.GOARCH)
	}
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	makeCmd(t, "deb", "BIN="+filepath.Join(tmp, "bin"), "DIST="+dist, "VERSION="+describe)
	want := filepath.Join(dist, fmt.Sprintf("vipd_%s_%s.deb", debVersion(t, describe), arch))
	got, _ := filepath.Glob(filepath.Join(dist, "*"))
	if !slices.Equal(got, []string{want}) {
		t.Fatalf("make deb made %q, want %q", got, want)
	}
	return want
}

func debVersion(t *testing.T, describe string) string {
	t.Helper()
	out, err := exec.Command("sh", filepath.Join(moduleRoot(t), "packaging/debversion"), describe).CombinedOutput()
	if err != nil {
		t.Fatalf("packaging/debversion %s: %v\n%s", describe, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDebVersion(t *testing.T) {
	// In the order the versions must sort.
	for _, tt := range []struct{ describe, want string }{
		{"8c40a6e", "0.0.0+g8c40a6e"}, // no tag yet
		{"8c40a6e-dirty", "0.0.0+g8c40a6e.dirty"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-rc.1-2-gdeadbee", "1.2.3~rc.1+2.gdeadbee"},
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"v1.2.3-12-g0123456", "1.2.3+12.g0123456"},
		{"v1.10.0", "1.10.0"},
	} {
		if got := debVersion(t, tt.describe); got != tt.want {
			t.Errorf("debversion %s = %s, want %s", tt.describe, got, tt.want)
		}
	}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		return
	}
	order := []string{"0.0.0+g8c40a6e", "1.2.3~rc.1", "1.2.3~rc.1+2.gdeadbee", "1.2.3", "1.2.3+4.gabc1234", "1.2.3+4.gabc1234.dirty", "1.2.3+12.g0123456", "1.10.0"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command(dpkg, "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg does not sort %s before %s", order[i-1], order[i])
		}
	}
}

// modeString is ls -l's notation, as dpkg-deb -c prints it.
func modeString(path string, perm fs.FileMode, files map[string]fs.FileMode) string {
	isDir := false
	for p := range files {
		if strings.HasPrefix(p, path+"/") {
			isDir = true
			break
		}
	}
	m := perm
	if isDir {
		m |= fs.ModeDir
	}
	s := m.String()
	if isDir {
		s = "d" + s[1:]
	}
	return s
}

func TestMakeDeb(t *testing.T) {
	dpkgDeb := need(t, "dpkg-deb", "dpkg")
	deb := buildDeb(t, "v1.2.3-4-gabc1234")

	// Contents: what make install puts in a DESTDIR, owned by root.
	out, err := exec.Command(dpkgDeb, "-c", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, out)
	}
	got := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(string(out)))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: odd line %q", s.Text())
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "./"), "/")
		got[p] = f[0] + " " + f[1]
	}
	tree := expectedTree(t, "/usr")
	want := map[string]string{}
	for p, perm := range tree {
		want[p] = modeString(p, perm, tree) + " root/root"
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dpkg-deb -c %s (-want +got):\n%s", filepath.Base(deb), diff)
	}

	// Control fields.
	fields := map[string]string{
		"Package":      "vipd",
		"Version":      "1.2.3+4.gabc1234",
		"Architecture": debArch[runtime.GOARCH],
		"Section":      "net",
		"Priority":     "optional",
		"Depends":      "passwd",
	}
	for k, v := range fields {
		out, err := exec.Command(dpkgDeb, "-f", deb, k).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v\n%s", k, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != v {
			t.Errorf("control field %s = %q, want %q", k, got, v)
		}
	}

	// The control archive: the conffile and the maintainer scripts, as
	// they are in packaging/, executable.
	ctl := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "-e", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	if got := readFile(t, filepath.Join(ctl, "conffiles")); got != "/etc/vipd/vipd.yaml\n" {
		t.Errorf("conffiles = %q, want only /etc/vipd/vipd.yaml", got)
	}
	ents, err := os.ReadDir(ctl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"conffiles", "control", "md5sums", "postinst", "postrm", "prerm"}; !slices.Equal(names, want) {
		t.Errorf("control archive holds %q, want %q", names, want)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctl, script)
		if readFile(t, p) != readFile(t, filepath.Join(moduleRoot(t), "packaging", script)) {
			t.Errorf("%s in the package differs from packaging/%s", script, script)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755 (%v)", script, fi.Mode(), err)
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", script, err, out)
		}
	}
}
