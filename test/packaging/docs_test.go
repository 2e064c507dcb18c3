package packaging

import (
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/testenv"
)

var guides = []string{"k0s.md", "kubeadm.md", "k3s.md", "haproxy-nginx.md", "systemd.md", "failure-modes.md", "ipv6-and-unicast.md", "ingress.md"}

// TestGuideLinks: every relative link in docs/guides resolves to a file,
// and every #fragment to a heading in it.
func TestGuideLinks(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "docs/guides")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, g := range guides {
		path := filepath.Join(dir, g)
		for _, m := range link.FindAllStringSubmatch(readFile(t, path), -1) {
			target, frag, _ := strings.Cut(m[1], "#")
			if strings.Contains(target, "://") {
				continue
			}
			file := path
			if target != "" {
				file = filepath.Join(dir, target)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %s: %v", g, m[1], err)
					continue
				}
			}
			if frag != "" && !hasHeading(t, file, frag) {
				t.Errorf("%s: link %s: no such heading", g, m[1])
			}
		}
	}
}

// hasHeading reports whether the Markdown file has a heading whose GitHub
// anchor is frag.
func hasHeading(t *testing.T, file, frag string) bool {
	for _, line := range strings.Split(readFile(t, file), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		if testenv.Anchor(line) == frag {
			return true
		}
	}
	return false
}

// TestDocumentationAddresses: examples use documentation addresses only
// (RFC 5737 and RFC 2544's 198.18.0.0/15), besides loopback, the
// unspecified address and VRRP's multicast group.
func TestDocumentationAddresses(t *testing.T) {
	allowed := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("0.0.0.0/32"),
		netip.MustParsePrefix("224.0.0.18/32"),
	}
	ipv4 := regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	var files []string
	for _, g := range []string{"docs/guides/*.md", "configs/k8s/*.yaml", "systemd/*", "packaging/*"} {
		m, _ := filepath.Glob(filepath.Join(moduleRoot(t), g))
		for _, p := range m {
			// A directory (the Helm chart's module), with every file below it.
			err := filepath.WalkDir(p, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					files = append(files, p)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		for _, s := range ipv4.FindAllString(readFile(t, f), -1) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue // a version number, say
			}
			ok := false
			for _, p := range allowed {
				ok = ok || p.Contains(a)
			}
			if !ok {
				rel, _ := filepath.Rel(moduleRoot(t), f)
				t.Errorf("%s: %s is not a documentation address", rel, s)
			}
		}
	}
}
