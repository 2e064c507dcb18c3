package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree and collects every problem it finds; it
// never stops at the first. The schema is data: a mapping is described by a
// []field, and each field's decode function is usually one of the set*
// helpers below, so adding a config field is one line in a table.
type decoder struct {
	file  string
	errs  Errors
	warns Errors
	// secrets are the secret_file keys, read once the file is valid.
	secrets []secretRef

	// checkLines maps each defined check's name to its line.
	checkLines map[string]int
	// tracked remembers track_checks entries for checkTracked.
	tracked []trackedAt
	// groups is where each sync group was written, and instAt each
	// instance's index by name, for checkGroups.
	groups []groupAt
	instAt map[string]int
	// lb is what checkVirtualServers needs.
	lb lbDecoder
	// bgpd is what checkBGP needs.
	bgpd bgpDecoder
}

// trackedAt is a track_checks entry and where it was written.
type trackedAt struct {
	name string
	node *yaml.Node
	path string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning: allowed, but risky.
func (d *decoder) warnf(n *yaml.Node, path, format string, args ...any) {
	d.warns = append(d.warns, &Error{File: d.file, Line: n.Line, Field: path, Msg: "warning: " + fmt.Sprintf(format, args...)})
}

// field describes one key of a YAML mapping. decode is called with the
// value node and its path, once, only if the key is present.
type field struct {
	name     string
	required bool
	decode   func(n *yaml.Node, path string)
}

// mapping decodes the mapping n field by field. It reports a node that is
// not a mapping, keys that are unknown or repeated, aliases, and missing
// required fields (at the mapping's own line). It returns the value node of
// each known key present, so that cross-field checks can cite lines, and
// false if n is not a mapping at all.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) (map[string]*yaml.Node, bool) {
	if !d.plain(n, path) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return nil, false
	}
	byName := make(map[string]*field, len(fields))
	for i := range fields {
		byName[fields[i].name] = &fields[i]
	}
	seen := make(map[string]*yaml.Node) // key nodes, including unknown ones, to catch repeats
	vals := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.AliasNode:
			d.errorf(k, path, "YAML aliases are not supported")
			continue
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, path, "expected a field name, got %s", describe(k))
			continue
		case k.ShortTag() == "!!merge":
			d.errorf(k, path, "YAML merge keys (<<) are not supported")
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, p, "field is set twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := byName[k.Value]
		if !ok {
			d.errorf(k, p, "unknown field%s (valid fields: %s)", suggest(k.Value, fields), names(fields))
			continue
		}
		vals[f.name] = v
		if d.plain(v, p) {
			f.decode(v, p)
		}
	}
	for _, f := range fields {
		if _, ok := vals[f.name]; f.required && !ok {
			d.errorf(n, join(path, f.name), "required field is missing")
		}
	}
	return vals, true
}

// list calls item for each element of the sequence n, skipping aliases
// (reported). It reports a node that is not a sequence and returns false.
func (d *decoder) list(n *yaml.Node, path, what string, item func(i int, n *yaml.Node, path string)) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list of %s, got %s", what, describe(n))
		return false
	}
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if d.plain(c, p) {
			item(i, c, p)
		}
	}
	return true
}

// plain reports an alias node. Aliases are refused rather than followed:
// following them lets a small file expand into a huge one.
func (d *decoder) plain(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.errorf(n, path, "YAML aliases are not supported")
		return false
	}
	return true
}

// scalar reports n unless it is a non-null scalar; want names the expected
// type ("an integer").
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.errorf(n, path, "expected %s, got %s", want, describe(n))
		return false
	}
	return true
}

// The set* helpers return a field decode function that stores a valid value
// in dst and reports anything else. dst is left untouched on error, so
// callers can treat its zero value as "missing or invalid".

// integer is the set of types setInt can store into.
type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32
}

// setInt accepts an integer in lo..hi.
func setInt[T integer](d *decoder, dst *T, lo, hi T) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.integer(n, path)
		if !ok {
			return
		}
		if d.inRange(n, path, v, int64(lo), int64(hi)) {
			*dst = T(v)
		}
	}
}

// inRange reports v, parsed from n, unless it is in lo..hi.
func (d *decoder) inRange(n *yaml.Node, path string, v, lo, hi int64) bool {
	if v < lo || v > hi {
		d.errorf(n, path, "%s is out of range %d..%d", n.Value, lo, hi)
		return false
	}
	return true
}

// decimal matches integers written in decimal, which yaml.v3 resolves to
// !!float when they overflow 64 bits.
var decimal = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

// integer parses an integer scalar. Values beyond int64 come back clamped,
// so that any range check rejects them; messages quote n.Value as written.
func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if !d.scalar(n, path, "an integer") {
		return 0, false
	}
	tag := n.ShortTag()
	if tag == "!!int" {
		var v int64
		if err := n.Decode(&v); err == nil {
			return v, true
		}
	} else if tag != "!!float" || !decimal.MatchString(n.Value) {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return 0, false
	}
	if strings.HasPrefix(n.Value, "-") {
		return math.MinInt64, true
	}
	return math.MaxInt64, true
}

// setDuration accepts a Go duration string in lo..hi that is a multiple of
// step (when step > 0).
func setDuration(d *decoder, dst *time.Duration, lo, hi, step time.Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		const want = "a Go duration such as 100ms"
		if !d.scalar(n, path, want) {
			return
		}
		// A bare 0 is the one unit-less duration Go accepts; allow it
		// unquoted too, as in preempt_delay: 0.
		v, err := time.ParseDuration(n.Value)
		if err != nil || (n.ShortTag() != "!!str" && n.Value != "0") {
			d.errorf(n, path, "expected %s, got %s", want, describe(n))
			return
		}
		if v < lo || v > hi {
			d.errorf(n, path, "%s is out of range %s..%s", n.Value, fmtDuration(lo), fmtDuration(hi))
			return
		}
		if step > 0 && v%step != 0 {
			d.errorf(n, path, "%s is not a multiple of %s", n.Value, fmtDuration(step))
			return
		}
		*dst = v
	}
}

// setBool accepts true or false.
func setBool(d *decoder, dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		const want = "true or false"
		if !d.scalar(n, path, want) {
			return
		}
		var v bool
		if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
			d.errorf(n, path, "expected %s, got %s", want, describe(n))
			return
		}
		*dst = v
	}
}

// setString accepts any non-null scalar, as written (so name: 51 is the
// string "51"), that check accepts; check may be nil.
func setString(d *decoder, dst *string, check func(string) error) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if !d.scalar(n, path, "a string") {
			return
		}
		if check != nil {
			if err := check(n.Value); err != nil {
				d.errorf(n, path, "%v", err)
				return
			}
		}
		*dst = n.Value
	}
}

// describe renders a node for "got ..." in messages: strings quoted (and
// cut short), other scalars as written, collections by kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!int", "!!float", "!!bool":
			return short(n.Value)
		}
		return strconv.Quote(short(n.Value))
	}
	return "nothing"
}

// short cuts s to a length fit for an error message.
func short(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// fmtDuration is time.Duration.String without trailing zero units: 1h, not
// 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func names(fields []field) string {
	s := make([]string, len(fields))
	for i, f := range fields {
		s[i] = f.name
	}
	return strings.Join(s, ", ")
}

// suggest returns `; did you mean "x"?` for the field closest to an unknown
// name, if one is close enough to be a likely typo.
func suggest(name string, fields []field) string {
	best, bestDist := "", 3 // at most two edits
	for _, f := range fields {
		if dist := editDistance(name, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
// Field names are short; long inputs are cut so a hostile key stays cheap.
func editDistance(a, b string) int {
	if len(a) > 64 {
		a = a[:64]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
