package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// key32 is a 32-byte secret written as hex.
var key32 = "hex:" + strings.Repeat("ab", 32)

func TestAuthHMAC(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{7}, 40)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rawFile := write("raw.key", raw, 0o600)
	hexFile := write("hex.key", []byte("hex:"+strings.Repeat("0f", 48)+"\n"), 0o400)
	write("rel.key", raw, 0o600)

	src := inst(
		"    advert_interval: 10s",
		"    auth_hmac:",
		"      keys:",
		"        - {id: 1, secret_file: "+rawFile+"}",
		"        - {id: 2, secret_file: "+hexFile+"}",
		"        - {id: 3, secret_file: rel.key}",
		"        - {id: 9, secret: \""+key32+"\"}",
		"      active_key: 2",
		"      mode: permissive",
	)
	path := write("vipd.yaml", []byte(src), 0o644)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &AuthHMAC{
		Keys: []AuthKey{
			{ID: 1, Secret: raw, File: rawFile},
			{ID: 2, Secret: bytes.Repeat([]byte{0x0f}, 48), File: hexFile},
			{ID: 3, Secret: raw, File: filepath.Join(dir, "rel.key")},
			{ID: 9, Secret: bytes.Repeat([]byte{0xab}, 32)},
		},
		ActiveKey:  2,
		Mode:       AuthPermissive,
		AntiReplay: AntiReplayTime,
		TimeWindow: 30 * time.Second, // 3 × 10s
	}
	if diff := cmp.Diff(want, cfg.Instances[0].AuthHMAC); diff != "" {
		t.Errorf("AuthHMAC (-want +got):\n%s", diff)
	}
	wantWarn := []string{path + `:13: instances[0].auth_hmac.keys[3].secret: warning: the secret is written in the config file, which backups, config management and support bundles copy; prefer secret_file, mode 0600`}
	if got := strings.Split(cfg.Warnings.Error(), "\n"); !reflect.DeepEqual(got, wantWarn) {
		t.Errorf("warnings:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(wantWarn, "\n\t"))
	}

	// Parse reads no file: the file keys have no secret yet.
	cfg, err = Parse("vipd.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Instances[0].AuthHMAC; a.Keys[0].Secret != nil || a.Keys[0].File != rawFile || a.Keys[3].Secret == nil {
		t.Errorf("Parse: keys %+v", a.Keys)
	}
}

func TestAuthHMACDefaults(t *testing.T) {
	for _, tt := range []struct {
		interval, window string
		anti             string
		want             time.Duration
	}{
		{"100ms", "", "", 5 * time.Second}, // 3 × 100ms, clamped up
		{"1s", "", "", 5 * time.Second},
		{"2500ms", "", "", 7 * time.Second}, // 7.5s, whole seconds
		{"40s", "", "", 120 * time.Second},
		{"1s", "12s", "", 12 * time.Second},
		{"1s", "", "monotonic", 0},
	} {
		extra := []string{"    advert_interval: " + tt.interval, "    auth_hmac:", "      keys: [{id: 4, secret: \"" + key32 + "\"}]"}
		if tt.window != "" {
			extra = append(extra, "      time_window: "+tt.window)
		}
		if tt.anti != "" {
			extra = append(extra, "      anti_replay: "+tt.anti)
		}
		cfg, err := Parse("vipd.yaml", []byte(inst(extra...)))
		if err != nil {
			t.Fatal(err)
		}
		a := cfg.Instances[0].AuthHMAC
		wantAnti := AntiReplayTime
		if tt.anti != "" {
			wantAnti = tt.anti
		}
		if a.TimeWindow != tt.want || a.ActiveKey != 4 || a.Mode != AuthEnforce || a.AntiReplay != wantAnti {
			t.Errorf("interval %s window %q: got %+v, want window %v, active 4, enforce, %s", tt.interval, tt.window, a, tt.want, wantAnti)
		}
	}
}

func TestAuthHMACErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	short := filepath.Join(dir, "short.key")
	hexShort := filepath.Join(dir, "hexshort.key")
	for _, f := range []struct {
		p    string
		b    string
		mode os.FileMode
	}{{open, strings.Repeat("x", 32), 0o644}, {short, "0123456789", 0o600}, {hexShort, "hex:abcd\n", 0o600}} {
		if err := os.WriteFile(f.p, []byte(f.b), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.key")
	k := func(s string) string { return "        - " + s }
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"no keys", []string{"      keys: []"}, []string{
			`vipd.yaml:8: instances[0].auth_hmac.keys: at least one key is required`,
		}},
		{"keys missing", []string{"      mode: enforce"}, []string{
			`vipd.yaml:8: instances[0].auth_hmac.keys: required field is missing`,
		}},
		{"id out of range", []string{"      keys:", k(`{id: 0, secret: "` + key32 + `"}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].id: 0 is out of range 1..255`,
		}},
		{"id twice", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), k(`{id: 1, secret: "` + key32 + `"}`)}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.keys[1].id: key id 1 is already used (line 9)`,
		}},
		{"both", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `", secret_file: /k}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: give secret or secret_file, not both`,
		}},
		{"neither", []string{"      keys:", k(`{id: 1}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: required: the key's secret_file (or an inline secret)`,
		}},
		{"inline not hex", []string{"      keys:", k(`{id: 1, secret: password1234567890password1234567890}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret: an inline secret is written hex: followed by 64..128 hex digits`,
		}},
		{"inline short", []string{"      keys:", k(`{id: 1, secret: "hex:abcd"}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret: the hex: secret is 2 bytes (4 hex digits), want 32..64 bytes`,
		}},
		{"inline bad digits", []string{"      keys:", k(`{id: 1, secret: "hex:zz"}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret: the hex: secret is not hexadecimal: encoding/hex: invalid byte: U+007A 'z'`,
		}},
		{"unknown active", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      active_key: 2"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.active_key: no key has id 2 (ids: 1)`,
		}},
		{"which active", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), k(`{id: 2, secret: "` + key32 + `"}`)}, []string{
			`vipd.yaml:8: instances[0].auth_hmac.active_key: required with more than one key: which one signs (ids: 1, 2)?`,
		}},
		{"mode", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      mode: strict"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.mode: "strict" is not receive_only, permissive or enforce`,
		}},
		{"keepalived's spelling", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      mode: receive-only"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.mode: "receive-only": write receive_only (keepalived spells it receive-only)`,
		}},
		{"anti_replay", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      anti_replay: never"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.anti_replay: "never" is not time or monotonic`,
		}},
		{"window with monotonic", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      anti_replay: monotonic", "      time_window: 10s"}, []string{
			`vipd.yaml:11: instances[0].auth_hmac.time_window: applies to anti_replay: time only`,
		}},
		{"window fraction", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      time_window: 1500ms"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.time_window: 1500ms is not a multiple of 1s`,
		}},
		{"window range", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `"}`), "      time_window: 10m"}, []string{
			`vipd.yaml:10: instances[0].auth_hmac.time_window: 10m is out of range 1s..5m`,
		}},
		{"file missing", []string{"      keys:", k(`{id: 1, secret_file: ` + missing + `}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: open ` + missing + `: no such file or directory`,
		}},
		{"file readable by others", []string{"      keys:", k(`{id: 1, secret_file: ` + open + `}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: ` + open + ` is mode 0644: a key must not be readable or writable by group or others (chmod 600 ` + open + `)`,
		}},
		{"file short", []string{"      keys:", k(`{id: 1, secret_file: ` + short + `}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: ` + short + `: the key is 10 bytes, want 32..64 raw bytes (or hex: and 64..128 hex digits); head -c 32 /dev/urandom makes one`,
		}},
		{"file hex short", []string{"      keys:", k(`{id: 1, secret_file: ` + hexShort + `}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: ` + hexShort + `: the hex: secret is 2 bytes (4 hex digits), want 32..64 bytes`,
		}},
		{"file is a directory", []string{"      keys:", k(`{id: 1, secret_file: ` + dir + `}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].secret_file: ` + dir + ` is not a regular file`,
		}},
		{"unknown field", []string{"      keys:", k(`{id: 1, secret: "` + key32 + `", algo: sha1}`)}, []string{
			`vipd.yaml:9: instances[0].auth_hmac.keys[0].algo: unknown field (valid fields: id, secret, secret_file)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := inst(append([]string{"    auth_hmac:"}, tt.lines...)...)
			p := filepath.Join(t.TempDir(), "vipd.yaml")
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			var got []string
			if err != nil {
				got = strings.Split(strings.ReplaceAll(err.Error(), p, "vipd.yaml"), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("input:\n%s\ngot:\n\t%s\nwant:\n\t%s", src, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}
