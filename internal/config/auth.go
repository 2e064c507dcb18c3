package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// AuthMode says what an instance with auth_hmac sends and accepts.
type AuthMode string

// The modes, in the order a cluster is migrated through them.
const (
	// AuthReceiveOnly verifies signed adverts and accepts unsigned ones,
	// and sends unsigned adverts: peers without auth_hmac still understand
	// it.
	AuthReceiveOnly AuthMode = "receive_only"
	// AuthPermissive signs, and still accepts unsigned adverts.
	AuthPermissive AuthMode = "permissive"
	// AuthEnforce signs, and accepts only adverts signed with a listed key.
	AuthEnforce AuthMode = "enforce"
)

// Signs reports whether the mode signs the adverts it sends.
func (m AuthMode) Signs() bool { return m == AuthPermissive || m == AuthEnforce }

// Anti-replay modes.
const (
	// AntiReplayTime refuses adverts whose timestamp is more than the
	// window from this host's clock, and sequence numbers that do not grow.
	AntiReplayTime = "time"
	// AntiReplayMonotonic refuses only sequence numbers that do not grow:
	// for hosts whose clocks are not synchronised.
	AntiReplayMonotonic = "monotonic"
)

// Limits and defaults of auth_hmac.
const (
	MinSecretLen     = 32
	MaxSecretLen     = 64
	MinAuthWindow    = 5 * time.Second // of the default window
	MaxAuthWindow    = 300 * time.Second
	authWindowFactor = 3 // the default window, in advert intervals
)

// AuthHMAC authenticates an instance's adverts with keepalived 2.4's
// auth_hmac trailer (HMAC-SHA256, draft-cassen-vrrp-auth-hmac).
type AuthHMAC struct {
	Keys      []AuthKey
	ActiveKey uint8 // the key that signs; one of Keys
	Mode      AuthMode
	// AntiReplay is AntiReplayTime or AntiReplayMonotonic.
	AntiReplay string
	// TimeWindow is how far, in whole seconds, an advert's timestamp may
	// be from this host's clock (AntiReplayTime).
	TimeWindow time.Duration
}

// Key returns the key with id, or nil.
func (a *AuthHMAC) Key(id uint8) *AuthKey {
	for i := range a.Keys {
		if a.Keys[i].ID == id {
			return &a.Keys[i]
		}
	}
	return nil
}

// AuthKey is one key: an id on the wire and its secret.
type AuthKey struct {
	ID uint8 // 1..255
	// Secret is the key, MinSecretLen..MaxSecretLen bytes. Parse fills it
	// for an inline secret only; Load reads secret files too.
	Secret []byte
	// File is where Secret was read from; empty for an inline secret.
	File string
}

// secretRef is a secret_file to read, and where it was named.
type secretRef struct {
	inst, key int
	node      *yaml.Node
	path      string
}

// authHMAC decodes an instance's auth_hmac mapping. The default window
// needs the advert interval, known only once the instance is read:
// finishAuth.
func (d *decoder) authHMAC(n *yaml.Node, path string, inst int) *AuthHMAC {
	a := &AuthHMAC{Mode: AuthEnforce, AntiReplay: AntiReplayTime}
	vals, ok := d.mapping(n, path, []field{
		{name: "keys", required: true, decode: func(n *yaml.Node, path string) {
			seen := map[uint8]int{}
			d.list(n, path, "keys", func(_ int, n *yaml.Node, path string) {
				k, file, ok := d.authKey(n, path)
				if !ok {
					return
				}
				if first, dup := seen[k.ID]; dup {
					d.errorf(n, path+".id", "key id %d is already used (line %d)", k.ID, first)
					return
				}
				seen[k.ID] = n.Line
				if file != nil {
					d.secrets = append(d.secrets, secretRef{inst: inst, key: len(a.Keys), node: file, path: join(path, "secret_file")})
				}
				a.Keys = append(a.Keys, k)
			})
			if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
				d.errorf(n, path, "at least one key is required")
			}
		}},
		{name: "active_key", decode: setInt(d, &a.ActiveKey, 1, 255)},
		{name: "mode", decode: func(n *yaml.Node, path string) {
			var s string
			setString(d, &s, func(s string) error {
				switch AuthMode(s) {
				case AuthReceiveOnly, AuthPermissive, AuthEnforce:
					return nil
				case "receive-only":
					return fmt.Errorf("%q: write receive_only (keepalived spells it receive-only)", s)
				}
				return fmt.Errorf("%q is not receive_only, permissive or enforce", short(s))
			})(n, path)
			if s != "" {
				a.Mode = AuthMode(s)
			}
		}},
		{name: "anti_replay", decode: setString(d, &a.AntiReplay, func(s string) error {
			if s != AntiReplayTime && s != AntiReplayMonotonic {
				return fmt.Errorf("%q is not time or monotonic", short(s))
			}
			return nil
		})},
		{name: "time_window", decode: setDuration(d, &a.TimeWindow, time.Second, MaxAuthWindow, time.Second)},
	})
	if !ok {
		return nil
	}
	switch active := vals["active_key"]; {
	case active != nil && a.ActiveKey != 0 && len(a.Keys) > 0 && a.Key(a.ActiveKey) == nil:
		d.errorf(active, join(path, "active_key"), "no key has id %d (ids: %s)", a.ActiveKey, keyIDs(a.Keys))
	case active == nil && len(a.Keys) == 1:
		a.ActiveKey = a.Keys[0].ID
	case active == nil && len(a.Keys) > 1 && a.Mode.Signs():
		d.errorf(n, join(path, "active_key"), "required with more than one key: which one signs (ids: %s)?", keyIDs(a.Keys))
	}
	if w := vals["time_window"]; w != nil && a.AntiReplay == AntiReplayMonotonic {
		d.errorf(w, join(path, "time_window"), "applies to anti_replay: time only")
	}
	return a
}

// authKey decodes one key: an id and exactly one of secret and secret_file;
// file is the secret_file's node, for readSecrets.
func (d *decoder) authKey(n *yaml.Node, path string) (k AuthKey, file *yaml.Node, ok bool) {
	var secret string
	errs := len(d.errs)
	vals, ok := d.mapping(n, path, []field{
		{name: "id", required: true, decode: setInt(d, &k.ID, 1, 255)},
		{name: "secret", decode: func(n *yaml.Node, path string) {
			setString(d, &secret, nil)(n, path)
			if secret == "" {
				return
			}
			b, err := parseSecret([]byte(secret), false)
			if err != nil {
				d.errorf(n, path, "%v", err)
				return
			}
			k.Secret = b
			d.warnf(n, path, "the secret is written in the config file, which backups, config management and support bundles copy; prefer secret_file, mode 0600")
		}},
		{name: "secret_file", decode: setString(d, &k.File, func(s string) error {
			if s == "" {
				return fmt.Errorf("empty path")
			}
			return nil
		})},
	})
	if !ok {
		return k, nil, false
	}
	sn, fn := vals["secret"], vals["secret_file"]
	switch {
	case sn != nil && fn != nil:
		d.errorf(fn, join(path, "secret_file"), "give secret or secret_file, not both")
	case sn == nil && fn == nil:
		d.errorf(n, join(path, "secret_file"), "required: the key's secret_file (or an inline secret)")
	}
	if len(d.errs) != errs {
		return k, nil, false
	}
	return k, fn, true
}

// finishAuth sets the default window from the advert interval.
func finishAuth(in *Instance) {
	a := in.AuthHMAC
	if a == nil || a.TimeWindow != 0 || a.AntiReplay != AntiReplayTime {
		return
	}
	w := authWindowFactor * in.AdvertInterval
	w = max(MinAuthWindow, min(MaxAuthWindow, w))
	a.TimeWindow = w.Truncate(time.Second)
}

// readSecrets reads every secret_file of cfg, relative paths from dir,
// refusing files that others can read.
func (d *decoder) readSecrets(cfg *Config, dir string) {
	for _, ref := range d.secrets {
		k := &cfg.Instances[ref.inst].AuthHMAC.Keys[ref.key]
		file := k.File
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		b, err := readSecretFile(file)
		if err != nil {
			d.errorf(ref.node, ref.path, "%v", err)
			continue
		}
		k.File, k.Secret = file, b
	}
}

// readSecretFile reads a key file: a regular file that neither group nor
// others can read or write (keepalived would log and run unauthenticated;
// vipd refuses).
func readSecretFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", file)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%s is mode %04o: a key must not be readable or writable by group or others (chmod 600 %s)", file, fi.Mode().Perm(), file)
	}
	b := make([]byte, 0, 4*MaxSecretLen)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil || len(b) == cap(b) {
			break
		}
	}
	s, err := parseSecret(b, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// parseSecret decodes a secret: "hex:" and 64..128 hex digits, or (in a
// file) the raw bytes. A file's trailing newline is not part of a hex key.
func parseSecret(b []byte, raw bool) ([]byte, error) {
	if t, ok := bytes.CutPrefix(b, []byte("hex:")); ok {
		t = bytes.TrimRight(t, "\r\n")
		s, err := hex.DecodeString(string(t))
		if err != nil {
			return nil, fmt.Errorf("the hex: secret is not hexadecimal: %v", err)
		}
		if len(s) < MinSecretLen || len(s) > MaxSecretLen {
			return nil, fmt.Errorf("the hex: secret is %d bytes (%d hex digits), want %d..%d bytes", len(s), 2*len(s), MinSecretLen, MaxSecretLen)
		}
		return s, nil
	}
	if !raw {
		return nil, fmt.Errorf("an inline secret is written hex: followed by %d..%d hex digits", 2*MinSecretLen, 2*MaxSecretLen)
	}
	if len(b) < MinSecretLen || len(b) > MaxSecretLen {
		return nil, fmt.Errorf("the key is %d bytes, want %d..%d raw bytes (or hex: and %d..%d hex digits); head -c 32 /dev/urandom makes one", len(b), MinSecretLen, MaxSecretLen, 2*MinSecretLen, 2*MaxSecretLen)
	}
	return bytes.Clone(b), nil
}

func keyIDs(keys []AuthKey) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = fmt.Sprint(k.ID)
	}
	return strings.Join(ids, ", ")
}
