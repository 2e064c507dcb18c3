package keepalived

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits that keep a hostile or broken include tree from running away.
const (
	MaxIncludeDepth = 16       // nested includes below the main file
	maxFiles        = 1000     // files read in all
	maxLines        = 1000000  // logical lines processed in all
	maxParamLen     = 1 << 16  // bytes in a line after parameter substitution
	maxParamRounds  = 32       // substitution passes over one line
	maxBytes        = 16 << 20 // bytes read and produced by substitution, in all
	maxPattern      = 4096     // bytes in an include pattern
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int // 1-based; 0 for the file as a whole
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Stmt is one statement: a keyword, the words after it on its line, and
// the statements of its block if it opens one ("vrrp_instance VI_1 {").
// Inside blocks such as virtual_ipaddress the "keyword" is the address.
type Stmt struct {
	Pos     Pos
	Keyword string
	// Args are the words after the keyword, quotes removed: "a b"c is the
	// one word `a bc`.
	Args []string
	// Raw is the text of Args as written (quotes kept, comment removed),
	// for scripts, whose quoting matters.
	Raw      string
	HasBlock bool
	Block    []*Stmt

	seq int // order of appearance, across included files
}

// Line renders the statement's line without its block, for messages.
func (s *Stmt) Line() string {
	if s.Raw == "" {
		return s.Keyword
	}
	return s.Keyword + " " + s.Raw
}

// Config is a parsed keepalived configuration: the main file's statements
// with included files spliced in where they were included.
type Config struct {
	File     string // the main file, as given to Parse
	Stmts    []*Stmt
	Warnings []Finding // from reading: conditional lines, empty globs, ...
}

// Error is a problem that stops parsing.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders the error on one line, control characters escaped.
func (e *Error) Error() string { return commentText(e.Pos.String() + ": " + e.Msg) }

// FS is what Parse reads files through.
type FS interface {
	ReadFile(name string) ([]byte, error)
	// Glob is filepath.Glob: the names matching pattern, sorted.
	Glob(pattern string) ([]string, error)
}

// OSFS is the real file system.
type OSFS struct{}

func (OSFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (OSFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// Options adjust Parse.
type Options struct {
	// ConfigID is keepalived's -i/--config-id: lines starting "@ID" are
	// read only when ID matches it, lines starting "@^ID" only when not.
	// keepalived defaults to the host name; here the default is none, and
	// every conditional line read or skipped is reported.
	ConfigID string
	// FS is where files are read from; nil means the OS.
	FS FS
}

// Parse reads the keepalived configuration at path and every file it
// includes. An error is an *Error naming the file and line.
func Parse(path string, opts Options) (*Config, error) {
	p := newParser(opts)
	if err := p.file(path, Pos{}, 0); err != nil {
		return nil, err
	}
	return p.finish(path)
}

// ParseBytes is Parse for a main file already in memory; includes are
// still read through opts.FS.
func ParseBytes(path string, data []byte, opts Options) (*Config, error) {
	p := newParser(opts)
	p.stack = append(p.stack, filepath.Clean(path))
	if err := p.lines(path, data, 0); err != nil {
		return nil, err
	}
	return p.finish(path)
}

type parser struct {
	opts   Options
	fs     FS
	params map[string]string
	stack  []string // files being read, outermost first, to refuse cycles
	files  int
	bytes  int
	seq    int
	warns  []Finding

	root []*Stmt
	open []*Stmt // blocks not yet closed, innermost last
	// last is the statement a '{' would open: the latest one, until a
	// brace intervenes. keepalived allows the '{' on the next line.
	last *Stmt
}

func newParser(opts Options) *parser {
	p := &parser{opts: opts, fs: opts.FS, params: map[string]string{}}
	if p.fs == nil {
		p.fs = OSFS{}
	}
	return p
}

func (p *parser) finish(path string) (*Config, error) {
	if n := len(p.open); n > 0 {
		b := p.open[n-1]
		return nil, &Error{Pos: b.Pos, Msg: fmt.Sprintf("missing }: the block of %q opened here is not closed", b.Keyword)}
	}
	return &Config{File: path, Stmts: p.root, Warnings: p.warns}, nil
}

func (p *parser) warn(pos Pos, subject, format string, args ...any) {
	p.warns = append(p.warns, Finding{Pos: pos, Subject: subject, Msg: fmt.Sprintf(format, args...), seq: p.seq})
}

func errorf(pos Pos, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// file reads one file; from is the include line that asked for it.
func (p *parser) file(path string, from Pos, depth int) error {
	clean := filepath.Clean(path)
	for i, f := range p.stack {
		if f == clean {
			chain := append(append([]string(nil), p.stack[i:]...), clean)
			return errorf(from, "include cycle: %s", strings.Join(chain, " -> "))
		}
	}
	p.files++
	if p.files > maxFiles {
		return errorf(from, "more than %d files included", maxFiles)
	}
	data, err := p.fs.ReadFile(path)
	if err != nil {
		if from.File == "" {
			return err
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return errorf(from, "include %s: %v", path, err)
	}
	if p.bytes += len(data); p.bytes > maxBytes {
		return errorf(from, "more than %d bytes of configuration", maxBytes)
	}
	p.stack = append(p.stack, clean)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	return p.lines(path, data, depth)
}

// lines processes a file's contents.
func (p *parser) lines(path string, data []byte, depth int) error {
	text := string(data)
	if !utf8.ValidString(text) {
		p.warn(Pos{File: path}, "", "not valid UTF-8: invalid bytes are replaced by U+FFFD")
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		pos := Pos{File: path, Line: i + 1}
		line := strings.TrimSuffix(lines[i], "\r")
		line, ok := p.conditional(pos, line)
		if !ok {
			continue
		}
		if name, val, ok := definition(line); ok {
			// A multi-line definition ends each line but the last with '\'.
			if v, more := strings.CutSuffix(strings.TrimRight(val, " \t"), `\`); more {
				parts := []string{}
				if v = strings.TrimSpace(v); v != "" {
					parts = append(parts, v)
				}
				for i+1 < len(lines) {
					i++
					l := strings.TrimRight(strings.TrimSuffix(lines[i], "\r"), " \t")
					l, more := strings.CutSuffix(l, `\`)
					parts = append(parts, l)
					if !more {
						break
					}
				}
				val = strings.Join(parts, "\n")
			}
			p.params[name] = val
			continue
		}
		if err := p.logical(pos, line, depth, 0); err != nil {
			return err
		}
	}
	return nil
}

// conditional applies keepalived's "@ID" and "@^ID" line prefixes.
func (p *parser) conditional(pos Pos, line string) (string, bool) {
	t := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(t, "@") {
		return line, true
	}
	t = t[1:]
	neg := strings.HasPrefix(t, "^")
	if neg {
		t = t[1:]
	}
	end := strings.IndexAny(t, " \t")
	if end < 0 {
		end = len(t)
	}
	id, rest := t[:end], t[end:]
	keep := (id == p.opts.ConfigID) != neg
	if p.opts.ConfigID == "" {
		verb := "skipped"
		if keep {
			verb = "read"
		}
		p.seq++
		p.warn(pos, "", "conditional line %q %s: no --config-id given (keepalived would use -i or the host name)", strings.TrimSpace(line), verb)
	}
	return rest, keep
}

var defRE = regexp.MustCompile(`^[ \t]*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// definition recognises "$NAME=VALUE" (only blanks before the '$').
func definition(line string) (name, val string, ok bool) {
	m := defRE.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// logical handles one line after conditionals: parameters are substituted
// (which may yield several lines), includes followed, the rest tokenized.
func (p *parser) logical(pos Pos, line string, depth, nest int) error {
	p.seq++
	if p.seq > maxLines {
		return errorf(pos, "more than %d lines", maxLines)
	}
	expanded, err := p.substitute(pos, line)
	if err != nil {
		return err
	}
	if expanded != line {
		if p.bytes += len(expanded); p.bytes > maxBytes {
			return errorf(pos, "parameter substitution produces more than %d bytes", maxBytes)
		}
		if nest > maxParamRounds {
			return errorf(pos, "parameter substitution nests too deeply")
		}
		for l := range strings.SplitSeq(expanded, "\n") {
			l, ok := p.conditional(pos, l)
			if !ok {
				continue
			}
			if name, val, ok := definition(l); ok {
				p.params[name] = val
				continue
			}
			if err := p.logical(pos, l, depth, nest+1); err != nil {
				return err
			}
		}
		return nil
	}
	t := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(t, "~SEQ") {
		return errorf(pos, "~SEQ is not supported: expand the sequence by hand")
	}
	if kw, rest, ok := includeLine(t); ok {
		return p.include(pos, kw, rest, depth)
	}
	toks, err := tokenize(line)
	if err != nil {
		return errorf(pos, "%v", err)
	}
	return p.tokens(pos, line, toks)
}

// substitute replaces defined $NAME (followed by a blank or the end) and
// ${NAME}, again and again, as keepalived does; undefined ones stay.
func (p *parser) substitute(pos Pos, s string) (string, error) {
	if len(p.params) == 0 || !strings.Contains(s, "$") {
		return s, nil
	}
	for round := 0; ; round++ {
		out, changed := p.substituteOnce(s)
		if !changed {
			return s, nil
		}
		if round >= maxParamRounds || len(out) > maxParamLen {
			return "", errorf(pos, "parameter substitution does not end (a parameter that refers to itself?)")
		}
		s = out
	}
}

func (p *parser) substituteOnce(s string) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			j := i + 2
			for j < len(s) && isNameByte(s[j], j == i+2) {
				j++
			}
			if j < len(s) && s[j] == '}' {
				if v, ok := p.params[s[i+2:j]]; ok {
					b.WriteString(v)
					i = j + 1
					changed = true
					continue
				}
			}
		} else {
			j := i + 1
			for j < len(s) && isNameByte(s[j], j == i+1) {
				j++
			}
			if j > i+1 && (j == len(s) || s[j] == ' ' || s[j] == '\t') {
				if v, ok := p.params[s[i+1:j]]; ok {
					b.WriteString(v)
					i = j
					changed = true
					continue
				}
			}
		}
		b.WriteByte('$')
		i++
	}
	return b.String(), changed
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
}

// includeLine recognises include and its variants (includer, includem, ...),
// which keepalived handles line by line before anything else.
func includeLine(t string) (kw, rest string, ok bool) {
	end := strings.IndexAny(t, " \t")
	if end < 0 {
		return "", "", false
	}
	switch kw = t[:end]; kw {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return kw, strings.TrimSpace(t[end:]), true
	}
	return "", "", false
}

// include reads the files a pattern names, relative to the including file.
func (p *parser) include(pos Pos, kw, rest string, depth int) error {
	words, err := includeWords(rest)
	if err != nil {
		return errorf(pos, "%s: %v", kw, err)
	}
	if len(words) == 0 {
		return errorf(pos, "%s: no file name", kw)
	}
	if len(words) > 1 {
		p.warn(pos, kw, "only the first file name is used; ignored: %s", strings.Join(words[1:], " "))
	}
	if depth+1 > MaxIncludeDepth {
		return errorf(pos, "includes nest more than %d deep", MaxIncludeDepth)
	}
	pattern := words[0]
	if len(pattern) > maxPattern {
		return errorf(pos, "%s: file name longer than %d bytes", kw, maxPattern)
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(pos.File), pattern)
	}
	for _, pat := range expandBraces(pattern) {
		if !hasGlobMeta(pat) {
			if err := p.file(pat, pos, depth+1); err != nil {
				return err
			}
			continue
		}
		names, err := p.fs.Glob(pat)
		if err != nil {
			return errorf(pos, "%s %s: %v", kw, pat, err)
		}
		if len(names) == 0 {
			p.warn(pos, kw+" "+words[0], "no file matches %s", pat)
		}
		for _, name := range names {
			if err := p.file(name, pos, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// includeWords splits an include line's argument: quotes removed, comment
// dropped, braces kept (they are brace expansions here, not blocks).
func includeWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			in = true
		case c == '#' || c == '!':
			i = len(s)
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// expandBraces does csh-style brace expansion, "a{b,c}d" -> abd, acd, as
// keepalived's glob(GLOB_BRACE) does; at most 256 results.
func expandBraces(s string) []string {
	const max = 256
	out := []string{s}
	for round := 0; round < max; round++ {
		var next []string
		done := true
		for _, w := range out {
			pre, alts, post, ok := braceGroup(w)
			if !ok {
				next = append(next, w)
				continue
			}
			done = false
			for _, a := range alts {
				next = append(next, pre+a+post)
			}
		}
		if len(next) > max {
			return out
		}
		out = next
		if done {
			break
		}
	}
	return out
}

// braceGroup finds the first {x,y} with a comma at its own level.
func braceGroup(s string) (pre string, alts []string, post string, ok bool) {
	for start := 0; start < len(s); start++ {
		if s[start] != '{' {
			continue
		}
		level, last := 0, start+1
		var parts []string
		for i := start; i < len(s); i++ {
			switch s[i] {
			case '{':
				level++
			case ',':
				if level == 1 {
					parts = append(parts, s[last:i])
					last = i + 1
				}
			case '}':
				level--
				if level == 0 {
					if len(parts) == 0 {
						i = len(s) // "{x}" is literal; look further on
						break
					}
					parts = append(parts, s[last:i])
					return s[:start], parts, s[i+1:], true
				}
			}
		}
	}
	return "", nil, "", false
}

// topOnly are the blocks keepalived allows only at the top level.
var topOnly = map[string]bool{
	"global_defs": true, "vrrp_script": true, "vrrp_instance": true, "vrrp_sync_group": true,
	"virtual_server": true, "virtual_server_group": true, "vrrp_track_process": true, "bfd_instance": true,
}

type tokKind uint8

const (
	tokWord tokKind = iota
	tokOpen
	tokClose
)

type token struct {
	kind       tokKind
	text       string
	start, end int // byte offsets in the line
}

// tokenize splits a line: blanks separate words, '#' and '!' start a
// comment, '{' and '}' are tokens of their own, quoted parts (" or ') keep
// blanks and lose their quotes, and join the text around them.
func tokenize(line string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case isBlank(c):
			i++
			continue
		case c == '#' || c == '!':
			return toks, nil
		case c == '{':
			toks = append(toks, token{kind: tokOpen, text: "{", start: i, end: i + 1})
			i++
			continue
		case c == '}':
			toks = append(toks, token{kind: tokClose, text: "}", start: i, end: i + 1})
			i++
			continue
		}
		start := i
		var b strings.Builder
	word:
		for i < len(line) {
			c := line[i]
			switch {
			case isBlank(c), c == '#', c == '!', c == '{', c == '}':
				break word
			case c == '$' && i+1 < len(line) && line[i+1] == '{':
				// An undefined ${NAME} stays as it is, braces included.
				end := strings.IndexByte(line[i:], '}')
				if end < 0 {
					end = len(line) - i - 1
				}
				b.WriteString(line[i : i+end+1])
				i += end + 1
			case c == '"' || c == '\'':
				i++
				closed := false
				for i < len(line) {
					d := line[i]
					if d == c {
						closed = true
						i++
						break
					}
					if d == '\\' && i+1 < len(line) && (line[i+1] == c || line[i+1] == '\\') {
						b.WriteByte(line[i+1])
						i += 2
						continue
					}
					b.WriteByte(d)
					i++
				}
				if !closed {
					return nil, fmt.Errorf("unterminated %c quote", c)
				}
			default:
				b.WriteByte(c)
				i++
			}
		}
		toks = append(toks, token{kind: tokWord, text: b.String(), start: start, end: i})
	}
	return toks, nil
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// tokens adds a line's statements and braces to the tree.
func (p *parser) tokens(pos Pos, line string, toks []token) error {
	for i := 0; i < len(toks); {
		switch t := toks[i]; t.kind {
		case tokOpen:
			if p.last == nil {
				return errorf(pos, "unexpected {: no keyword before it")
			}
			if n := len(p.open); n > 0 && topOnly[p.last.Keyword] {
				// Most likely a '}' is missing above: say where.
				b := p.open[n-1]
				return errorf(p.last.Pos, "%s opens a block inside the block of %q (%s): a } is missing before this line", p.last.Keyword, b.Keyword, b.Pos)
			}
			p.last.HasBlock = true
			p.open = append(p.open, p.last)
			p.last = nil
			i++
		case tokClose:
			if len(p.open) == 0 {
				return errorf(pos, "unexpected }: no block is open")
			}
			p.open = p.open[:len(p.open)-1]
			p.last = nil
			i++
		default:
			j := i + 1
			for j < len(toks) && toks[j].kind == tokWord {
				j++
			}
			s := &Stmt{Pos: pos, Keyword: t.text, seq: p.seq}
			for _, a := range toks[i+1 : j] {
				s.Args = append(s.Args, a.text)
			}
			if j > i+1 {
				s.Raw = line[toks[i+1].start:toks[j-1].end]
			}
			if n := len(p.open); n > 0 {
				p.open[n-1].Block = append(p.open[n-1].Block, s)
			} else {
				p.root = append(p.root, s)
			}
			p.last = s
			i = j
		}
	}
	return nil
}
