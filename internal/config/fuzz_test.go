package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics and returns either a Config
// that honours every documented limit or a non-empty Errors. Seeds are in
// testdata/fuzz/FuzzParse, plus the example config.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "configs", "vipd.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			if cfg != nil {
				t.Fatal("Config returned along with an error")
			}
			for i, e := range es {
				if e.File != "fuzz.yaml" || e.Line < 0 || e.Msg == "" {
					t.Fatalf("malformed error %+v", e)
				}
				if i > 0 && e.Line < es[i-1].Line {
					t.Fatalf("errors out of line order: %q", err)
				}
			}
			return
		}
		if cfg == nil || cfg.File != "fuzz.yaml" || cfg.ControlSocket == "" || len(cfg.Instances) == 0 {
			t.Fatalf("bad Config %+v", cfg)
		}
		for _, in := range cfg.Instances {
			switch {
			case in.Name == "" || in.Interface == "" || in.VRID == 0,
				in.Priority < 1 || in.Priority > 254,
				in.AdvertInterval < 10*time.Millisecond || in.AdvertInterval > 40950*time.Millisecond,
				in.AdvertInterval%(10*time.Millisecond) != 0,
				in.PreemptDelay < 0 || in.PreemptDelay > time.Hour,
				in.Announce.Count < 1 || in.Announce.Count > 100,
				in.Announce.Interval < 10*time.Millisecond || in.Announce.Interval > 10*time.Second,
				len(in.VIPs) == 0:
				t.Fatalf("instance out of limits: %+v", in)
			}
			for _, p := range in.VIPs {
				if !p.IsValid() || p.Addr().Is4In6() || (p.Addr().Is4() != (in.Family == "ipv4")) {
					t.Fatalf("bad VIP %v in %+v", p, in)
				}
			}
			if in.Version != 3 && (in.Version != 2 || in.Family != "ipv4") {
				t.Fatalf("bad version in %+v", in)
			}
		}
	})
}
