package keepalived

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// memFS is an in-memory FS; Glob matches with path.Match.
type memFS map[string]string

func (m memFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	var out []string
	for name := range m {
		if ok, err := path.Match(pattern, name); err != nil {
			return nil, err
		} else if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// tree renders statements compactly: kw[args]{...}.
func tree(ss []*Stmt) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Keyword)
		if len(s.Args) > 0 {
			b.WriteString("[" + strings.Join(s.Args, "|") + "]")
		}
		if s.HasBlock {
			b.WriteString("{" + tree(s.Block) + "}")
		}
	}
	return b.String()
}

func TestParseSyntax(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"block", "a b {\n c d\n}\n", "a[b]{c[d]}"},
		{"one line", "virtual_ipaddress { 192.0.2.1/24 }", "virtual_ipaddress{192.0.2.1/24}"},
		{"brace next line", "vrrp_instance X\n{\n state BACKUP\n}", "vrrp_instance[X]{state[BACKUP]}"},
		{"brace glued", "vrrp_instance X{\n}", "vrrp_instance[X]{}"},
		{"comments", "a b # c {\n! d }\nx ! y", "a[b] x"},
		{"comment mid-word", "auth_pass ab#cd", "auth_pass[ab]"},
		{"quotes", `script "a b" 'c d'e "x#y!{}"`, "script[a b|c de|x#y!{}]"},
		{"quotes joined", `x abcd" efg h jkl "mnop`, "x[abcd efg h jkl mnop]"},
		{"escaped quote", `script "say \"hi\""`, `script[say "hi"]`},
		{"undefined param", `interface ${IF}`, "interface[${IF}]"},
		{"crlf", "a {\r\n b\r\n}\r\n", "a{b}"},
		{"empty block", "track_script {\n}", "track_script{}"},
		{"close then word", "a {\n} b", "a{} b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseBytes("k.conf", []byte(tc.in), Options{FS: memFS{}})
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(cfg.Stmts); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseRaw(t *testing.T) {
	cfg, err := ParseBytes("k.conf", []byte(`script   "/bin/x 'a b'"  c   # comment`), Options{FS: memFS{}})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Stmts[0]; s.Raw != `"/bin/x 'a b'"  c` {
		t.Errorf("Raw %q", s.Raw)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   memFS
		want string
	}{
		{"unclosed", memFS{"k.conf": "a {\n b {\n}\n"}, "k.conf:1: missing }: the block of \"a\" opened here is not closed"},
		{"extra close", memFS{"k.conf": "a {\n}\n}\n"}, "k.conf:3: unexpected }: no block is open"},
		{"open first", memFS{"k.conf": "{\n"}, "k.conf:1: unexpected {: no keyword before it"},
		{"quote", memFS{"k.conf": "a\nscript \"x\n"}, "k.conf:2: unterminated \" quote"},
		{"missing include", memFS{"k.conf": "include other.conf\n"}, "k.conf:1: include other.conf: file does not exist"},
		{"self include", memFS{"k.conf": "\ninclude k.conf\n"}, "k.conf:2: include cycle: k.conf -> k.conf"},
		{"cycle", memFS{"k.conf": "include d/a\n", "d/a": "include b\n", "d/b": "x\ninclude a\n"}, "d/b:2: include cycle: d/a -> d/b -> d/a"},
		{"seq", memFS{"k.conf": "~SEQ(N, 1, 3) x\n"}, "k.conf:1: ~SEQ is not supported: expand the sequence by hand"},
		{"recursive param", memFS{"k.conf": "$A=x $A\n$A\n"}, "k.conf:2: parameter substitution does not end (a parameter that refers to itself?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("k.conf", Options{FS: tc.fs})
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want an *Error", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestIncludeDepth(t *testing.T) {
	m := memFS{"k.conf": "include 1\n"}
	for i := 1; i <= MaxIncludeDepth+1; i++ {
		m[strconv.Itoa(i)] = "include " + strconv.Itoa(i+1) + "\n"
	}
	_, err := Parse("k.conf", Options{FS: m})
	if err == nil || !strings.Contains(err.Error(), "includes nest more than 16 deep") {
		t.Fatalf("error %v", err)
	}
}

func TestIncludeSplicesIntoBlock(t *testing.T) {
	m := memFS{
		"/etc/k/k.conf":         "vrrp_instance X {\n  include parts/{vips,prio}.inc\n}\ninclude none/*.conf\n",
		"/etc/k/parts/vips.inc": "virtual_ipaddress {\n 192.0.2.1\n}\n",
		"/etc/k/parts/prio.inc": "priority 10\n",
	}
	cfg, err := Parse("/etc/k/k.conf", Options{FS: m})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tree(cfg.Stmts), "vrrp_instance[X]{virtual_ipaddress{192.0.2.1} priority[10]}"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := cfg.Stmts[0].Block[1].Pos; got != (Pos{"/etc/k/parts/prio.inc", 1}) {
		t.Errorf("included statement at %v", got)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].String() != "/etc/k/k.conf:4: include none/*.conf: no file matches /etc/k/none/*.conf" {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestConditionalAndParams(t *testing.T) {
	const conf = `@main $PRIO=240
@^main $PRIO=100
$IF=eth0
$VIPS= \
    192.0.2.1 \
    @main 192.0.2.2
$UNUSED=x
vrrp_instance X {
    interface $IF
    priority ${PRIO}
    notify "/bin/echo $HOME $UNUSED"
    virtual_ipaddress {
        $VIPS
    }
}
`
	for _, tc := range []struct {
		id, want string
		warns    int
	}{
		{"main", "vrrp_instance[X]{interface[eth0] priority[240] notify[/bin/echo $HOME $UNUSED] virtual_ipaddress{192.0.2.1 192.0.2.2}}", 0},
		{"backup", "vrrp_instance[X]{interface[eth0] priority[100] notify[/bin/echo $HOME $UNUSED] virtual_ipaddress{192.0.2.1}}", 0},
		{"", "vrrp_instance[X]{interface[eth0] priority[100] notify[/bin/echo $HOME $UNUSED] virtual_ipaddress{192.0.2.1}}", 3},
	} {
		cfg, err := ParseBytes("k.conf", []byte(conf), Options{ConfigID: tc.id, FS: memFS{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := tree(cfg.Stmts); got != tc.want {
			t.Errorf("config id %q: got\n%s\nwant\n%s", tc.id, got, tc.want)
		}
		if len(cfg.Warnings) != tc.warns {
			t.Errorf("config id %q: warnings %v", tc.id, cfg.Warnings)
		}
	}
}

func TestExpandBraces(t *testing.T) {
	for in, want := range map[string][]string{
		"a":             {"a"},
		"a{b,c}d":       {"abd", "acd"},
		"{a,b}{1,2}":    {"a1", "a2", "b1", "b2"},
		"x{a,{b,c}}":    {"xa", "xb", "xc"},
		"{x}{a,b}":      {"{x}a", "{x}b"},
		"a{b":           {"a{b"},
		"/etc/{,c}.d/*": {"/etc/.d/*", "/etc/c.d/*"},
	} {
		if got := expandBraces(in); !cmp.Equal(got, want) {
			t.Errorf("expandBraces(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in    string
		argv  []string
		shell bool
	}{
		{"killall -0 haproxy", []string{"killall", "-0", "haproxy"}, false},
		{"  /usr/bin/curl   -sfk https://127.0.0.1:6443/healthz ", []string{"/usr/bin/curl", "-sfk", "https://127.0.0.1:6443/healthz"}, false},
		{`'/usr/local/bin/k0s' keepalived-setstate -r '/run/k0s' -s MASTER`, []string{"/usr/local/bin/k0s", "keepalived-setstate", "-r", "/run/k0s", "-s", "MASTER"}, false},
		{`/bin/sh -c 'pidof haproxy || exit 1'`, []string{"/bin/sh", "-c", "pidof haproxy || exit 1"}, false},
		{`echo "a  b" c\ d`, []string{"echo", "a  b", "c d"}, false},
		{`echo "\"q\" \\"`, []string{"echo", `"q" \`}, false},
		{`echo a=b`, []string{"echo", "a=b"}, false},
		{"", nil, false},
		{"pidof haproxy || exit 1", nil, true},
		{"a | b", nil, true},
		{"a > /dev/null", nil, true},
		{"a; b", nil, true},
		{"a && b", nil, true},
		{"a &", nil, true},
		{"echo $HOME", nil, true},
		{`echo "$HOME"`, nil, true},
		{"echo `id`", nil, true},
		{"ls *.conf", nil, true},
		{"cd ~", nil, true},
		{"X=1 cmd", nil, true},
		{"! false", nil, true},
		{"a # comment", nil, true},
		{"echo 'open", nil, true},
		{`echo "open`, nil, true},
		{`echo \`, nil, true},
	} {
		argv, shell := splitCommand(tc.in)
		if shell != tc.shell || !tc.shell && !cmp.Equal(argv, tc.argv) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q, %v", tc.in, argv, shell, tc.argv, tc.shell)
		}
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"VI_1":            "VI_1",
		"1111":            `"1111"`,
		"true":            `"true"`,
		"null":            `"null"`,
		"0x1F":            `"0x1F"`,
		"1e3":             `"1e3"`,
		"-0":              `"-0"`,
		"-sfk":            "-sfk",
		"2001:db8::1/64":  "2001:db8::1/64",
		"eth0:":           `"eth0:"`,
		"a b":             `"a b"`,
		`x"y\z`:           `"x\"y\\z"`,
		"tab\there":       `"tab\there"`,
		"\x01\x7f\u0085é": `"\x01\x7f\x85é"`,
	} {
		if got := scalar(in); got != want {
			t.Errorf("scalar(%q) = %s, want %s", in, got, want)
		}
	}
	if got := flowList([]string{"curl", "-sfk", "https://x:1/h", "a,b"}); got != `[curl, -sfk, "https://x:1/h", "a,b"]` {
		t.Errorf("flowList = %s", got)
	}
}
