package packaging

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildWithoutBGP builds vipd with -tags nobgp (make build BGP=no):
// GoBGP is not in the binary at all, a configuration without a bgp section
// is valid, and one with it is refused at the section's line, saying why.
func TestBuildWithoutBGP(t *testing.T) {
	dir := t.TempDir()
	full := buildVipd(t, filepath.Join(dir, "full"))
	bin := buildVipdTags(t, filepath.Join(dir, "nobgp"), "nethttpomithttp2,nobgp")
	if n := symbolsFrom(t, full, "github.com/osrg/gobgp"); n == 0 {
		t.Fatalf("the full build has no GoBGP symbol: the test would prove nothing")
	}
	if n := symbolsFrom(t, bin, "github.com/osrg/gobgp"); n != 0 {
		t.Errorf("the nobgp build has %d GoBGP symbols", n)
	}

	vrrp := "instances:\n  - {name: api, interface: eth0, vrid: 51, vips: [192.0.2.50/24]}\n"
	withBGP := "bgp:\n  asn: 65001\n  router_id: 192.0.2.11\n  peers: [{address: 192.0.2.1, asn: 65000}]\n" + vrrp
	for _, c := range []struct {
		name, yaml string
		want       string // "" = valid
	}{
		{"no bgp section", vrrp, ""},
		{"a bgp section", withBGP, ":2: bgp: this vipd was built without BGP"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: vipd validate: %v\n%s", c.name, err, out)
		case c.want != "" && (err == nil || !strings.Contains(string(out), path+c.want)):
			t.Errorf("%s: vipd validate: %v\n%s\nwant an error containing %q", c.name, err, out, path+c.want)
		}
		if out, err := exec.Command(full, "validate", "--config", path).CombinedOutput(); err != nil {
			t.Errorf("%s: the full build refuses it: %v\n%s", c.name, err, out)
		}
	}
}

// symbolsFrom counts the symbols of the ELF binary bin whose names start
// with prefix.
func symbolsFrom(t *testing.T, bin, prefix string) int {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range syms {
		if strings.HasPrefix(s.Name, prefix) {
			n++
		}
	}
	return n
}
