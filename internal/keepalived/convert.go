package keepalived

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vipd/vipd/internal/config"
)

var (
	// ErrNoInstances is returned when no vrrp_instance could be converted;
	// the warnings say why.
	ErrNoInstances = errors.New("no vrrp_instance could be converted")
	// ErrInvalidOutput means the converter wrote YAML that vipd rejects or
	// reads differently: a bug in the converter.
	ErrInvalidOutput = errors.New("the converted configuration does not validate (a converter bug, please report it)")
)

// Result is a converted configuration.
type Result struct {
	YAML []byte
	// Warnings are everything not converted, or converted with a change
	// in behaviour, in the order of the input.
	Warnings  []Finding
	Instances int
	Checks    int
}

// Convert turns cfg's VRRP instances and the scripts they track into a
// vipd configuration, which it checks with config.Parse. The Result holds
// the warnings even when the error is not nil.
func Convert(cfg *Config) (*Result, error) {
	c := &converter{
		cfg:       cfg,
		warns:     slices.Clone(cfg.Warnings),
		scripts:   map[string]*vscript{},
		groups:    map[string][]*Stmt{},
		converted: map[string]*outInstance{},
		names:     map[string]bool{},
		vsNames:   map[string]bool{},
		vsKeys:    map[string]Pos{},
		vrids:     map[vridKey]string{},
		vips:      map[netip.Addr]string{},
	}
	c.autoPrio = autoPriorities(cfg.Stmts)
	doc := c.convert()
	slices.SortStableFunc(c.warns, func(a, b Finding) int { return a.seq - b.seq })
	res := &Result{Warnings: c.warns, Instances: len(doc.instances), Checks: len(doc.checks)}
	if len(doc.instances) == 0 {
		return res, ErrNoInstances
	}
	res.YAML = doc.marshal()
	if err := verify(res.YAML, doc); err != nil {
		return res, fmt.Errorf("%w: %v", ErrInvalidOutput, err)
	}
	return res, nil
}

type vridKey struct {
	iface, family string
	vrid          int
}

type converter struct {
	cfg    *Config
	warns  []Finding
	global globals

	// autoPrio are the preferences keepalived gives the rules without
	// one, by line.
	autoPrio map[*Stmt]uint64

	scripts    map[string]*vscript // by keepalived name
	scriptList []*vscript
	checkNames map[string]bool
	groups     map[string][]*Stmt // sync groups by member instance name
	syncGroups []*syncIn
	// converted are the converted instances by keepalived name.
	converted map[string]*outInstance
	// instances are the vrrp_instance blocks, converted once every
	// vrrp_script is read.
	instances []*Stmt

	names map[string]bool
	// vservers are the converted virtual_server blocks; vsNames their
	// names.
	vservers []*outVS
	vsNames  map[string]bool
	vsKeys   map[string]Pos // protocol, address and port: where
	vrids    map[vridKey]string
	vips     map[netip.Addr]string
}

// globals are the settings of global_defs that instances inherit.
type globals struct {
	version      int
	versionStmt  *Stmt
	garpRepeat   int
	garpInterval time.Duration // IPv4: vrrp_garp_interval
	gnaInterval  time.Duration // IPv6: vrrp_gna_interval
	minGarp      bool
	// vrrp_garp_master_refresh, the refresh of every instance without
	// its own garp_master_refresh.
	garpRefresh     time.Duration
	garpRefreshStmt *Stmt
}

// vscript is a vrrp_script and the check it becomes.
type vscript struct {
	stmt    *Stmt
	kname   string
	check   outCheck
	weight  int
	reverse bool
	ok      bool
	used    bool
}

// report records f, found at s, as a warning (unless it is none), and
// returns the comment that records it in the output.
func (c *converter) report(s *Stmt, f Finding) string {
	f.Pos, f.seq = s.Pos, s.seq
	if f.warns() {
		c.warns = append(c.warns, f)
	}
	return f.Comment()
}

// warn reports a change about what (a setting, or "") that no comment
// records.
func (c *converter) warn(s *Stmt, subject, what, format string, args ...any) {
	c.report(s, Finding{Subject: subject, What: what, Msg: fmt.Sprintf(format, args...)})
}

// ignored reports a statement, or a part of one, that is skipped.
func (c *converter) ignored(s *Stmt, subject, what, format string, args ...any) {
	c.report(s, Finding{Subject: subject, What: what, Kind: Ignored, Msg: fmt.Sprintf(format, args...)})
}

// notConverted reports a statement vipd has no equivalent for, in a block
// (subject) or at the top level (subject "").
func (c *converter) notConverted(s *Stmt, subject, why string) string {
	return c.report(s, Finding{Subject: subject, What: short(s.Line()), Kind: NotConverted, Msg: why, Note: why})
}

// same records a statement that needs nothing in vipd, which does the
// same anyway.
func (c *converter) same(s *Stmt, note string) string {
	return c.report(s, Finding{What: s.Line(), Kind: Same, Note: note})
}

// short cuts a statement line for messages.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (c *converter) convert() *document {
	doc := &document{source: c.cfg.File}
	doc.trailer = topKeywords.walk(c, doc, c.cfg.Stmts, otherTop)
	for _, s := range c.instances {
		in, f := c.instance(s)
		if in == nil {
			// The warning points at the line at fault, the comment at
			// the instance.
			f.Pos = s.Pos
			doc.trailer = append(doc.trailer, f.Comment())
			continue
		}
		doc.instances = append(doc.instances, in)
		c.converted[strings.Join(s.Args, " ")] = in
	}
	c.finishGroups(doc)
	doc.vservers = c.vservers
	for _, vs := range c.scriptList {
		switch {
		case vs.used:
			doc.checks = append(doc.checks, &vs.check)
		case vs.ok:
			doc.trailer = append(doc.trailer, c.notConverted(vs.stmt, "", "no converted vrrp_instance tracks it (keepalived runs only tracked scripts)"))
		}
	}
	return doc
}

// sanitize makes a keepalived name a valid vipd name (1 to 64 of
// A-Z a-z 0-9 _ . -), unique within used.
func sanitize(name, fallback string, used map[string]bool) string {
	var b strings.Builder
	for _, r := range name {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" {
		s = fallback
	}
	if len(s) > 64 {
		s = s[:64]
	}
	base := s
	for i := 2; used[s]; i++ {
		suffix := "-" + strconv.Itoa(i)
		s = base[:min(len(base), 64-len(suffix))] + suffix
	}
	used[s] = true
	return s
}

// scriptIn is a vrrp_script while its block is read.
type scriptIn struct {
	*vscript
	subject     string
	interval    time.Duration
	timeout     time.Duration
	timeoutStmt *Stmt
	riseFall    map[string]bool // which of rise and fall are given
}

// script reads a vrrp_script into a check.
func (c *converter) script(s *Stmt) {
	kname := strings.Join(s.Args, " ")
	subject := strings.TrimSpace("vrrp_script " + kname)
	if _, dup := c.scripts[kname]; dup {
		c.ignored(s, subject, "", "defined again: not converted (the first definition is used)")
		return
	}
	if c.checkNames == nil {
		c.checkNames = map[string]bool{}
	}
	vs := &vscript{stmt: s, kname: kname}
	c.scripts[kname] = vs
	c.scriptList = append(c.scriptList, vs)
	ch := &vs.check
	ch.head = []string{fmt.Sprintf("vrrp_script %s (%s)", kname, s.Pos)}
	ch.fall, ch.rise = 1, 1 // keepalived's defaults; vipd's are 3 and 2
	x := &scriptIn{vscript: vs, subject: subject, interval: time.Second, riseFall: map[string]bool{}}
	ch.head = append(ch.head, scriptKeywords.walk(c, x, s.Block, otherScript)...)
	if !x.riseFall["fall"] || !x.riseFall["rise"] {
		ch.head = append(ch.head, "fall and rise default to 1 in keepalived (3 and 2 in vipd)")
	}
	if x.timeoutStmt != nil {
		timeout := x.timeout
		if timeout >= x.interval {
			adj := x.interval / 2
			ch.head = append(ch.head, c.report(x.timeoutStmt, Finding{Subject: subject, What: "timeout " + duration(timeout), Msg: fmt.Sprintf(" is not shorter than the interval %s, as vipd requires: converted as %s (or raise the interval)", duration(x.interval), duration(adj)), Note: "; vipd needs it shorter than the interval"}))
			timeout = adj
		}
		ch.timeout = timeout
	}
	if ch.command == nil {
		c.ignored(s, subject, "", "no usable script line: not converted (keepalived drops it too)")
		return
	}
	ch.name = sanitize(kname, "check", c.checkNames)
	if ch.name != kname {
		c.warn(s, subject, "", "renamed %q: vipd check names are 1 to 64 of A-Z a-z 0-9 _ . -", ch.name)
	}
	vs.ok = true
}

// command turns a keepalived script string into argv; a script that needs
// a shell runs under /bin/sh -c.
func (c *converter) command(s *Stmt, subject, text string) []string {
	argv, shell := splitCommand(text)
	if shell {
		c.warn(s, subject, s.Keyword, "uses shell syntax, converted to [/bin/sh, -c, ...] (keepalived 2.x runs scripts without a shell: check that this is what you meant)")
		return []string{"/bin/sh", "-c", text}
	}
	if len(argv) == 0 {
		c.ignored(s, subject, s.Keyword, "empty command; ignored")
		return nil
	}
	return argv
}

// syncIn is a vrrp_sync_group as read, converted once its members are.
type syncIn struct {
	stmt           *Stmt
	kname, subject string
	members        []string // keepalived instance names
	notify         []*Stmt
	trackScripts   []*Stmt
	trackIfaces    []*Stmt
	trackingWeight *Stmt
	head           []string
}

// syncGroup reads a vrrp_sync_group.
func (c *converter) syncGroup(s *Stmt) {
	g := &syncIn{stmt: s, kname: strings.Join(s.Args, " ")}
	g.subject = strings.TrimSpace("vrrp_sync_group " + g.kname)
	g.head = groupKeywords.walk(c, g, s.Block, otherGroup)
	c.syncGroups = append(c.syncGroups, g)
}

// instSrc is what a vrrp_instance block says, gathered before
// converting, since the VIPs decide how the rest is read.
type instSrc struct {
	stmt    *Stmt
	kname   string
	subject string

	state                       string
	stateStmt                   *Stmt
	iface                       string
	ifaceStmt                   *Stmt
	vrid                        int
	vridStmt                    *Stmt
	priority                    int
	priorityStmt                *Stmt
	advert                      time.Duration
	advertStmt                  *Stmt
	nopreempt                   *Stmt
	preemptDelay                time.Duration
	preemptDelayStmt            *Stmt
	vips, excluded              []*Stmt
	peerBlock, src, auth, hmac  *Stmt
	peers                       []*Stmt
	version                     int
	versionStmt                 *Stmt
	trackScripts, trackIfaces   []*Stmt
	notify                      []*Stmt
	garpRepeat                  int
	garpRepeatStmt, oldChecksum *Stmt
	garpRefresh                 time.Duration
	garpRefreshStmt             *Stmt
	garpRefreshRepeat           int
	garpRefreshRepeatStmt       *Stmt
	vroutes, vrules             []*Stmt
	vmac                        *Stmt
}

// gather reads a vrrp_instance block; what needs no further context is
// noted in the instance's tail right away.
func (c *converter) gather(s *Stmt, in *outInstance) *instSrc {
	src := &instSrc{stmt: s, kname: strings.Join(s.Args, " "), priority: 100}
	src.subject = strings.TrimSpace("vrrp_instance " + src.kname)
	in.tail = append(in.tail, instanceKeywords.walk(c, src, s.Block, otherInstance)...)
	return src
}

// vipIn is a VIP read from virtual_ipaddress.
type vipIn struct {
	prefix netip.Prefix
	dev    string
	stmt   *Stmt
	notes  []string
}

// instance converts a vrrp_instance, or returns nil and the finding
// that says why not, after warning.
func (c *converter) instance(s *Stmt) (*outInstance, Finding) {
	in := &outInstance{notes: map[string][]string{}}
	src := c.gather(s, in)
	subject := src.subject
	fail := func(at *Stmt, format string, args ...any) (*outInstance, Finding) {
		why := fmt.Sprintf(format, args...)
		f := Finding{What: subject, Kind: NotConverted, Msg: why, Note: why}
		c.report(at, f)
		return nil, f
	}
	in.head = []string{fmt.Sprintf("vrrp_instance %s (%s)", src.kname, s.Pos)}

	// The VIPs decide the family. Like keepalived, ignore those of
	// another family than the first.
	var (
		vips    []vipIn
		dropped []netip.Prefix // VIPs keepalived advertises and vipd cannot
	)
	for _, v := range src.vips {
		vip, ok := c.vip(v, subject, in)
		if !ok {
			if vip.prefix.IsValid() {
				dropped = append(dropped, vip.prefix)
			}
			continue
		}
		f := config.FamilyOf(vip.prefix.Addr())
		if in.family == "" {
			in.family = f
		} else if f != in.family {
			in.tail = append(in.tail, c.report(v, Finding{Subject: subject, What: "virtual_ipaddress " + v.Keyword, Kind: NotConverted, Msg: fmt.Sprintf("%s, but the instance is %s from its first VIP; keepalived ignores it too (\"address family must match VRRP instance\"): give it its own instance and VRID", config.FamilyWord(f), config.FamilyWord(in.family)), Note: fmt.Sprintf("%s in an %s instance (keepalived ignores it too)", config.FamilyWord(f), config.FamilyWord(in.family))}))
			continue
		}
		vips = append(vips, vip)
	}
	for _, e := range src.excluded {
		var addrs []string
		for _, a := range e.Block {
			addrs = append(addrs, a.Line())
		}
		line := &Stmt{Pos: e.Pos, Keyword: e.Keyword, Raw: "{ " + strings.Join(addrs, "; ") + " }", seq: e.seq}
		in.tail = append(in.tail, c.notConverted(line, subject, excludedVIPs))
	}

	in.iface = src.iface
	if in.iface == "" {
		for _, v := range vips {
			if v.dev != "" {
				in.iface = v.dev
				in.note("interface", c.report(v.stmt, Finding{Subject: subject, Said: "no interface", Msg: fmt.Sprintf("using %s, the dev of the first VIP that has one", v.dev), Note: fmt.Sprintf("keepalived: no interface; %s is the dev of a VIP", v.dev)}))
				break
			}
		}
	}
	switch {
	case src.vridStmt == nil:
		return fail(s, "no valid virtual_router_id")
	case in.iface == "":
		return fail(s, "no interface, and no VIP names a dev")
	case len(vips) == 0:
		return fail(s, "no usable virtual_ipaddress (vipd needs at least one VIP)")
	}
	if err := checkInterface(in.iface); err != nil {
		at := src.ifaceStmt
		if at == nil {
			at = s
		}
		return fail(at, "%v", err)
	}
	in.vrid = src.vrid
	h, why := c.hmac(in, src.hmac, subject)
	if why != "" {
		return fail(src.hmac, "%s", why)
	}
	in.hmac = h

	// What must be unique across instances.
	key := vridKey{in.iface, in.family, in.vrid}
	if other, dup := c.vrids[key]; dup {
		return fail(src.vridStmt, "VRID %d is already used for %s on %s by %s", in.vrid, config.FamilyWord(in.family), in.iface, other)
	}
	seen := map[netip.Addr]bool{}
	for _, v := range vips {
		a := v.prefix.Addr()
		if seen[a] {
			c.ignored(v.stmt, subject, "virtual_ipaddress "+a.String(), "listed twice; converted once")
			continue
		}
		seen[a] = true
		if other, dup := c.vips[a]; dup {
			why := "already a VIP of " + other
			in.tail = append(in.tail, c.report(v.stmt, Finding{Subject: subject, What: "virtual_ipaddress " + a.String(), Kind: NotConverted, Msg: why, Note: why}))
			dropped = append(dropped, v.prefix)
			continue
		}
		item := outItem{value: v.prefix.String(), head: v.notes}
		if v.dev != "" && v.dev != in.iface {
			item.head = append([]string{c.report(v.stmt, Finding{Subject: subject, What: "dev " + v.dev, Said: fmt.Sprintf("virtual_ipaddress %s dev %s", a, v.dev), Msg: "vipd adds every VIP to the instance's interface, " + in.iface, Note: "; vipd adds it to " + in.iface})}, item.head...)
		}
		in.vips = append(in.vips, item)
	}
	if len(in.vips) == 0 {
		return fail(s, "every VIP belongs to an earlier instance")
	}

	var lost []string
	for _, p := range dropped {
		if config.FamilyOf(p.Addr()) == in.family {
			lost = append(lost, p.Addr().String())
		}
	}
	if len(lost) > 0 {
		in.note("vips", c.report(s, Finding{Subject: subject, Msg: fmt.Sprintf("vipd advertises fewer VIPs than keepalived (without %s): keepalived hosts of this group drop vipd's adverts (\"ip address associated with VRID not present in MASTER advert\") unless they set vrrp_skip_check_adv_addr; set it on them before mixing, or replace every host at once", strings.Join(lost, ", ")), Note: fmt.Sprintf("keepalived advertises %s too: see the warnings before mixing vipd and keepalived hosts", strings.Join(lost, ", "))}))
	}

	in.name = sanitize(src.kname, "instance", c.names)
	if in.name != src.kname {
		c.warn(s, subject, "", "renamed %q: vipd instance names are 1 to 64 of A-Z a-z 0-9 _ . -, unique", in.name)
		in.head = append(in.head, fmt.Sprintf("keepalived name: %q", src.kname))
	}
	c.vrids[key] = in.name
	for _, v := range in.vips {
		c.vips[netip.MustParsePrefix(v.value).Addr()] = in.name
	}

	c.version(in, src)
	c.priority(in, src)
	if src.advertStmt != nil {
		in.advert = c.advert(src.advertStmt, subject, src.advert, in.version)
	}
	c.preempt(in, src)
	c.announce(in, src)
	c.auth(in, src.auth, subject)
	c.peers(in, src.peerBlock, src.peers, src.src, subject)
	if a := src.oldChecksum; a != nil {
		if in.version == 3 && in.family == "ipv4" {
			in.v3ChecksumAsV2 = true
			in.note("v3_checksum_as_v2", c.same(a, ""))
		} else {
			in.tail = append(in.tail, c.notConverted(a, subject, "applies to IPv4 VRRPv3 only"))
		}
	}
	in.tail = append(in.tail, c.trackScripts(in, src.trackScripts, subject)...)
	in.tail = append(in.tail, c.trackInterfaces(in, src.trackIfaces, subject)...)
	if v := src.vmac; v != nil {
		in.virtualMAC = true
		if len(v.Args) > 0 {
			if err := checkInterface(v.Args[0]); err != nil {
				in.note("virtual_mac", c.report(v, Finding{Subject: subject, What: "use_vmac " + v.Args[0], Msg: err.Error() + "; vipd names it " + vmacName(in), Note: "; vipd names it " + vmacName(in)}))
			} else {
				in.vmacIface = v.Args[0]
			}
		}
		in.note("virtual_mac", c.same(v, "a macvlan carrying the virtual router MAC, up only while Master"))
		if in.family == "ipv4" {
			in.note("virtual_mac", "vipd sets arp_ignore=1 and arp_announce=2 on "+in.iface+" while it has a virtual MAC interface, as keepalived does")
		}
	}
	in.subject, in.stmt = subject, s
	c.notify(&in.notify, func(note string) { in.note("notify", note) }, src.notify, subject)
	c.vroutes(in, src.vroutes, subject)
	c.vrules(in, src.vrules, subject)
	return in, Finding{}
}

// version: keepalived's default is 2 for IPv4 (vrrp_version in
// global_defs changes it), and always 3 for IPv6.
func (c *converter) version(in *outInstance, src *instSrc) {
	switch {
	case in.family == "ipv6":
		in.version = 3
		if src.version == 2 {
			c.warn(src.versionStmt, src.subject, "version 2", "VRRPv2 is IPv4 only; keepalived uses version 3 for IPv6 too")
		}
		in.note("version", "keepalived always uses VRRPv3 for IPv6")
	case src.version != 0:
		in.version = src.version
	case c.global.version != 0:
		in.version = c.global.version
		in.note("version", fmt.Sprintf("from global_defs vrrp_version (%s)", c.global.versionStmt.Pos))
	default:
		in.version = 2
		in.note("version", "keepalived's default for IPv4 without vrrp_version: VRRPv2, so that vipd and keepalived hosts understand each other")
	}
}

func (c *converter) priority(in *outInstance, src *instSrc) {
	in.priority = src.priority
	if src.stateStmt != nil {
		in.note("priority", c.report(src.stateStmt, Finding{What: "state " + src.state, Kind: Same, Note: "vipd has no initial state; the highest priority becomes master"}))
	}
	if in.priority == 255 {
		in.note("priority", c.report(src.priorityStmt, Finding{Subject: src.subject, Said: "priority 255 (address owner)", Msg: " is not supported by vipd: converted as 254", Note: "keepalived: priority 255 (address owner), which vipd does not support"}))
		in.priority = 254
	}
}

// preempt mirrors keepalived, which clears nopreempt and preempt_delay for
// state MASTER, nopreempt for priority 255, and preempt_delay under
// nopreempt.
func (c *converter) preempt(in *outInstance, src *instSrc) {
	if a := src.nopreempt; a != nil {
		switch {
		case src.state == "MASTER":
			in.note("preempt", c.report(a, Finding{Subject: src.subject, What: "nopreempt", Msg: "keepalived ignores it with state MASTER (\"nopreempt will not work with initial state MASTER - clearing\"): converted as preempt: true, which is how keepalived behaves; write preempt: false if you want no preemption", Note: ", which keepalived ignores with state MASTER"}))
		case src.priority == 255:
			in.note("preempt", c.report(a, Finding{Subject: src.subject, What: "nopreempt", Msg: "keepalived ignores it at priority 255: converted as preempt: true", Note: ", which keepalived ignores at priority 255"}))
		default:
			in.noPreempt = true
		}
	}
	if a := src.preemptDelayStmt; a != nil {
		why := ""
		switch {
		case src.state == "MASTER":
			why = "keepalived ignores it with state MASTER"
		case in.noPreempt:
			why = "keepalived ignores it with nopreempt"
		default:
			in.preemptDelay, in.hasPreemptDelay = src.preemptDelay, true
			return
		}
		in.tail = append(in.tail, c.report(a, Finding{Subject: src.subject, What: a.Line(), Said: a.Keyword, Kind: NotConverted, Msg: why, Note: why}))
	}
}

// vip reads one virtual_ipaddress line: ADDRESS[/LEN] [dev D] [label L] ...
func (c *converter) vip(v *Stmt, subject string, in *outInstance) (vipIn, bool) {
	p, err := parseAddrPrefix(v.Keyword)
	if err == nil {
		err = vipProblem(p)
	}
	if err != nil {
		in.tail = append(in.tail, c.report(v, Finding{Subject: subject, What: "virtual_ipaddress " + short(v.Line()), Said: "virtual_ipaddress " + v.Keyword, Kind: NotConverted, Msg: err.Error(), Note: err.Error()}))
		return vipIn{prefix: p}, false // p is valid when vipd's rules refused it
	}
	vip := vipIn{prefix: p, stmt: v}
	var extras []string
	for i := 0; i < len(v.Args); i++ {
		opt := v.Args[i]
		f := vipOptions[opt]
		if f == nil {
			extras = append(extras, strings.TrimSpace(opt))
			continue
		}
		arg := ""
		if i+1 < len(v.Args) {
			arg = v.Args[i+1]
			i++
		}
		if x := f(&vip, opt, arg); x != "" {
			extras = append(extras, x)
		}
	}
	if len(extras) > 0 {
		x := strings.Join(extras, " ")
		const why = "vipd adds the address with its prefix length only"
		vip.notes = append(vip.notes, c.report(v, Finding{Subject: subject, What: x, Said: "virtual_ipaddress " + v.Keyword + ": " + x, Kind: NotConverted, Msg: why, Note: why}))
	}
	return vip, true
}

// vipOptions read the words after a VIP that take a value; each returns
// the option as vipd cannot express it, or "". Another word is an option
// without a value, which vipd cannot express either.
var vipOptions = map[string]func(vip *vipIn, opt, arg string) string{
	"dev": func(vip *vipIn, _, arg string) string {
		vip.dev = arg
		return ""
	},
	"scope": func(_ *vipIn, opt, arg string) string {
		if arg == "global" {
			return "" // keepalived's default, and the kernel's
		}
		return dropVIPOption(nil, opt, arg)
	},
	"label":         dropVIPOption,
	"brd":           dropVIPOption,
	"broadcast":     dropVIPOption,
	"peer":          dropVIPOption,
	"preferred_lft": dropVIPOption,
	"track_group":   dropVIPOption,
}

func dropVIPOption(_ *vipIn, opt, arg string) string {
	return strings.TrimSpace(opt + " " + arg)
}

func parseAddrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address/length")
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// vipProblem applies vipd's rules for VIPs (internal/config parseVIP).
func vipProblem(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case a.Is4In6():
		return errors.New("an IPv4-mapped IPv6 address")
	case a.Zone() != "":
		return errors.New("an address with a zone")
	case a.Is6() && a.IsLinkLocalUnicast():
		return errors.New("a link-local address: vipd does not add link-local VIPs (it sends from the interface's own link-local address)")
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("not usable as a VIP")
	case p.Bits() == 0:
		return errors.New("prefix length /0 is not allowed")
	}
	return nil
}

// checkInterface is the kernel's dev_valid_name, as vipd applies it.
func checkInterface(s string) error {
	switch {
	case s == "" || len(s) > 15:
		return fmt.Errorf("interface %q: a Linux interface name is 1 to 15 bytes", s)
	case s == "." || s == "..":
		return fmt.Errorf("interface %q is reserved", s)
	}
	for i := 0; i < len(s); i++ {
		// The kernel's isspace also counts byte 0xa0.
		if strings.IndexByte("/: \t\n\v\f\r\x00\xa0", s[i]) >= 0 {
			return fmt.Errorf("interface %q: no '/', ':' or white space allowed", s)
		}
	}
	return nil
}

// advert converts advert_int for the instance's version.
func (c *converter) advert(s *Stmt, subject string, d time.Duration, version int) time.Duration {
	var out time.Duration
	if version == 2 {
		// RFC 3768 §5.3.7: whole seconds, 1..255.
		out = max(time.Second, min(255*time.Second, d.Round(time.Second)))
	} else {
		// RFC 9568 §5.2.7: centiseconds, 1..4095.
		out = max(10*time.Millisecond, min(40950*time.Millisecond, d.Round(10*time.Millisecond)))
	}
	if out != d {
		c.warn(s, subject, "advert_int "+s.Args[0], "VRRPv%d cannot advertise that interval: converted as %s", version, duration(out))
	}
	return out
}

// announce: gratuitous ARP (or NA) rounds from garp_master_repeat and the
// global vrrp_garp_* settings; vipd's defaults otherwise.
func (c *converter) announce(in *outInstance, src *instSrc) {
	count := 0
	if c.global.minGarp {
		count = 1
	}
	if c.global.garpRepeat > 0 {
		count = c.global.garpRepeat
	}
	if a := src.garpRepeatStmt; a != nil {
		count = src.garpRepeat
		in.note("announce", c.same(a, ""))
	}
	if count > 100 {
		in.note("announce", c.report(src.stmt, Finding{Subject: src.subject, Said: fmt.Sprintf("gratuitous ARP repeat %d", count), Msg: "vipd sends at most 100 rounds: converted as 100", Note: fmt.Sprintf("keepalived sends %d; vipd at most 100", count)}))
		count = 100
	}
	in.announceCount = count
	interval := c.global.garpInterval
	if in.family == "ipv6" {
		interval = c.global.gnaInterval
	}
	if interval > 0 {
		in.announceInterval = max(10*time.Millisecond, min(10*time.Second, interval))
		if in.announceInterval != interval {
			in.note("announce", c.report(src.stmt, Finding{Subject: src.subject, Said: "gratuitous ARP/NA interval " + duration(interval), Msg: "vipd spaces rounds by 10ms..10s: converted as " + duration(in.announceInterval), Note: fmt.Sprintf("keepalived's interval %s is outside vipd's 10ms..10s", duration(interval))}))
		}
	}
	c.refresh(in, src)
}

// maxRefresh is the longest announce.refresh vipd takes.
const maxRefresh = 24 * time.Hour

// refresh: announce.refresh from garp_master_refresh, or the global
// vrrp_garp_master_refresh; keepalived's repeat of each refresh is one
// round in vipd.
func (c *converter) refresh(in *outInstance, src *instSrc) {
	refresh, from := c.global.garpRefresh, c.global.garpRefreshStmt
	if a := src.garpRefreshStmt; a != nil {
		refresh, from = src.garpRefresh, a
	}
	switch {
	case refresh > 0:
		if from == src.garpRefreshStmt {
			in.note("announce", c.same(from, ""))
		} else {
			in.note("announce", fmt.Sprintf("refresh from global_defs vrrp_garp_master_refresh (%s)", from.Pos))
		}
		if refresh > maxRefresh {
			in.note("announce", c.report(from, Finding{Subject: src.subject, Said: from.Line(), Msg: fmt.Sprintf("vipd refreshes at most every %s: converted as %s", duration(maxRefresh), duration(maxRefresh)), Note: fmt.Sprintf("keepalived refreshes every %s; vipd at most every %s", duration(refresh), duration(maxRefresh))}))
			refresh = maxRefresh
		}
		in.announceRefresh = refresh
	case from != nil && from == src.garpRefreshStmt:
		in.tail = append(in.tail, c.same(from, "no refresh, vipd's default"))
	}
	switch a := src.garpRefreshRepeatStmt; {
	case a == nil:
	case refresh == 0:
		in.tail = append(in.tail, c.same(a, "no effect without garp_master_refresh, in keepalived too"))
	default:
		in.note("announce", c.perRefresh(a, src.subject, src.garpRefreshRepeat))
	}
}

// refreshRepeat says what vipd does instead of n announcements per
// refresh.
func refreshRepeat(n int) string {
	return fmt.Sprintf("vipd announces the VIPs once per announce.refresh (one round: a gratuitous ARP request and reply, or an unsolicited NA, per VIP), where keepalived sends %d: converted as once", n)
}

func (c *converter) auth(in *outInstance, a *Stmt, subject string) {
	if a == nil {
		return
	}
	x := &authIn{subject: subject}
	in.tail = append(in.tail, authKeywords.walk(c, x, a.Block, otherAuth)...)
	typ, pass, typStmt, passStmt := x.typ, x.pass, x.typStmt, x.passStmt
	switch {
	case typ == "AH":
		in.tail = append(in.tail, c.report(typStmt, Finding{Subject: subject, What: "authentication { auth_type AH }", Said: "authentication AH", Kind: NotConverted, Msg: "vipd does not support IPsec AH, so it cannot talk to these keepalived hosts; remove authentication from them first (or use PASS)", Note: "unsupported"}))
	case typ == "":
		c.ignored(a, subject, "authentication", "no auth_type, so keepalived authenticates nothing: not converted")
	case typ != "PASS":
		c.report(typStmt, Finding{Subject: subject, What: "auth_type " + typ, Kind: NotConverted, Msg: "unknown type"})
	case in.version == 3:
		// keepalived drops authentication for VRRPv3 as well.
		in.tail = append(in.tail, c.report(a, Finding{Subject: subject, What: "authentication", Kind: NotConverted, Msg: "VRRPv3 has no authentication (keepalived ignores it for version 3 too)", Note: "VRRPv3 has none"}))
	case pass == "":
		c.report(a, Finding{Subject: subject, What: "authentication", Kind: NotConverted, Msg: "no auth_pass (keepalived would send an empty password, vipd needs 1 to 8 bytes)"})
	default:
		if len(pass) > 8 {
			c.warn(passStmt, subject, "auth_pass", "keepalived uses only the first 8 bytes: converted as such")
			pass = pass[:8]
		}
		if !utf8.ValidString(pass) {
			c.ignored(passStmt, subject, "auth_pass", "its first 8 bytes end inside a character, which YAML cannot carry: not converted")
			return
		}
		in.authPass = pass
		in.note("auth_pass", c.report(a, Finding{What: "authentication { auth_type PASS }", Kind: Same}))
	}
}

func (c *converter) peers(in *outInstance, block *Stmt, peers []*Stmt, src *Stmt, subject string) {
	seen := map[netip.Addr]bool{}
	for _, p := range peers {
		a, err := netip.ParseAddr(p.Keyword)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			const why = "not an IP address"
			in.tail = append(in.tail, c.report(p, Finding{Subject: subject, What: "unicast_peer " + p.Keyword, Kind: NotConverted, Msg: why, Note: why}))
			continue
		}
		if config.FamilyOf(a) != in.family {
			why := "not " + config.FamilyWord(in.family) + " like the VIPs"
			in.tail = append(in.tail, c.report(p, Finding{Subject: subject, What: "unicast_peer " + a.String(), Kind: NotConverted, Msg: why + " (keepalived skips it too)", Note: why}))
			continue
		}
		if seen[a] {
			c.ignored(p, subject, "unicast_peer "+a.String(), "listed twice")
			continue
		}
		seen[a] = true
		item := outItem{value: a.String()}
		if len(p.Args) > 0 {
			opts := strings.Join(p.Args, " ")
			item.head = append(item.head, c.report(p, Finding{Subject: subject, What: opts, Said: "unicast_peer " + a.String() + ": " + opts, Kind: NotConverted, Msg: "vipd checks TTL 255 on every advert"}))
		}
		in.peers = append(in.peers, item)
	}
	if block != nil && len(in.peers) == 0 {
		in.tail = append(in.tail, c.report(block, Finding{Subject: subject, What: "unicast_peer", Msg: "no usable peer: converted to multicast, as keepalived does without peers", Note: " lists no usable peer: multicast is used"}))
	}
	if src == nil || len(src.Args) == 0 {
		return
	}
	a, err := netip.ParseAddr(src.Args[0])
	switch {
	case err != nil || a.Zone() != "" || a.Is4In6():
		in.tail = append(in.tail, c.notConverted(src, subject, "not an IP address"))
	case config.FamilyOf(a) != in.family:
		in.tail = append(in.tail, c.notConverted(src, subject, "not "+config.FamilyWord(in.family)+" like the VIPs"))
	case len(in.peers) == 0:
		in.tail = append(in.tail, c.notConverted(src, subject, "vipd sends multicast adverts from the interface's own address"))
	default:
		in.source = a
	}
}

// trackScripts converts track_script entries: NAME [weight N [reverse]].
func (c *converter) trackScripts(in *outInstance, entries []*Stmt, subject string) []string {
	var notes []string
	seen := map[string]bool{}
	for _, e := range entries {
		vs := c.scripts[e.Keyword]
		if vs == nil || !vs.ok {
			why := "no vrrp_script of that name (keepalived ignores it too)"
			if vs != nil {
				why = "its vrrp_script was not converted"
			}
			notes = append(notes, c.notConverted(entry("track_script", e), subject, why))
			continue
		}
		w, reverse, note, ok := c.weight("track_script", e, subject, vs.weight, vs.reverse)
		if !ok {
			notes = append(notes, note)
			continue
		}
		if reverse {
			notes = append(notes, c.notConverted(entry("track_script", e), subject, "vipd has no reversed tracking"))
			continue
		}
		if seen[vs.check.name] {
			c.ignored(e, subject, "track_script "+e.Keyword, "tracked twice; only the first is used")
			continue
		}
		seen[vs.check.name] = true
		vs.used = true
		t := outTrack{name: vs.check.name, weight: w, stmt: entry("track_script", e)}
		if w == 0 {
			t.head = append(t.head, "weight 0: FAULT while the check is down, as in keepalived")
		}
		in.trackChecks = append(in.trackChecks, t)
	}
	return notes
}

// entry presents a line of a block with the block's keyword, for messages:
// "track_script chk_x weight 2".
func entry(block string, e *Stmt) *Stmt {
	return &Stmt{Pos: e.Pos, Keyword: block, Raw: e.Line(), seq: e.seq}
}

// trackInterfaces converts track_interface entries: IF [weight N [reverse]].
func (c *converter) trackInterfaces(in *outInstance, entries []*Stmt, subject string) []string {
	var notes []string
	seen := map[string]bool{}
	for _, e := range entries {
		if err := checkInterface(e.Keyword); err != nil {
			notes = append(notes, c.notConverted(entry("track_interface", e), subject, err.Error()))
			continue
		}
		w, reverse, note, ok := c.weight("track_interface", e, subject, 0, false)
		if !ok {
			notes = append(notes, note)
			continue
		}
		if reverse {
			notes = append(notes, c.notConverted(entry("track_interface", e), subject, "vipd has no reversed tracking"))
			continue
		}
		if seen[e.Keyword] {
			c.ignored(e, subject, "track_interface "+e.Keyword, "tracked twice; only the first is used")
			continue
		}
		seen[e.Keyword] = true
		in.trackIfaces = append(in.trackIfaces, outTrack{name: e.Keyword, weight: w, stmt: entry("track_interface", e)})
	}
	return notes
}

// weight reads "weight N [reverse|noreverse|no_reverse]" after a tracked
// name; def and defReverse apply when absent. When the entry cannot be
// converted, note is the comment that says so.
func (c *converter) weight(block string, e *Stmt, subject string, def int, defReverse bool) (w int, reverse bool, note string, ok bool) {
	w, reverse = def, defReverse
	args := e.Args
	if len(args) == 0 {
		return w, reverse, "", true
	}
	if args[0] != "weight" || len(args) < 2 {
		return 0, false, c.notConverted(entry(block, e), subject, "expected NAME [weight N]"), false
	}
	v, err := strconv.Atoi(args[1])
	if err != nil || v < -253 || v > 253 {
		return 0, false, c.notConverted(entry(block, e), subject, "the weight must be an integer in -253..253"), false
	}
	w = v
	for _, a := range args[2:] {
		r, ok := reverseWords[a]
		if !ok {
			c.ignored(e, subject, block+" "+short(e.Line()), "unknown option %q ignored", a)
			continue
		}
		reverse = r
	}
	return w, reverse, "", true
}

// reverseWords are the options after a tracked weight: whether it is
// reversed.
var reverseWords = map[string]bool{"reverse": true, "noreverse": false, "no_reverse": false}

// notify converts notify, notify_master, ...: SCRIPT [user [group]].
func (c *converter) notify(n *outNotify, note func(string), stmts []*Stmt, subject string) {
	for _, s := range stmts {
		if len(s.Args) == 0 {
			c.ignored(s, subject, s.Keyword, "no script; ignored")
			continue
		}
		if len(s.Args) > 1 {
			user := strings.Join(s.Args[1:], ":")
			note(c.report(s, Finding{Subject: subject, What: s.Keyword + " runs as " + user, Said: s.Keyword, Msg: "runs as user " + user + " in keepalived: " + noScripts, Note: "; vipd runs it as its own user"}))
		}
		if argv := c.command(s, subject, s.Args[0]); argv != nil {
			*notifyFields[s.Keyword](n) = argv
		}
	}
}

// intArg reads a statement's single integer argument in lo..hi.
func (c *converter) intArg(s *Stmt, subject string, lo, hi int) (int, bool) {
	if len(s.Args) == 0 {
		c.ignored(s, subject, s.Keyword, "no value; ignored")
		return 0, false
	}
	v, err := strconv.Atoi(s.Args[0])
	if err != nil || v < lo || v > hi {
		c.ignored(s, subject, s.Keyword+" "+s.Args[0], "not an integer in %d..%d; ignored", lo, hi)
		return 0, false
	}
	return v, true
}

// secondsArg reads a statement's single decimal number of seconds, to the
// microsecond (keepalived's resolution), in lo..hi.
func (c *converter) secondsArg(s *Stmt, subject string, lo, hi time.Duration) (time.Duration, bool) {
	if len(s.Args) == 0 {
		c.ignored(s, subject, s.Keyword, "no value; ignored")
		return 0, false
	}
	d, err := parseSeconds(s.Args[0])
	if err != nil || d < lo || d > hi {
		c.ignored(s, subject, s.Keyword+" "+s.Args[0], "not a number of seconds in %s..%s; ignored", duration(lo), duration(hi))
		return 0, false
	}
	return d, true
}

var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]*)?$|^\.[0-9]+$`)

func parseSeconds(s string) (time.Duration, error) {
	if !decimal.MatchString(s) {
		return 0, errors.New("not a decimal number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > 1e9 {
		return 0, errors.New("out of range")
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, nil
}

func boolWord(s string) bool {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true
	}
	return false
}

// verify parses the output as vipd would, and checks that the strings
// written read back as they were meant.
func verify(data []byte, doc *document) error {
	cfg, err := config.Parse("converted.yaml", data)
	if err != nil {
		return err
	}
	if len(cfg.Instances) != len(doc.instances) || len(cfg.Checks) != len(doc.checks) {
		return fmt.Errorf("%d instances and %d checks read back, %d and %d written", len(cfg.Instances), len(cfg.Checks), len(doc.instances), len(doc.checks))
	}
	if len(cfg.SyncGroups) != len(doc.groups) {
		return fmt.Errorf("%d sync groups read back, %d written", len(cfg.SyncGroups), len(doc.groups))
	}
	for i, g := range doc.groups {
		if got := cfg.SyncGroups[i]; got.Name != g.name || !slices.Equal(got.Instances, g.members) {
			return fmt.Errorf("sync group %q read back as %+v", g.name, got)
		}
	}
	if len(cfg.VirtualServers) != len(doc.vservers) {
		return fmt.Errorf("%d virtual servers read back, %d written", len(cfg.VirtualServers), len(doc.vservers))
	}
	for i, v := range doc.vservers {
		got := cfg.VirtualServers[i]
		if got.Name != v.name || got.Address != v.address || int(got.Port) != v.port || len(got.RealServers) != len(v.reals) ||
			got.Scheduler != v.scheduler || got.Check.TCP == v.check.http {
			return fmt.Errorf("virtual server %q read back as %+v", v.name, got)
		}
	}
	for i, ch := range doc.checks {
		got := cfg.Checks[i]
		if got.Name != ch.name || got.Exec == nil || !slices.Equal(got.Exec.Command, ch.command) {
			return fmt.Errorf("check %q read back as %+v", ch.name, got)
		}
	}
	for i, in := range doc.instances {
		got := cfg.Instances[i]
		n := got.Notify
		if got.Name != in.name || got.Interface != in.iface || got.AuthPass != in.authPass || got.Version != in.version ||
			!slices.Equal(n.Command, in.notify.command) || !slices.Equal(n.Master, in.notify.master) ||
			!slices.Equal(n.Backup, in.notify.backup) || !slices.Equal(n.Fault, in.notify.fault) || !slices.Equal(n.Stop, in.notify.stop) {
			return fmt.Errorf("instance %q read back as %+v", in.name, got)
		}
		if got.Announce.Refresh != in.announceRefresh || !slices.Equal(got.Routes, in.routeList) || !slices.Equal(got.Rules, in.ruleList) {
			return fmt.Errorf("instance %q: announce.refresh, routes or rules read back as %v, %+v, %+v", in.name, got.Announce.Refresh, got.Routes, got.Rules)
		}
		if got.VirtualMAC != in.virtualMAC || in.vmacIface != "" && got.VirtualMACInterface != in.vmacIface {
			return fmt.Errorf("instance %q: virtual_mac read back as %v %q", in.name, got.VirtualMAC, got.VirtualMACInterface)
		}
		if !in.hmac.readsBack(got.AuthHMAC) {
			// Not printed: it holds the secrets.
			return fmt.Errorf("instance %q: auth_hmac reads back otherwise than written", in.name)
		}
	}
	return nil
}
