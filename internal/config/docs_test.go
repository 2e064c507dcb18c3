package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDocsYAML parses every ```yaml block of the guides and of
// load-balancing.md that is a vipd configuration (its top level has
// instances or virtual_servers), so that no example can rot.
// configuration.md and guides/authentication.md show fragments of
// instances, and are left out.
func TestDocsYAML(t *testing.T) {
	files := []string{"../../docs/load-balancing.md"}
	guides, err := filepath.Glob("../../docs/guides/*.md")
	if err != nil || len(guides) == 0 {
		t.Fatalf("no guides: %v", err)
	}
	for _, g := range guides {
		if filepath.Base(g) != "authentication.md" {
			files = append(files, g)
		}
	}
	block := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(data, -1) {
			text := data[m[2]:m[3]]
			line := 1 + strings.Count(string(data[:m[2]]), "\n")
			var top map[string]any
			if yaml.Unmarshal(text, &top) != nil || top["instances"] == nil && top["virtual_servers"] == nil {
				continue
			}
			n++
			name := filepath.Base(f) + ":" + strconv.Itoa(line)
			if _, err := Parse(name, text); err != nil {
				t.Errorf("%s: the example does not load:\n%v", name, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no vipd configuration found in the docs")
	}
}
