package keepalived

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/vipd/vipd/internal/config"
)

// The converted configuration, in the field order of configs/vipd.yaml
// and internal/config, with the comments that go with each part.

type document struct {
	source    string
	header    []string
	checks    []*outCheck
	instances []*outInstance
	groups    []*outGroup
	vservers  []*outVS
	trailer   []string
}

type outGroup struct {
	head    []string
	name    string
	members []string // vipd instance names
	notify  outNotify
}

type outCheck struct {
	head              []string
	name              string
	interval, timeout time.Duration // 0: not written
	fall, rise        int
	command           []string
}

type outInstance struct {
	head             []string
	name             string
	iface            string
	vrid             int
	priority         int
	advert           time.Duration // 0: not written
	noPreempt        bool
	preemptDelay     time.Duration
	hasPreemptDelay  bool
	vips             []outItem
	announceCount    int           // 0: not written
	announceInterval time.Duration // 0: not written
	announceRefresh  time.Duration // 0: not written
	trackChecks      []outTrack
	trackIfaces      []outTrack
	notify           outNotify
	version          int
	authPass         string
	hmac             *outHMAC // nil: not written
	peers            []outItem
	source           netip.Addr
	v3ChecksumAsV2   bool
	virtualMAC       bool
	vmacIface        string // "": vipd's default
	// routes and rules are the entries written, converted or not;
	// routeList and ruleList the converted ones.
	routes, rules []outEntry
	routeList     []config.Route
	ruleList      []config.Rule
	// notes are comments written above a field, by field name.
	notes map[string][]string
	// tail is comments written after the last field.
	tail []string

	family string
	// subject and stmt are the vrrp_instance's, for findings made once
	// it is converted.
	subject string
	stmt    *Stmt
}

type outItem struct {
	value string
	head  []string
}

type outTrack struct {
	name   string
	weight int
	head   []string
	stmt   *Stmt // where it was tracked
}

type outNotify struct {
	command, master, backup, fault, stop []string
}

func (n outNotify) empty() bool {
	return n.command == nil && n.master == nil && n.backup == nil && n.fault == nil && n.stop == nil
}

// write writes n as a notify field at indent, if it is not empty.
func (n outNotify) write(line func(int, string), indent int) {
	if n.empty() {
		return
	}
	line(indent, "notify:")
	for _, c := range []struct {
		key  string
		argv []string
	}{{"command", n.command}, {"master", n.master}, {"backup", n.backup}, {"fault", n.fault}, {"stop", n.stop}} {
		if c.argv != nil {
			line(indent+2, c.key+": "+flowList(c.argv))
		}
	}
}

// note adds comments above a field.
func (in *outInstance) note(field string, comments ...string) {
	if in.notes == nil {
		in.notes = map[string][]string{}
	}
	in.notes[field] = append(in.notes[field], comments...)
}

type yamlWriter struct {
	b bytes.Buffer
}

func (w *yamlWriter) line(indent int, s string) {
	w.b.WriteString(strings.Repeat(" ", indent))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *yamlWriter) comments(indent int, lines []string) {
	for _, l := range lines {
		w.line(indent, "# "+commentText(l))
	}
}

func (w *yamlWriter) field(indent int, key, value string) {
	w.line(indent, key+": "+value)
}

func (d *document) marshal() []byte {
	var w yamlWriter
	w.comments(0, []string{
		"Converted from " + d.source + " by vipd convert-keepalived.",
		`Read every "keepalived:" and "not converted:" comment, then: vipd validate --config FILE`,
	})
	if len(d.header) > 0 {
		w.line(0, "#")
		w.comments(0, d.header)
	}
	section(&w, "checks", d.checks, (*yamlWriter).check)
	section(&w, "instances", d.instances, func(w *yamlWriter, in *outInstance) { in.write(w) })
	section(&w, "sync_groups", d.groups, (*yamlWriter).group)
	section(&w, "virtual_servers", d.vservers, func(w *yamlWriter, v *outVS) { v.write(w) })
	if len(d.trailer) > 0 {
		w.line(0, "")
		w.comments(0, d.trailer)
	}
	return w.b.Bytes()
}

// section writes a top-level list, a blank line before it and between its
// items; nothing when it is empty.
func section[T any](w *yamlWriter, key string, list []T, write func(*yamlWriter, T)) {
	if len(list) == 0 {
		return
	}
	w.line(0, "")
	w.line(0, key+":")
	for i, x := range list {
		if i > 0 {
			w.line(0, "")
		}
		write(w, x)
	}
}

func (w *yamlWriter) check(c *outCheck) {
	w.comments(2, c.head)
	w.field(2, "- name", scalar(c.name))
	if c.interval > 0 {
		w.field(4, "interval", duration(c.interval))
	}
	if c.timeout > 0 {
		w.field(4, "timeout", duration(c.timeout))
	}
	w.field(4, "fall", strconv.Itoa(c.fall))
	w.field(4, "rise", strconv.Itoa(c.rise))
	w.line(4, "exec:")
	w.field(6, "command", flowList(c.command))
}

func (w *yamlWriter) group(g *outGroup) {
	w.comments(2, g.head)
	w.field(2, "- name", scalar(g.name))
	names := make([]string, len(g.members))
	for j, m := range g.members {
		names[j] = scalar(m)
	}
	w.field(4, "instances", "["+strings.Join(names, ", ")+"]")
	g.notify.write(w.line, 4)
}

func (in *outInstance) write(w *yamlWriter) {
	const ind = 4
	w.comments(2, in.head)
	w.field(2, "- name", scalar(in.name))
	f := func(key, value string) {
		w.comments(ind, in.notes[key])
		w.field(ind, key, value)
	}
	f("interface", scalar(in.iface))
	f("vrid", strconv.Itoa(in.vrid))
	f("priority", strconv.Itoa(in.priority))
	if in.advert > 0 {
		f("advert_interval", duration(in.advert))
	}
	if in.noPreempt || in.notes["preempt"] != nil {
		f("preempt", strconv.FormatBool(!in.noPreempt))
	}
	if in.hasPreemptDelay {
		f("preempt_delay", duration(in.preemptDelay))
	}
	w.comments(ind, in.notes["vips"])
	w.line(ind, "vips:")
	items(w, ind+2, in.vips)
	if in.announceCount > 0 || in.announceInterval > 0 || in.announceRefresh > 0 {
		w.comments(ind, in.notes["announce"])
		w.line(ind, "announce:")
		if in.announceCount > 0 {
			w.field(ind+2, "count", strconv.Itoa(in.announceCount))
		}
		if in.announceInterval > 0 {
			w.field(ind+2, "interval", duration(in.announceInterval))
		}
		if in.announceRefresh > 0 {
			w.field(ind+2, "refresh", duration(in.announceRefresh))
		}
	}
	tracks(w, ind, "track_checks", "check", in.trackChecks, in.notes)
	tracks(w, ind, "track_interfaces", "interface", in.trackIfaces, in.notes)
	if !in.notify.empty() {
		w.comments(ind, in.notes["notify"])
		in.notify.write(w.line, ind)
	}
	f("version", strconv.Itoa(in.version))
	if in.authPass != "" {
		f("auth_pass", scalar(in.authPass))
	}
	if in.hmac != nil {
		w.comments(ind, in.notes["auth_hmac"])
		in.hmac.write(w, ind)
	}
	if len(in.peers) > 0 {
		w.comments(ind, in.notes["unicast_peers"])
		w.line(ind, "unicast_peers:")
		items(w, ind+2, in.peers)
	}
	if in.source.IsValid() {
		f("unicast_source", scalar(in.source.String()))
	}
	if in.v3ChecksumAsV2 {
		f("v3_checksum_as_v2", "true")
	}
	if in.virtualMAC {
		f("virtual_mac", "true")
		if in.vmacIface != "" {
			w.field(ind, "virtual_mac_interface", scalar(in.vmacIface))
		}
	}
	entries(w, ind, "routes", in.routes)
	entries(w, ind, "rules", in.rules)
	w.comments(ind, in.tail)
}

// entries writes a list of flow mappings, with the comments of the lines
// not converted in their place; only the comments when none is converted.
func entries(w *yamlWriter, indent int, field string, list []outEntry) {
	if !slices.ContainsFunc(list, func(e outEntry) bool { return e.value != "" }) {
		for _, e := range list {
			w.comments(indent, e.head)
		}
		return
	}
	w.line(indent, field+":")
	for _, e := range list {
		w.comments(indent+2, e.head)
		if e.value != "" {
			w.line(indent+2, "- "+e.value)
		}
	}
}

func items(w *yamlWriter, indent int, list []outItem) {
	for _, it := range list {
		w.comments(indent, it.head)
		w.line(indent, "- "+scalar(it.value))
	}
}

func tracks(w *yamlWriter, indent int, field, key string, list []outTrack, notes map[string][]string) {
	if len(list) == 0 {
		return
	}
	w.comments(indent, notes[field])
	w.line(indent, field+":")
	for _, t := range list {
		w.comments(indent+2, t.head)
		w.field(indent+2, "- "+key, scalar(t.name))
		if t.weight != 0 {
			w.field(indent+4, "weight", strconv.Itoa(t.weight))
		}
	}
}

// duration renders d as vipd reads it: 100ms, 1.5s, 5m (not 5m0s).
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// flowList renders argv as a flow sequence, [prog, arg, ...].
func flowList(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if plainFlow(a) {
			parts[i] = a
		} else {
			parts[i] = dquote(a)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// scalar renders s as a YAML string: plain when that reads back as the
// same string, double-quoted otherwise.
func scalar(s string) string {
	if plainBlock(s) {
		return s
	}
	return dquote(s)
}

func plainChars(s string, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_./+-"+extra, c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// plainBlock says whether s can be written unquoted as a mapping value or
// block sequence item: safe characters only, and yaml.v3 must read it back
// as the same string (not 0x1F, true, 1e3, ...).
func plainBlock(s string) bool {
	if !plainChars(s, ":") || strings.HasSuffix(s, ":") || s[0] == ':' {
		return false
	}
	return readsAsString(s)
}

// plainFlow is plainBlock inside [ ]: no ':' at all.
func plainFlow(s string) bool {
	return plainChars(s, "") && readsAsString(s)
}

func readsAsString(s string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("k: "+s+"\n"), &n); err != nil {
		return false
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
		return false
	}
	v := n.Content[0].Content[1]
	return v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value == s && v.Style == 0
}

// dquote renders s as a YAML double-quoted scalar. s must be valid UTF-8
// (Parse makes sure of that).
func dquote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case printable(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// commentText makes s safe inside a YAML comment: one line of printable
// characters, anything else escaped.
func commentText(s string) string {
	ok := true
	for _, r := range s {
		if !printable(r) && r != '\t' {
			ok = false
			break
		}
	}
	if ok && utf8.ValidString(s) {
		return s
	}
	q := dquote(s)
	return q[1 : len(q)-1]
}

// printable is the set of characters YAML 1.2 allows in a stream, without
// the byte-order mark, and NEL and the line and paragraph separators
// (U+2028, U+2029), which yaml.v3 treats as line breaks.
func printable(r rune) bool {
	return r >= 0x20 && r <= 0x7e ||
		r >= 0xa0 && r <= 0xd7ff && r != 0x2028 && r != 0x2029 ||
		r >= 0xe000 && r <= 0xfffd && r != 0xfeff ||
		r >= 0x10000 && r <= 0x10ffff
}
