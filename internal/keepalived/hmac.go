package keepalived

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// keepalived 2.4's authenticated adverts, in a vrrp_instance:
//
//	auth_hmac {
//	    key 1 file /etc/keepalived/vrrp.key
//	    key 2 hex:000102...
//	    active_key 1
//	    mode receive-only|permissive|enforce
//	    anti_replay time|monotonic
//	    time_window 10
//	}
//
// become the instance's auth_hmac. Statements of the block may hold
// secrets, so messages about them show only a key's id and file, and the
// values of the keywords that are never secret (hmacLine).

// outHMAC is a converted auth_hmac block; what keepalived does not say is
// not written, and vipd's defaults apply.
type outHMAC struct {
	keys       []outKey
	active     int // 0: not written (the only key)
	activeStmt *Stmt
	mode       config.AuthMode // "": enforce
	antiReplay string          // "": time
	window     time.Duration   // 0: 3 advert intervals, within 5s..300s
	windowStmt *Stmt
}

type outKey struct {
	id     int
	file   string // secret_file, or
	secret string // secret: "hex:..."
	stmt   *Stmt
	head   []string
}

var hmacModes = map[string]config.AuthMode{
	"receive-only": config.AuthReceiveOnly,
	"permissive":   config.AuthPermissive,
	"enforce":      config.AuthEnforce,
}

// hmacKeywords convert the statements of an auth_hmac block; each returns
// why its statement is not converted, or "".
var hmacKeywords = map[string]func(c *converter, h *outHMAC, s *Stmt, subject string) string{
	"key": (*converter).hmacKey,
	"active_key": func(_ *converter, h *outHMAC, s *Stmt, _ string) string {
		id, ok := keyID(s.Args)
		if !ok || len(s.Args) != 1 {
			return "expected active_key ID, an integer in 1..255"
		}
		h.active, h.activeStmt = id, s
		return ""
	},
	"mode": func(_ *converter, h *outHMAC, s *Stmt, _ string) string {
		m, ok := hmacModes[oneArg(s)]
		if !ok {
			return "expected mode receive-only, permissive or enforce; vipd's default, enforce, applies"
		}
		h.mode = m
		return ""
	},
	"anti_replay": func(_ *converter, h *outHMAC, s *Stmt, _ string) string {
		switch v := oneArg(s); v {
		case "time", "monotonic":
			h.antiReplay = v
			return ""
		}
		return "expected anti_replay time or monotonic; vipd's default, time, applies"
	},
	"time_window": func(_ *converter, h *outHMAC, s *Stmt, _ string) string {
		d, err := parseSeconds(oneArg(s))
		if err != nil || d <= 0 {
			return "expected time_window SECONDS, a positive number; vipd's default (3 advert intervals, within 5s..5m) applies"
		}
		h.window, h.windowStmt = d, s
		return ""
	},
}

// oneArg is a statement's only argument, or "" when it has not exactly one.
func oneArg(s *Stmt) string {
	if len(s.Args) != 1 {
		return ""
	}
	return s.Args[0]
}

// keyID reads a key id, 1..255, from the first argument.
func keyID(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	id, err := strconv.Atoi(args[0])
	return id, err == nil && id >= 1 && id <= 255 && !strings.HasPrefix(args[0], "+")
}

// hmacKey reads "key ID file PATH" or "key ID hex:DIGITS".
func (c *converter) hmacKey(h *outHMAC, s *Stmt, subject string) string {
	const form = "expected key ID file PATH or key ID hex:DIGITS"
	if len(s.Args) < 2 {
		return form
	}
	id, ok := keyID(s.Args)
	if !ok {
		return "the key id must be an integer in 1..255"
	}
	for _, k := range h.keys {
		if k.id == id {
			return fmt.Sprintf("key id %d is already used (%s)", id, k.stmt.Pos)
		}
	}
	k := outKey{id: id, stmt: s}
	switch v := s.Args[1]; {
	case v == "file":
		if len(s.Args) != 3 {
			return form
		}
		if !filepath.IsAbs(s.Args[2]) {
			return "the key file must be an absolute path (vipd would look for it in the directory of vipd.yaml)"
		}
		k.file = s.Args[2]
	case strings.HasPrefix(v, "hex:"):
		digits := v[len("hex:"):]
		if len(s.Args) != 2 {
			return form
		}
		if _, err := hex.DecodeString(digits); err != nil || len(digits) < 2*config.MinSecretLen || len(digits) > 2*config.MaxSecretLen {
			return fmt.Sprintf("an inline key is hex: and %d to %d hex digits (%d to %d bytes)", 2*config.MinSecretLen, 2*config.MaxSecretLen, config.MinSecretLen, config.MaxSecretLen)
		}
		k.secret = "hex:" + strings.ToLower(digits)
		k.head = append(k.head, c.report(s, Finding{Subject: subject, What: "key " + strconv.Itoa(id), Said: "auth_hmac key " + strconv.Itoa(id), Msg: "an inline secret: converted as secret: \"hex:...\", which vipd accepts with a warning: the secret is then in vipd.yaml, which editors, backups, config management and support bundles read and copy; move it to a secret_file with mode 0600", Note: "an inline secret; better in a secret_file with mode 0600"}))
	default:
		return form
	}
	h.keys = append(h.keys, k)
	return ""
}

// isIdentifier says whether s is a C identifier of at most 32 bytes, as
// keepalived names keys (by hand: a regexp with {0,31} compiles to 31
// copies of its class, held on the heap of every vipd process).
func isIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// hmacLine presents a statement of an auth_hmac block for messages, with
// anything that may be a secret left out: "auth_hmac key 2 hex:...".
func hmacLine(s *Stmt) *Stmt {
	var words []string
	switch {
	case s.Keyword == "key":
		words = append(words, "key")
		if _, ok := keyID(s.Args); ok {
			words = append(words, s.Args[0])
			switch rest := s.Args[1:]; {
			case len(rest) == 2 && rest[0] == "file":
				words = append(words, rest...)
			case len(rest) == 1 && strings.HasPrefix(rest[0], "hex:"):
				words = append(words, "hex:...")
			case len(rest) > 0:
				words = append(words, "...")
			}
		} else if len(s.Args) > 0 {
			words = append(words, "...")
		}
	case hmacKeywords[s.Keyword] != nil:
		// Short values only: a secret is at least 64 characters.
		words = append(words, s.Keyword)
		switch {
		case len(s.Raw) > 32:
			words = append(words, "...")
		case s.Raw != "":
			words = append(words, s.Raw)
		}
	case isIdentifier(s.Keyword):
		words = append(words, s.Keyword)
		if len(s.Args) > 0 {
			words = append(words, "...")
		}
	default:
		words = append(words, "...")
	}
	return &Stmt{Pos: s.Pos, Keyword: "auth_hmac", Raw: strings.Join(words, " "), seq: s.seq}
}

// hmac converts an instance's auth_hmac block. When it is there but cannot
// be converted, why says so and the instance is not converted: without
// auth_hmac vipd drops its peers' signed adverts (auth_unexpected), so it
// would become a second Master, and signing with another key than meant
// is no better.
func (c *converter) hmac(in *outInstance, a *Stmt, subject string) (h *outHMAC, why string) {
	if a == nil {
		return nil, ""
	}
	if !a.HasBlock {
		return nil, "auth_hmac without a block { key ... }"
	}
	h = &outHMAC{}
	in.note("auth_hmac", c.report(a, Finding{What: "auth_hmac", Kind: Same}))
	var notes []string
	for _, s := range a.Block {
		f := hmacKeywords[s.Keyword]
		why := "unknown auth_hmac keyword"
		if f != nil {
			why = f(c, h, s, subject)
		}
		if why != "" {
			notes = append(notes, c.notConverted(hmacLine(s), subject, why))
		}
	}
	const unauth = "unauthenticated, this host would drop its peers' signed adverts and become a second master"
	switch {
	case len(h.keys) == 0:
		return nil, "auth_hmac has no usable key: " + unauth
	case h.activeStmt == nil && len(h.keys) > 1 && h.mode != config.AuthReceiveOnly:
		return nil, "auth_hmac lists several keys and no usable active_key: say which one signs"
	case h.activeStmt != nil && !slices.ContainsFunc(h.keys, func(k outKey) bool { return k.id == h.active }):
		return nil, fmt.Sprintf("auth_hmac: active_key %d is not one of the converted keys", h.active)
	}
	if s := h.windowStmt; s != nil {
		// vipd's window is whole seconds, at most config.MaxAuthWindow.
		switch d := max(time.Second, min(config.MaxAuthWindow, h.window.Round(time.Second))); {
		case h.antiReplay == config.AntiReplayMonotonic:
			notes = append(notes, c.report(s, Finding{What: "time_window " + s.Args[0], Kind: Same, Note: "applies to anti_replay time only"}))
			h.window = 0
		case d != h.window:
			notes = append(notes, c.report(s, Finding{Subject: subject, What: s.Line(), Said: "auth_hmac " + s.Line(), Msg: fmt.Sprintf("vipd's window is whole seconds, 1s..%s: converted as %s", duration(config.MaxAuthWindow), duration(d))}))
			h.window = d
		}
	}
	if slices.ContainsFunc(h.keys, func(k outKey) bool { return k.file != "" }) {
		in.note("auth_hmac", c.report(a, Finding{Subject: subject, Said: "auth_hmac", Msg: "vipd refuses a key file that is missing, not 32 to 64 bytes (or hex: text), or readable or writable by group or others, where keepalived runs unauthenticated: chmod 600 each key file, and make the user vipd runs as (vipd under the shipped unit) its owner", Note: "key files must be mode 0600 and owned by the user vipd runs as (vipd under the shipped unit): vipd refuses ones that group or others can read or write"}))
	}
	in.note("auth_hmac", notes...)
	return h, ""
}

func (h *outHMAC) write(w *yamlWriter, ind int) {
	w.line(ind, "auth_hmac:")
	w.line(ind+2, "keys:")
	for _, k := range h.keys {
		w.comments(ind+4, k.head)
		if k.file != "" {
			w.line(ind+4, fmt.Sprintf("- {id: %d, secret_file: %s}", k.id, flowScalar(k.file)))
		} else {
			w.line(ind+4, fmt.Sprintf("- {id: %d, secret: %s}", k.id, dquote(k.secret)))
		}
	}
	if h.activeStmt != nil {
		w.field(ind+2, "active_key", strconv.Itoa(h.active))
	}
	if h.mode != "" {
		w.field(ind+2, "mode", string(h.mode))
	}
	if h.antiReplay != "" {
		w.field(ind+2, "anti_replay", h.antiReplay)
	}
	if h.window > 0 {
		w.field(ind+2, "time_window", duration(h.window))
	}
}

// flowScalar renders s inside { } or [ ].
func flowScalar(s string) string {
	if plainFlow(s) {
		return s
	}
	return dquote(s)
}

// readsBack says whether got, as config.Parse read it, is what h meant.
// Parse reads no secret file, so only a file's name is compared.
func (h *outHMAC) readsBack(got *config.AuthHMAC) bool {
	if h == nil || got == nil {
		return h == nil && got == nil
	}
	want := config.AuthHMAC{Mode: config.AuthEnforce, AntiReplay: config.AntiReplayTime, ActiveKey: uint8(h.active), TimeWindow: got.TimeWindow}
	if h.mode != "" {
		want.Mode = h.mode
	}
	if h.antiReplay != "" {
		want.AntiReplay = h.antiReplay
	}
	if h.window > 0 {
		want.TimeWindow = h.window
	}
	switch {
	case h.activeStmt == nil && len(h.keys) == 1:
		want.ActiveKey = uint8(h.keys[0].id)
	case h.activeStmt == nil:
		want.ActiveKey = 0
	}
	if got.Mode != want.Mode || got.AntiReplay != want.AntiReplay || got.ActiveKey != want.ActiveKey ||
		got.TimeWindow != want.TimeWindow || len(got.Keys) != len(h.keys) {
		return false
	}
	for i, k := range h.keys {
		g := got.Keys[i]
		secret, _ := hex.DecodeString(strings.TrimPrefix(k.secret, "hex:"))
		if int(g.ID) != k.id || g.File != k.file || !bytes.Equal(g.Secret, secret) {
			return false
		}
	}
	return true
}
