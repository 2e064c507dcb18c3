package keepalived

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

// fuzzFS serves the fuzz input under every name, so that includes,
// globs, cycles and the depth limit are exercised too.
type fuzzFS []byte

func (f fuzzFS) ReadFile(string) ([]byte, error) { return f, nil }
func (f fuzzFS) Glob(pattern string) ([]string, error) {
	if strings.Contains(pattern, "[") {
		return nil, filepath.ErrBadPattern
	}
	return []string{strings.ReplaceAll(pattern, "*", "x"), strings.ReplaceAll(pattern, "*", "y")}, nil
}

// FuzzParse checks that Parse and Convert never panic, that errors name a
// position, and that whenever Convert succeeds vipd accepts the output.
// Seeds: testdata/*.conf and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.conf"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		cfg, err := ParseBytes("k.conf", data, Options{ConfigID: id, FS: fuzzFS(data)})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Pos.File == "" || pe.Pos.Line < 1 || pe.Msg == "" {
				t.Fatalf("error %q (%T) does not name a position", err, err)
			}
			return
		}
		res, err := Convert(cfg)
		if res == nil {
			t.Fatal("nil Result")
		}
		for _, w := range res.Warnings {
			if w.Pos.File == "" || w.Msg == "" {
				t.Fatalf("malformed warning %+v", w)
			}
		}
		switch {
		case errors.Is(err, ErrInvalidOutput):
			t.Fatalf("%v\n%s", err, res.YAML)
		case err != nil:
			return
		}
		if _, err := config.Parse("out.yaml", res.YAML); err != nil {
			t.Fatalf("vipd rejects the output: %v\n%s", err, res.YAML)
		}
	})
}
