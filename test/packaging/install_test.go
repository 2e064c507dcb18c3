package packaging

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// docFiles are the files make install and the package put under
// /usr/share/doc/vipd, by their path in the repository (kept below it).
func docFiles(t *testing.T) []string {
	t.Helper()
	docs := []string{"README.md", "configs/vipd.yaml"}
	for _, g := range []string{"docs/*.md", "docs/guides/*.md", "configs/k8s/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(moduleRoot(t), g))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no %s", g)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(moduleRoot(t), p)
			docs = append(docs, rel)
		}
	}
	return docs
}

// expectedTree is what make install DESTDIR=... puts there: every file and
// directory with its permission bits.
func expectedTree(t *testing.T, prefix string) map[string]fs.FileMode {
	t.Helper()
	want := map[string]fs.FileMode{
		"etc": 0o755, "etc/vipd": 0o755, "etc/vipd/vipd.yaml": 0o644,
		"lib": 0o755, "lib/systemd": 0o755, "lib/systemd/system": 0o755,
		"lib/systemd/system/vipd.service": 0o644,
	}
	addDirs := func(p string) {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			want[d] = 0o755
		}
	}
	prefix = strings.TrimPrefix(prefix, "/")
	want[prefix+"/sbin/vipd"] = 0o755
	addDirs(prefix + "/sbin/vipd")
	for _, f := range docFiles(t) {
		p := prefix + "/share/doc/vipd/" + f
		want[p] = 0o644
		addDirs(p)
	}
	return want
}

// tree lists every file and directory under dir with its permission bits,
// and fails on anything that is neither.
func tree(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			t.Errorf("%s: %v is neither a file nor a directory", rel, fi.Mode())
		}
		got[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMakeInstall(t *testing.T) {
	bin := t.TempDir()
	dest := t.TempDir()
	makeCmd(t, "install", "DESTDIR="+dest, "BIN="+bin)

	if diff := cmp.Diff(expectedTree(t, "/usr"), tree(t, dest)); diff != "" {
		t.Errorf("make install DESTDIR=%s: files (-want +got):\n%s", dest, diff)
	}
	root := moduleRoot(t)
	for dst, src := range map[string]string{
		"lib/systemd/system/vipd.service": "systemd/vipd.service",
		"etc/vipd/vipd.yaml":              "configs/vipd.yaml",
		"usr/share/doc/vipd/README.md":    "README.md",
	} {
		if readFile(t, filepath.Join(dest, dst)) != readFile(t, filepath.Join(root, src)) {
			t.Errorf("%s differs from %s", dst, src)
		}
	}

	// A second run keeps an edited config and puts everything else back.
	config := filepath.Join(dest, "etc/vipd/vipd.yaml")
	edited := "# edited by the administrator\n" + readFile(t, config)
	if err := os.WriteFile(config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(config, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "usr/sbin/vipd")); err != nil {
		t.Fatal(err)
	}
	out := makeCmd(t, "install", "DESTDIR="+dest, "BIN="+bin)
	if !strings.Contains(out, "keeping "+config) {
		t.Errorf("second make install did not say it keeps %s:\n%s", config, out)
	}
	if got := readFile(t, config); got != edited {
		t.Errorf("second make install changed the edited config:\n%s", got)
	}
	want := expectedTree(t, "/usr")
	want["etc/vipd/vipd.yaml"] = 0o640 // the administrator's mode, kept too
	if diff := cmp.Diff(want, tree(t, dest)); diff != "" {
		t.Errorf("second make install: files (-want +got):\n%s", diff)
	}

	// make uninstall leaves the config and the directories that hold it.
	makeCmd(t, "uninstall", "DESTDIR="+dest)
	got := tree(t, dest)
	for p := range got {
		if strings.HasPrefix(p, "usr/share/doc/vipd") || p == "usr/sbin/vipd" || p == "lib/systemd/system/vipd.service" {
			t.Errorf("make uninstall left %s", p)
		}
	}
	if _, ok := got["etc/vipd/vipd.yaml"]; !ok {
		t.Error("make uninstall removed the config")
	}
}

// TestMakeInstallPrefix: with PREFIX=/usr/local the unit runs the binary
// from there.
func TestMakeInstallPrefix(t *testing.T) {
	bin := t.TempDir()
	dest := t.TempDir()
	makeCmd(t, "install", "DESTDIR="+dest, "BIN="+bin, "PREFIX=/usr/local")
	if diff := cmp.Diff(expectedTree(t, "/usr/local"), tree(t, dest)); diff != "" {
		t.Errorf("make install PREFIX=/usr/local: files (-want +got):\n%s", diff)
	}
	unit := readFile(t, filepath.Join(dest, "lib/systemd/system/vipd.service"))
	want := strings.ReplaceAll(readFile(t, filepath.Join(moduleRoot(t), unitPath)), "/usr/sbin/vipd", "/usr/local/sbin/vipd")
	if unit != want {
		t.Errorf("unit installed with PREFIX=/usr/local:\n%s\nwant:\n%s", unit, want)
	}
}
