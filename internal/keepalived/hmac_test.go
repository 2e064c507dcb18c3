package keepalived

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

// hexKey is a 32-byte key in keepalived's inline form, without "hex:".
const hexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// hmacConf is a vrrp_instance whose auth_hmac block holds lines.
func hmacConf(lines ...string) string {
	return "vrrp_instance VI {\n" +
		"    interface eth0\n" +
		"    virtual_router_id 9\n" +
		"    virtual_ipaddress {\n" +
		"        192.0.2.9/24\n" +
		"    }\n" +
		"    auth_hmac {\n" +
		"        " + strings.Join(lines, "\n        ") + "\n" +
		"    }\n" +
		"}\n"
}

func convertString(t *testing.T, conf string) (*Result, error) {
	t.Helper()
	cfg, err := ParseBytes("k.conf", []byte(conf), Options{FS: memFS{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(cfg)
	if errors.Is(err, ErrInvalidOutput) {
		t.Fatalf("converter bug: %v\n%s", err, res.YAML)
	}
	return res, err
}

// TestHMACMalformed converts auth_hmac blocks with a bad statement: each
// is a warning naming its line and a comment in the output, and the
// instance is converted (auth is the resulting auth_hmac), or, when no key
// could sign as meant, not converted at all (auth is nil).
func TestHMACMalformed(t *testing.T) {
	good := "key 1 file /etc/keepalived/k1"
	tests := []struct {
		name  string
		lines []string
		warn  string // a line of the warnings
		auth  *config.AuthHMAC
	}{
		{
			name:  "key id 0",
			lines: []string{good, "key 0 file /k0"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key ...: not converted: the key id must be an integer in 1..255",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "key id 256",
			lines: []string{good, "key 256 file /k"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key ...: not converted: the key id must be an integer in 1..255",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "key without a value",
			lines: []string{good, "key 2"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2: not converted: expected key ID file PATH or key ID hex:DIGITS",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "key file without a path",
			lines: []string{good, "key 2 file"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 ...: not converted: expected key ID file PATH or key ID hex:DIGITS",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "relative key file",
			lines: []string{good, "key 2 file vrrp.key"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 file vrrp.key: not converted: the key file must be an absolute path (vipd would look for it in the directory of vipd.yaml)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "duplicate key id",
			lines: []string{good, "key 1 hex:" + hexKey},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 1 hex:...: not converted: key id 1 is already used (k.conf:8)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "hex too short",
			lines: []string{good, "key 2 hex:" + hexKey[:62]},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 hex:...: not converted: an inline key is hex: and 64 to 128 hex digits (32 to 64 bytes)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "hex too long",
			lines: []string{good, "key 2 hex:" + hexKey + hexKey + "00"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 hex:...: not converted: an inline key is hex: and 64 to 128 hex digits (32 to 64 bytes)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "odd number of hex digits",
			lines: []string{good, "key 2 hex:" + hexKey + "0"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 hex:...: not converted: an inline key is hex: and 64 to 128 hex digits (32 to 64 bytes)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "not hex",
			lines: []string{good, "key 2 hex:" + strings.Repeat("zz", 32)},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 hex:...: not converted: an inline key is hex: and 64 to 128 hex digits (32 to 64 bytes)",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "hex without its prefix",
			lines: []string{good, "key 2 " + hexKey},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 ...: not converted: expected key ID file PATH or key ID hex:DIGITS",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "key without its id",
			lines: []string{good, "key hex:" + hexKey},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key ...: not converted: expected key ID file PATH or key ID hex:DIGITS",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "unknown keyword",
			lines: []string{good, "key_hex 3 " + hexKey},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key_hex ...: not converted: unknown auth_hmac keyword",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "a secret on a line of its own",
			lines: []string{good, hexKey},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac ...: not converted: unknown auth_hmac keyword",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "unknown mode",
			lines: []string{good, "mode strict"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac mode strict: not converted: expected mode receive-only, permissive or enforce; vipd's default, enforce, applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "vipd's spelling of a mode",
			lines: []string{good, "mode receive_only"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac mode receive_only: not converted: expected mode receive-only, permissive or enforce; vipd's default, enforce, applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "mode without a value",
			lines: []string{good, "mode"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac mode: not converted: expected mode receive-only, permissive or enforce; vipd's default, enforce, applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "unknown anti_replay",
			lines: []string{good, "anti_replay counter"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac anti_replay counter: not converted: expected anti_replay time or monotonic; vipd's default, time, applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "time_window not a number",
			lines: []string{good, "time_window 10s"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac time_window 10s: not converted: expected time_window SECONDS, a positive number; vipd's default (3 advert intervals, within 5s..5m) applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "time_window 0",
			lines: []string{good, "time_window 0"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac time_window 0: not converted: expected time_window SECONDS, a positive number; vipd's default (3 advert intervals, within 5s..5m) applies",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "time_window too long",
			lines: []string{good, "time_window 600"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac time_window 600: vipd's window is whole seconds, 1s..5m: converted as 5m",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1, TimeWindow: config.MaxAuthWindow},
		},
		{
			name:  "time_window fraction",
			lines: []string{good, "time_window 2.5"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac time_window 2.5: vipd's window is whole seconds, 1s..5m: converted as 3s",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1, TimeWindow: 3e9},
		},
		{
			name:  "active_key not a number",
			lines: []string{good, "active_key one"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac active_key one: not converted: expected active_key ID, an integer in 1..255",
			auth:  &config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/k1"}}, ActiveKey: 1},
		},
		{
			name:  "active_key of no key",
			lines: []string{good, "active_key 2"},
			warn:  "k.conf:7: vrrp_instance VI: not converted: auth_hmac: active_key 2 is not one of the converted keys",
		},
		{
			name:  "active_key of a key not converted",
			lines: []string{good, "key 2 hex:00", "active_key 2"},
			warn:  "k.conf:9: vrrp_instance VI: auth_hmac key 2 hex:...: not converted: an inline key is hex: and 64 to 128 hex digits (32 to 64 bytes)",
		},
		{
			name:  "several keys, no active_key",
			lines: []string{good, "key 2 file /etc/keepalived/k2"},
			warn:  "k.conf:7: vrrp_instance VI: not converted: auth_hmac lists several keys and no usable active_key: say which one signs",
		},
		{
			name:  "no usable key",
			lines: []string{"key 1 hex:" + hexKey[:10], "mode enforce"},
			warn:  "k.conf:7: vrrp_instance VI: not converted: auth_hmac has no usable key: unauthenticated, this host would drop its peers' signed adverts and become a second master",
		},
		{
			name:  "an empty block",
			lines: nil,
			warn:  "k.conf:7: vrrp_instance VI: not converted: auth_hmac has no usable key: unauthenticated, this host would drop its peers' signed adverts and become a second master",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := convertString(t, hmacConf(tt.lines...))
			warns := joinWarnings(res.Warnings)
			if !strings.Contains("\n"+warns, "\n"+tt.warn+"\n") {
				t.Errorf("warnings lack\n%s\ngot:\n%s", tt.warn, warns)
			}
			if strings.Contains(warns, hexKey[:20]) || bytes.Contains(res.YAML, []byte(hexKey[:20])) {
				t.Errorf("a secret that was not converted is shown:\n%s\n%s", warns, res.YAML)
			}
			if tt.auth == nil {
				if !errors.Is(err, ErrNoInstances) {
					t.Errorf("err %v, want ErrNoInstances (the instance not converted)\n%s", err, res.YAML)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(res.YAML, []byte("# not converted: auth_hmac")) && !bytes.Contains(res.YAML, []byte("# keepalived: time_window")) {
				t.Errorf("no comment records the finding:\n%s", res.YAML)
			}
			got := readHMAC(t, res.YAML)
			want := *tt.auth
			if want.Mode == "" {
				want.Mode = config.AuthEnforce
			}
			if want.AntiReplay == "" {
				want.AntiReplay = config.AntiReplayTime
			}
			if want.TimeWindow == 0 {
				want.TimeWindow = got.TimeWindow // the default, from the interval
			}
			if !hmacEqual(got, &want) {
				t.Errorf("auth_hmac %+v, want %+v\n%s", got, want, res.YAML)
			}
		})
	}
}

func readHMAC(t *testing.T, data []byte) *config.AuthHMAC {
	t.Helper()
	c, err := config.Parse("out.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	a := c.Instances[0].AuthHMAC
	if a == nil {
		t.Fatalf("no auth_hmac:\n%s", data)
	}
	return a
}

func hmacEqual(a, b *config.AuthHMAC) bool {
	if a.ActiveKey != b.ActiveKey || a.Mode != b.Mode || a.AntiReplay != b.AntiReplay || a.TimeWindow != b.TimeWindow || len(a.Keys) != len(b.Keys) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i].ID != b.Keys[i].ID || a.Keys[i].File != b.Keys[i].File || !bytes.Equal(a.Keys[i].Secret, b.Keys[i].Secret) {
			return false
		}
	}
	return true
}

// TestHMACValues reads conversions back through config.Parse.
func TestHMACValues(t *testing.T) {
	secret := bytes.Repeat([]byte{0xab}, 48)
	tests := []struct {
		name  string
		lines []string
		want  config.AuthHMAC
	}{
		{
			name:  "one key from a file, the defaults",
			lines: []string{"key 200 file /etc/keepalived/vrrp.key"},
			want:  config.AuthHMAC{Keys: []config.AuthKey{{ID: 200, File: "/etc/keepalived/vrrp.key"}}, ActiveKey: 200, Mode: config.AuthEnforce, AntiReplay: config.AntiReplayTime, TimeWindow: config.MinAuthWindow},
		},
		{
			name:  "an inline key in capitals, 48 bytes",
			lines: []string{"key 3 hex:" + strings.Repeat("AB", 48), "mode enforce", "anti_replay time", "time_window 30"},
			want:  config.AuthHMAC{Keys: []config.AuthKey{{ID: 3, Secret: secret}}, ActiveKey: 3, Mode: config.AuthEnforce, AntiReplay: config.AntiReplayTime, TimeWindow: 30e9},
		},
		{
			name:  "receive-only with two keys needs no active_key",
			lines: []string{"key 1 file /k1", "key 2 file /k2", "mode receive-only", "anti_replay monotonic"},
			want:  config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/k1"}, {ID: 2, File: "/k2"}}, Mode: config.AuthReceiveOnly, AntiReplay: config.AntiReplayMonotonic},
		},
		{
			name:  "the last of a repeated keyword",
			lines: []string{"key 1 file /k1", "key 2 file /k2", "active_key 1", "active_key 2", "mode enforce", "mode permissive"},
			want:  config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/k1"}, {ID: 2, File: "/k2"}}, ActiveKey: 2, Mode: config.AuthPermissive, AntiReplay: config.AntiReplayTime, TimeWindow: config.MinAuthWindow},
		},
		{
			name:  "a key file name that needs quotes",
			lines: []string{`key 1 file "/etc/keepalived/a key, {1}: #x"`},
			want:  config.AuthHMAC{Keys: []config.AuthKey{{ID: 1, File: "/etc/keepalived/a key, {1}: #x"}}, ActiveKey: 1, Mode: config.AuthEnforce, AntiReplay: config.AntiReplayTime, TimeWindow: config.MinAuthWindow},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := convertString(t, hmacConf(tt.lines...))
			if err != nil {
				t.Fatal(err)
			}
			if got := readHMAC(t, res.YAML); !hmacEqual(got, &tt.want) {
				t.Errorf("auth_hmac %+v, want %+v\n%s", got, tt.want, res.YAML)
			}
		})
	}
}

func TestHMACBlockShapes(t *testing.T) {
	t.Run("no block", func(t *testing.T) {
		conf := strings.Replace(hmacConf("key 1 file /k"), "auth_hmac {\n        key 1 file /k\n    }", "auth_hmac", 1)
		res, err := convertString(t, conf)
		if !errors.Is(err, ErrNoInstances) {
			t.Fatalf("err %v\n%s", err, res.YAML)
		}
		if w := joinWarnings(res.Warnings); !strings.Contains(w, "k.conf:7: vrrp_instance VI: not converted: auth_hmac without a block { key ... }") {
			t.Errorf("warnings:\n%s", w)
		}
	})
	t.Run("twice", func(t *testing.T) {
		conf := strings.Replace(hmacConf("key 1 file /k1"), "    auth_hmac {", "    auth_hmac {\n        key 2 hex:"+hexKey+"\n    }\n    auth_hmac {", 1)
		res, err := convertString(t, conf)
		if err != nil {
			t.Fatal(err)
		}
		if w := joinWarnings(res.Warnings); !strings.Contains(w, "k.conf:10: vrrp_instance VI: auth_hmac: not converted: given twice; the first (k.conf:7) is used") {
			t.Errorf("warnings:\n%s", w)
		}
		if a := readHMAC(t, res.YAML); len(a.Keys) != 1 || a.Keys[0].ID != 2 {
			t.Errorf("auth_hmac %+v: want the first block's key 2", a)
		}
	})
}
