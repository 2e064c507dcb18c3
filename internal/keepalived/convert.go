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
	Warnings  []Warning
	Instances int
	Checks    int
}

// Convert turns cfg's VRRP instances and the scripts they track into a
// vipd configuration, which it checks with config.Parse. The Result holds
// the warnings even when the error is not nil.
func Convert(cfg *Config) (*Result, error) {
	c := &converter{
		cfg:     cfg,
		warns:   slices.Clone(cfg.Warnings),
		scripts: map[string]*vscript{},
		groups:  map[string][]*Stmt{},
		names:   map[string]bool{},
		vrids:   map[vridKey]string{},
		vips:    map[netip.Addr]string{},
	}
	c.autoPrio = autoPriorities(cfg.Stmts)
	doc := c.convert()
	slices.SortStableFunc(c.warns, func(a, b Warning) int { return a.seq - b.seq })
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
	cfg   *Config
	warns []Warning

	// From global_defs.
	vrrpVersion  int
	versionStmt  *Stmt
	garpRepeat   int
	garpInterval time.Duration // IPv4: vrrp_garp_interval
	gnaInterval  time.Duration // IPv6: vrrp_gna_interval
	minGarp      bool
	// vrrp_garp_master_refresh, the refresh of every instance without
	// its own garp_master_refresh.
	garpRefresh     time.Duration
	garpRefreshStmt *Stmt

	// autoPrio are the preferences keepalived gives the rules without
	// one, by line.
	autoPrio map[*Stmt]uint64

	scripts    map[string]*vscript // by keepalived name
	scriptList []*vscript
	checkNames map[string]bool
	groups     map[string][]*Stmt // sync groups by member instance name

	names map[string]bool
	vrids map[vridKey]string
	vips  map[netip.Addr]string
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

func (c *converter) warn(s *Stmt, subject, format string, args ...any) {
	c.warns = append(c.warns, Warning{Pos: s.Pos, Subject: subject, Msg: fmt.Sprintf(format, args...), seq: s.seq})
}

// notConverted reports a statement of a block and returns the comment
// that records it in the output.
func (c *converter) notConverted(s *Stmt, subject, reason string) string {
	c.warn(s, subject, "%s: not converted: %s", short(s.Line()), reason)
	return fmt.Sprintf("not converted: %s (%s): %s", short(s.Line()), s.Pos, reason)
}

// notConvertedBlock reports a top-level statement.
func (c *converter) notConvertedBlock(s *Stmt, reason string) string {
	c.warn(s, short(s.Line()), "not converted: %s", reason)
	return fmt.Sprintf("not converted: %s (%s): %s", short(s.Line()), s.Pos, reason)
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
	var instances []*Stmt
	for _, s := range c.cfg.Stmts {
		switch s.Keyword {
		case "global_defs":
			doc.header = append(doc.header, c.globalDefs(s)...)
		case "vrrp_script":
			c.script(s)
		case "vrrp_instance":
			instances = append(instances, s)
		case "vrrp_sync_group":
			doc.trailer = append(doc.trailer, c.notConvertedBlock(s, c.syncGroup(s)))
		default:
			reason, ok := topReasons[s.Keyword]
			if !ok {
				reason = "unknown keyword"
			}
			doc.trailer = append(doc.trailer, c.notConvertedBlock(s, reason))
		}
	}
	for _, s := range instances {
		in, why := c.instance(s)
		if in == nil {
			doc.trailer = append(doc.trailer, fmt.Sprintf("not converted: vrrp_instance %s (%s): %s", strings.Join(s.Args, " "), s.Pos, why))
			continue
		}
		doc.instances = append(doc.instances, in)
	}
	for _, vs := range c.scriptList {
		switch {
		case vs.used:
			doc.checks = append(doc.checks, &vs.check)
		case vs.ok:
			doc.trailer = append(doc.trailer, c.notConvertedBlock(vs.stmt, "no converted vrrp_instance tracks it (keepalived runs only tracked scripts)"))
		}
	}
	return doc
}

// globalDefs reads the global settings instances inherit, and returns
// the header comments for the rest.
func (c *converter) globalDefs(g *Stmt) []string {
	var out []string
	for _, s := range g.Block {
		switch s.Keyword {
		case "vrrp_version":
			if v, ok := c.intArg(s, "global_defs", 2, 3); ok {
				c.vrrpVersion, c.versionStmt = v, s
				out = append(out, fmt.Sprintf("keepalived: %s (%s): the version of every instance", s.Line(), s.Pos))
			}
		case "vrrp_garp_master_repeat":
			if v, ok := c.intArg(s, "global_defs", 1, math.MaxInt32); ok {
				c.garpRepeat = v
				out = append(out, fmt.Sprintf("keepalived: %s (%s): announce.count of every instance", s.Line(), s.Pos))
			}
		case "vrrp_garp_interval", "vrrp_gna_interval":
			if d, ok := c.secondsArg(s, "global_defs", 0, time.Hour); ok {
				if s.Keyword == "vrrp_garp_interval" {
					c.garpInterval = d
				} else {
					c.gnaInterval = d
				}
				out = append(out, fmt.Sprintf("keepalived: %s (%s): announce.interval of every %s instance", s.Line(), s.Pos, map[bool]string{true: "IPv4", false: "IPv6"}[s.Keyword == "vrrp_garp_interval"]))
			}
		case "vrrp_min_garp":
			if len(s.Args) == 0 || boolWord(s.Args[0]) {
				c.minGarp = true
				out = append(out, fmt.Sprintf("keepalived: %s (%s): announce.count 1 for every instance (vipd never sends a second burst)", s.Line(), s.Pos))
			}
		case "vrrp_garp_master_delay":
			if len(s.Args) == 1 && s.Args[0] == "0" {
				out = append(out, fmt.Sprintf("keepalived: %s (%s): no second burst of gratuitous ARPs, as in vipd", s.Line(), s.Pos))
				continue
			}
			out = append(out, c.notConverted(s, "global_defs", "vipd sends one burst of gratuitous ARPs on becoming master, no second one later"))
		case "vrrp_garp_master_refresh":
			if v, ok := c.intArg(s, "global_defs", 0, math.MaxInt32); ok {
				c.garpRefresh, c.garpRefreshStmt = time.Duration(v)*time.Second, s
				what := "announce.refresh of every instance without its own garp_master_refresh"
				if v == 0 {
					what = "no refresh, vipd's default"
				}
				out = append(out, fmt.Sprintf("keepalived: %s (%s): %s", s.Line(), s.Pos, what))
			}
		case "vrrp_garp_master_refresh_repeat":
			if v, ok := c.intArg(s, "global_defs", 0, math.MaxInt32); ok {
				if v <= 1 {
					out = append(out, fmt.Sprintf("keepalived: %s (%s): one announcement per refresh, as in vipd", s.Line(), s.Pos))
					continue
				}
				c.warn(s, "global_defs", "%s: %s", s.Line(), refreshRepeat(v))
				out = append(out, fmt.Sprintf("keepalived: %s (%s): vipd announces once per refresh", s.Line(), s.Pos))
			}
		case "vrrp_check_unicast_src":
			out = append(out, fmt.Sprintf("keepalived: %s (%s): %s", s.Line(), s.Pos, instanceSame["check_unicast_src"]))
		default:
			reason, ok := globalReasons[s.Keyword]
			if !ok {
				reason = "no vipd equivalent"
			}
			out = append(out, c.notConverted(s, "global_defs", reason))
		}
	}
	return out
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

// script reads a vrrp_script into a check.
func (c *converter) script(s *Stmt) {
	kname := strings.Join(s.Args, " ")
	subject := strings.TrimSpace("vrrp_script " + kname)
	if _, dup := c.scripts[kname]; dup {
		c.warn(s, subject, "defined again: not converted (the first definition is used)")
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
	interval := time.Second
	var timeout time.Duration
	var timeoutStmt *Stmt
	set := map[string]bool{}
	for _, a := range s.Block {
		switch a.Keyword {
		case "script":
			text := a.Raw
			if len(a.Args) == 1 {
				text = a.Args[0]
			}
			ch.command = c.command(a, subject, text)
		case "interval":
			if d, ok := c.secondsArg(a, subject, 10*time.Millisecond, time.Hour); ok {
				interval = d
				ch.interval = d
			}
		case "timeout":
			if d, ok := c.secondsArg(a, subject, time.Millisecond, time.Hour); ok {
				timeout, timeoutStmt = d, a
			}
		case "weight":
			if len(a.Args) == 0 {
				c.warn(a, subject, "weight: no value; ignored")
				continue
			}
			if w, ok := c.intArg(&Stmt{Pos: a.Pos, Keyword: a.Keyword, Args: a.Args[:1], seq: a.seq}, subject, -253, 253); ok {
				vs.weight = w
			}
			if len(a.Args) > 1 {
				vs.reverse = a.Args[1] == "reverse"
				if !vs.reverse {
					c.warn(a, subject, "weight: unknown option %q ignored", a.Args[1])
				}
			}
		case "rise", "fall":
			v, ok := c.intArg(a, subject, 1, math.MaxInt32)
			if !ok {
				continue
			}
			if v > 100 {
				c.warn(a, subject, "%s %d: vipd allows at most 100; converted as 100", a.Keyword, v)
				v = 100
			}
			set[a.Keyword] = true
			if a.Keyword == "rise" {
				ch.rise = v
			} else {
				ch.fall = v
			}
		case "user":
			ch.head = append(ch.head, c.notConverted(a, subject, noScripts))
		case "init_fail":
			ch.head = append(ch.head, fmt.Sprintf("keepalived: init_fail (%s): vipd checks start down anyway", a.Pos))
		default:
			ch.head = append(ch.head, c.notConverted(a, subject, "no vipd equivalent"))
		}
	}
	if !set["fall"] || !set["rise"] {
		ch.head = append(ch.head, "fall and rise default to 1 in keepalived (3 and 2 in vipd)")
	}
	if timeoutStmt != nil {
		if timeout >= interval {
			adj := interval / 2
			c.warn(timeoutStmt, subject, "timeout %s is not shorter than the interval %s, as vipd requires: converted as %s (or raise the interval)", duration(timeout), duration(interval), duration(adj))
			ch.head = append(ch.head, fmt.Sprintf("keepalived: timeout %s (%s); vipd needs it shorter than the interval", duration(timeout), timeoutStmt.Pos))
			timeout = adj
		}
		ch.timeout = timeout
	}
	if ch.command == nil {
		c.warn(s, subject, "no usable script line: not converted (keepalived drops it too)")
		return
	}
	ch.name = sanitize(kname, "check", c.checkNames)
	if ch.name != kname {
		c.warn(s, subject, "renamed %q: vipd check names are 1 to 64 of A-Z a-z 0-9 _ . -", ch.name)
	}
	vs.ok = true
}

// command turns a keepalived script string into argv; a script that needs
// a shell runs under /bin/sh -c.
func (c *converter) command(s *Stmt, subject, text string) []string {
	argv, shell := splitCommand(text)
	if shell {
		c.warn(s, subject, "%s: uses shell syntax, converted to [/bin/sh, -c, ...] (keepalived 2.x runs scripts without a shell: check that this is what you meant)", s.Keyword)
		return []string{"/bin/sh", "-c", text}
	}
	if len(argv) == 0 {
		c.warn(s, subject, "%s: empty command; ignored", s.Keyword)
		return nil
	}
	return argv
}

// syncGroup records a vrrp_sync_group's members and says why it is not
// converted, naming what else it holds.
func (c *converter) syncGroup(s *Stmt) string {
	var also []string
	for _, g := range s.Block {
		if g.Keyword != "group" {
			also = append(also, g.Keyword)
			continue
		}
		for _, m := range g.Block {
			for _, n := range append([]string{m.Keyword}, m.Args...) {
				c.groups[n] = append(c.groups[n], s)
			}
		}
	}
	why := topReasons["vrrp_sync_group"]
	if len(also) > 0 {
		why += "; its " + strings.Join(also, ", ") + " are not converted either (move them to the member instances)"
	}
	return why
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
}

// gather reads a vrrp_instance block; what needs no further context is
// noted in the instance's tail right away.
func (c *converter) gather(s *Stmt, in *outInstance) *instSrc {
	src := &instSrc{stmt: s, kname: strings.Join(s.Args, " "), priority: 100}
	src.subject = strings.TrimSpace("vrrp_instance " + src.kname)
	subject := src.subject
	for _, a := range s.Block {
		switch a.Keyword {
		case "state":
			if len(a.Args) > 0 {
				src.state, src.stateStmt = strings.ToUpper(a.Args[0]), a
			}
		case "interface":
			if len(a.Args) > 0 {
				src.iface, src.ifaceStmt = a.Args[0], a
			}
		case "virtual_router_id":
			if v, ok := c.intArg(a, subject, 1, 255); ok {
				src.vrid, src.vridStmt = v, a
			}
		case "priority":
			if v, ok := c.intArg(a, subject, 1, 255); ok {
				src.priority, src.priorityStmt = v, a
			}
		case "advert_int":
			if d, ok := c.secondsArg(a, subject, time.Microsecond, time.Hour); ok {
				src.advert, src.advertStmt = d, a
			}
		case "nopreempt":
			src.nopreempt = a
		case "preempt_delay":
			if d, ok := c.secondsArg(a, subject, 0, 1000*time.Second); ok {
				src.preemptDelay, src.preemptDelayStmt = d, a
			}
		case "virtual_ipaddress":
			src.vips = append(src.vips, a.Block...)
		case "virtual_ipaddress_excluded":
			src.excluded = append(src.excluded, a)
		case "unicast_src_ip", "mcast_src_ip":
			src.src = a
		case "unicast_peer":
			src.peerBlock = a
			src.peers = append(src.peers, a.Block...)
		case "authentication":
			src.auth = a
		case "auth_hmac":
			if src.hmac != nil {
				again := &Stmt{Pos: a.Pos, Keyword: a.Keyword, seq: a.seq} // its words may be secrets
				in.tail = append(in.tail, c.notConverted(again, subject, fmt.Sprintf("given twice; the first (%s) is used", src.hmac.Pos)))
				continue
			}
			src.hmac = a
		case "version":
			if v, ok := c.intArg(a, subject, 2, 3); ok {
				src.version, src.versionStmt = v, a
			}
		case "track_script":
			src.trackScripts = append(src.trackScripts, a.Block...)
		case "track_interface":
			src.trackIfaces = append(src.trackIfaces, a.Block...)
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
			src.notify = append(src.notify, a)
		case "garp_master_repeat":
			if v, ok := c.intArg(a, subject, 1, math.MaxInt32); ok {
				src.garpRepeat, src.garpRepeatStmt = v, a
			}
		case "garp_master_refresh":
			if v, ok := c.intArg(a, subject, 0, math.MaxInt32); ok {
				src.garpRefresh, src.garpRefreshStmt = time.Duration(v)*time.Second, a
			}
		case "garp_master_refresh_repeat":
			if v, ok := c.intArg(a, subject, 0, math.MaxInt32); ok {
				src.garpRefreshRepeat, src.garpRefreshRepeatStmt = v, a
			}
		case "virtual_routes":
			src.vroutes = append(src.vroutes, a)
		case "virtual_rules":
			src.vrules = append(src.vrules, a)
		case "garp_master_delay":
			if len(a.Args) == 1 && a.Args[0] == "0" {
				in.tail = append(in.tail, fmt.Sprintf("keepalived: %s (%s): no second burst of gratuitous ARPs, as in vipd", a.Line(), a.Pos))
				continue
			}
			in.tail = append(in.tail, c.notConverted(a, subject, "vipd sends one burst of gratuitous ARPs on becoming master, no second one later"))
		case "old_unicast_checksum":
			if len(a.Args) > 0 && a.Args[0] == "never" {
				in.tail = append(in.tail, c.notConverted(a, subject, "vipd never guesses the checksum kind; set v3_checksum_as_v2 to match the peers"))
				continue
			}
			src.oldChecksum = a
		default:
			if why, ok := instanceSame[a.Keyword]; ok {
				in.tail = append(in.tail, fmt.Sprintf("keepalived: %s (%s): %s", a.Line(), a.Pos, why))
				continue
			}
			reason, ok := instanceReasons[a.Keyword]
			if !ok {
				reason = "no vipd equivalent"
			}
			in.tail = append(in.tail, c.notConverted(a, subject, reason))
		}
	}
	return src
}

// vipIn is a VIP read from virtual_ipaddress.
type vipIn struct {
	prefix netip.Prefix
	dev    string
	stmt   *Stmt
	notes  []string
}

// instance converts a vrrp_instance, or returns nil and why not, after
// warning.
func (c *converter) instance(s *Stmt) (*outInstance, string) {
	in := &outInstance{notes: map[string][]string{}}
	src := c.gather(s, in)
	subject := src.subject
	fail := func(at *Stmt, format string, args ...any) (*outInstance, string) {
		why := fmt.Sprintf(format, args...)
		c.warn(at, subject, "not converted: %s", why)
		return nil, why
	}
	in.head = []string{fmt.Sprintf("vrrp_instance %s (%s)", src.kname, s.Pos)}
	for _, g := range c.groups[src.kname] {
		in.head = append(in.head, fmt.Sprintf("member of vrrp_sync_group %s (%s): not converted, this instance fails over on its own", strings.Join(g.Args, " "), g.Pos))
	}

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
			c.warn(v, subject, "virtual_ipaddress %s: not converted: %s, but the instance is %s from its first VIP; keepalived ignores it too (\"address family must match VRRP instance\"): give it its own instance and VRID", v.Keyword, config.FamilyWord(f), config.FamilyWord(in.family))
			in.tail = append(in.tail, fmt.Sprintf("not converted: virtual_ipaddress %s (%s): %s in an %s instance (keepalived ignores it too)", v.Keyword, v.Pos, config.FamilyWord(f), config.FamilyWord(in.family)))
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
		in.tail = append(in.tail, c.notConverted(line, subject, instanceReasons["virtual_ipaddress_excluded"]))
	}

	in.iface = src.iface
	if in.iface == "" {
		for _, v := range vips {
			if v.dev != "" {
				in.iface = v.dev
				c.warn(v.stmt, subject, "no interface: using %s, the dev of the first VIP that has one", v.dev)
				in.note("interface", "keepalived: no interface; %s is the dev of a VIP", v.dev)
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
			c.warn(v.stmt, subject, "virtual_ipaddress %s: listed twice; converted once", a)
			continue
		}
		seen[a] = true
		if other, dup := c.vips[a]; dup {
			c.warn(v.stmt, subject, "virtual_ipaddress %s: not converted: already a VIP of %s", a, other)
			in.tail = append(in.tail, fmt.Sprintf("not converted: virtual_ipaddress %s (%s): already a VIP of %s", a, v.stmt.Pos, other))
			dropped = append(dropped, v.prefix)
			continue
		}
		item := outItem{value: v.prefix.String(), head: v.notes}
		if v.dev != "" && v.dev != in.iface {
			c.warn(v.stmt, subject, "virtual_ipaddress %s dev %s: vipd adds every VIP to the instance's interface, %s", a, v.dev, in.iface)
			item.head = append([]string{fmt.Sprintf("keepalived: dev %s (%s); vipd adds it to %s", v.dev, v.stmt.Pos, in.iface)}, item.head...)
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
		c.warn(s, subject, "vipd advertises fewer VIPs than keepalived (without %s): keepalived hosts of this group drop vipd's adverts (\"ip address associated with VRID not present in MASTER advert\") unless they set vrrp_skip_check_adv_addr; set it on them before mixing, or replace every host at once", strings.Join(lost, ", "))
		in.note("vips", "keepalived advertises %s too: see the warnings before mixing vipd and keepalived hosts", strings.Join(lost, ", "))
	}

	in.name = sanitize(src.kname, "instance", c.names)
	if in.name != src.kname {
		c.warn(s, subject, "renamed %q: vipd instance names are 1 to 64 of A-Z a-z 0-9 _ . -, unique", in.name)
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
			in.note("v3_checksum_as_v2", "keepalived: %s (%s)", a.Line(), a.Pos)
		} else {
			in.tail = append(in.tail, c.notConverted(a, subject, "applies to IPv4 VRRPv3 only"))
		}
	}
	in.tail = append(in.tail, c.trackScripts(in, src.trackScripts, subject)...)
	in.tail = append(in.tail, c.trackInterfaces(in, src.trackIfaces, subject)...)
	weighted := func(t outTrack) bool { return t.weight != 0 }
	if len(c.groups[src.kname]) > 0 && (slices.ContainsFunc(in.trackChecks, weighted) || slices.ContainsFunc(in.trackIfaces, weighted)) {
		c.warn(s, subject, "member of a vrrp_sync_group with weighted tracking: keepalived ignores (or zeroes, depending on its version) these weights; vipd applies them")
	}
	c.notify(in, src.notify, subject)
	c.vroutes(in, src.vroutes, subject)
	c.vrules(in, src.vrules, subject)
	return in, ""
}

// version: keepalived's default is 2 for IPv4 (vrrp_version in
// global_defs changes it), and always 3 for IPv6.
func (c *converter) version(in *outInstance, src *instSrc) {
	switch {
	case in.family == "ipv6":
		in.version = 3
		if src.version == 2 {
			c.warn(src.versionStmt, src.subject, "version 2: VRRPv2 is IPv4 only; keepalived uses version 3 for IPv6 too")
		}
		in.note("version", "keepalived always uses VRRPv3 for IPv6")
	case src.version != 0:
		in.version = src.version
	case c.vrrpVersion != 0:
		in.version = c.vrrpVersion
		in.note("version", "from global_defs vrrp_version (%s)", c.versionStmt.Pos)
	default:
		in.version = 2
		in.note("version", "keepalived's default for IPv4 without vrrp_version: VRRPv2, so that vipd and keepalived hosts understand each other")
	}
}

func (c *converter) priority(in *outInstance, src *instSrc) {
	in.priority = src.priority
	if src.stateStmt != nil {
		in.note("priority", "keepalived: state %s (%s): vipd has no initial state; the highest priority becomes master", src.state, src.stateStmt.Pos)
	}
	if in.priority == 255 {
		c.warn(src.priorityStmt, src.subject, "priority 255 (address owner) is not supported by vipd: converted as 254")
		in.note("priority", "keepalived: priority 255 (address owner), which vipd does not support")
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
			c.warn(a, src.subject, "nopreempt: keepalived ignores it with state MASTER (\"nopreempt will not work with initial state MASTER - clearing\"): converted as preempt: true, which is how keepalived behaves; write preempt: false if you want no preemption")
			in.note("preempt", "keepalived: nopreempt (%s), which keepalived ignores with state MASTER", a.Pos)
		case src.priority == 255:
			c.warn(a, src.subject, "nopreempt: keepalived ignores it at priority 255: converted as preempt: true")
			in.note("preempt", "keepalived: nopreempt (%s), which keepalived ignores at priority 255", a.Pos)
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
		c.warn(a, src.subject, "preempt_delay: not converted: %s", why)
		in.tail = append(in.tail, fmt.Sprintf("not converted: %s (%s): %s", a.Line(), a.Pos, why))
	}
}

// vip reads one virtual_ipaddress line: ADDRESS[/LEN] [dev D] [label L] ...
func (c *converter) vip(v *Stmt, subject string, in *outInstance) (vipIn, bool) {
	p, err := parseAddrPrefix(v.Keyword)
	if err == nil {
		err = vipProblem(p)
	}
	if err != nil {
		c.warn(v, subject, "virtual_ipaddress %s: not converted: %v", v.Keyword, err)
		in.tail = append(in.tail, fmt.Sprintf("not converted: virtual_ipaddress %s (%s): %v", short(v.Line()), v.Pos, err))
		return vipIn{prefix: p}, false // p is valid when vipd's rules refused it
	}
	vip := vipIn{prefix: p, stmt: v}
	var extras []string
	for i := 0; i < len(v.Args); i++ {
		opt, arg := v.Args[i], ""
		switch opt {
		case "dev", "label", "scope", "brd", "broadcast", "peer", "preferred_lft", "track_group":
			if i+1 < len(v.Args) {
				arg = v.Args[i+1]
				i++
			}
		}
		switch {
		case opt == "dev":
			vip.dev = arg
		case opt == "scope" && arg == "global":
			// keepalived's default, and the kernel's.
		default:
			extras = append(extras, strings.TrimSpace(opt+" "+arg))
		}
	}
	if len(extras) > 0 {
		x := strings.Join(extras, " ")
		c.warn(v, subject, "virtual_ipaddress %s: %s: not converted: vipd adds the address with its prefix length only", v.Keyword, x)
		vip.notes = append(vip.notes, fmt.Sprintf("not converted: %s (%s): vipd adds the address with its prefix length only", x, v.Pos))
	}
	return vip, true
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
		c.warn(s, subject, "advert_int %s: VRRPv%d cannot advertise that interval: converted as %s", s.Args[0], version, duration(out))
	}
	return out
}

// announce: gratuitous ARP (or NA) rounds from garp_master_repeat and the
// global vrrp_garp_* settings; vipd's defaults otherwise.
func (c *converter) announce(in *outInstance, src *instSrc) {
	count := 0
	if c.minGarp {
		count = 1
	}
	if c.garpRepeat > 0 {
		count = c.garpRepeat
	}
	if a := src.garpRepeatStmt; a != nil {
		count = src.garpRepeat
		in.note("announce", "keepalived: %s (%s)", a.Line(), a.Pos)
	}
	if count > 100 {
		c.warn(src.stmt, src.subject, "gratuitous ARP repeat %d: vipd sends at most 100 rounds: converted as 100", count)
		in.note("announce", "keepalived sends %d; vipd at most 100", count)
		count = 100
	}
	in.announceCount = count
	interval := c.garpInterval
	if in.family == "ipv6" {
		interval = c.gnaInterval
	}
	if interval > 0 {
		in.announceInterval = max(10*time.Millisecond, min(10*time.Second, interval))
		if in.announceInterval != interval {
			c.warn(src.stmt, src.subject, "gratuitous ARP/NA interval %s: vipd spaces rounds by 10ms..10s: converted as %s", duration(interval), duration(in.announceInterval))
			in.note("announce", "keepalived's interval %s is outside vipd's 10ms..10s", duration(interval))
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
	refresh, from := c.garpRefresh, c.garpRefreshStmt
	if a := src.garpRefreshStmt; a != nil {
		refresh, from = src.garpRefresh, a
	}
	switch {
	case refresh > 0:
		if from == src.garpRefreshStmt {
			in.note("announce", "keepalived: %s (%s)", from.Line(), from.Pos)
		} else {
			in.note("announce", "refresh from global_defs vrrp_garp_master_refresh (%s)", from.Pos)
		}
		if refresh > maxRefresh {
			c.warn(from, src.subject, "%s: vipd refreshes at most every %s: converted as %s", from.Line(), duration(maxRefresh), duration(maxRefresh))
			in.note("announce", "keepalived refreshes every %s; vipd at most every %s", duration(refresh), duration(maxRefresh))
			refresh = maxRefresh
		}
		in.announceRefresh = refresh
	case from != nil && from == src.garpRefreshStmt:
		in.tail = append(in.tail, fmt.Sprintf("keepalived: %s (%s): no refresh, vipd's default", from.Line(), from.Pos))
	}
	a := src.garpRefreshRepeatStmt
	switch {
	case a == nil:
	case refresh == 0:
		in.tail = append(in.tail, fmt.Sprintf("keepalived: %s (%s): no effect without garp_master_refresh, in keepalived too", a.Line(), a.Pos))
	case src.garpRefreshRepeat > 1:
		c.warn(a, src.subject, "%s: %s", a.Line(), refreshRepeat(src.garpRefreshRepeat))
		in.note("announce", "keepalived: %s (%s): vipd announces once per refresh", a.Line(), a.Pos)
	default:
		in.note("announce", "keepalived: %s (%s): one announcement per refresh, as in vipd", a.Line(), a.Pos)
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
	var typ, pass string
	var typStmt, passStmt *Stmt
	for _, s := range a.Block {
		switch s.Keyword {
		case "auth_type":
			if len(s.Args) > 0 {
				typ, typStmt = strings.ToUpper(s.Args[0]), s
			}
		case "auth_pass":
			if len(s.Args) > 0 {
				pass, passStmt = s.Args[0], s
			}
		default:
			in.tail = append(in.tail, c.notConverted(s, subject, "unknown authentication keyword"))
		}
	}
	switch {
	case typ == "AH":
		c.warn(typStmt, subject, "authentication AH: not converted: vipd does not support IPsec AH, so it cannot talk to these keepalived hosts; remove authentication from them first (or use PASS)")
		in.tail = append(in.tail, fmt.Sprintf("not converted: authentication { auth_type AH } (%s): unsupported", typStmt.Pos))
	case typ == "":
		c.warn(a, subject, "authentication: no auth_type, so keepalived authenticates nothing: not converted")
	case typ != "PASS":
		c.warn(typStmt, subject, "auth_type %s: not converted: unknown type", typ)
	case in.version == 3:
		// keepalived drops authentication for VRRPv3 as well.
		c.warn(a, subject, "authentication: not converted: VRRPv3 has no authentication (keepalived ignores it for version 3 too)")
		in.tail = append(in.tail, fmt.Sprintf("not converted: authentication (%s): VRRPv3 has none", a.Pos))
	case pass == "":
		c.warn(a, subject, "authentication: not converted: no auth_pass (keepalived would send an empty password, vipd needs 1 to 8 bytes)")
	default:
		if len(pass) > 8 {
			c.warn(passStmt, subject, "auth_pass: keepalived uses only the first 8 bytes: converted as such")
			pass = pass[:8]
		}
		if !utf8.ValidString(pass) {
			c.warn(passStmt, subject, "auth_pass: its first 8 bytes end inside a character, which YAML cannot carry: not converted")
			return
		}
		in.authPass = pass
		in.note("auth_pass", "keepalived: authentication { auth_type PASS } (%s)", a.Pos)
	}
}

func (c *converter) peers(in *outInstance, block *Stmt, peers []*Stmt, src *Stmt, subject string) {
	seen := map[netip.Addr]bool{}
	for _, p := range peers {
		a, err := netip.ParseAddr(p.Keyword)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			c.warn(p, subject, "unicast_peer %s: not converted: not an IP address", p.Keyword)
			in.tail = append(in.tail, fmt.Sprintf("not converted: unicast_peer %s (%s): not an IP address", p.Keyword, p.Pos))
			continue
		}
		if config.FamilyOf(a) != in.family {
			c.warn(p, subject, "unicast_peer %s: not converted: not %s like the VIPs (keepalived skips it too)", a, config.FamilyWord(in.family))
			in.tail = append(in.tail, fmt.Sprintf("not converted: unicast_peer %s (%s): not %s like the VIPs", a, p.Pos, config.FamilyWord(in.family)))
			continue
		}
		if seen[a] {
			c.warn(p, subject, "unicast_peer %s: listed twice", a)
			continue
		}
		seen[a] = true
		item := outItem{value: a.String()}
		if len(p.Args) > 0 {
			c.warn(p, subject, "unicast_peer %s: %s: not converted: vipd checks TTL 255 on every advert", a, strings.Join(p.Args, " "))
			item.head = append(item.head, fmt.Sprintf("not converted: %s (%s)", strings.Join(p.Args, " "), p.Pos))
		}
		in.peers = append(in.peers, item)
	}
	if block != nil && len(in.peers) == 0 {
		c.warn(block, subject, "unicast_peer: no usable peer: converted to multicast, as keepalived does without peers")
		in.tail = append(in.tail, fmt.Sprintf("keepalived: unicast_peer (%s) lists no usable peer: multicast is used", block.Pos))
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
			c.warn(e, subject, "track_script %s: tracked twice; only the first is used", e.Keyword)
			continue
		}
		seen[vs.check.name] = true
		vs.used = true
		t := outTrack{name: vs.check.name, weight: w}
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
			c.warn(e, subject, "track_interface %s: tracked twice; only the first is used", e.Keyword)
			continue
		}
		seen[e.Keyword] = true
		in.trackIfaces = append(in.trackIfaces, outTrack{name: e.Keyword, weight: w})
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
		switch a {
		case "reverse":
			reverse = true
		case "noreverse", "no_reverse":
			reverse = false
		default:
			c.warn(e, subject, "%s %s: unknown option %q ignored", block, short(e.Line()), a)
		}
	}
	return w, reverse, "", true
}

// notify converts notify, notify_master, ...: SCRIPT [user [group]].
func (c *converter) notify(in *outInstance, stmts []*Stmt, subject string) {
	for _, s := range stmts {
		if len(s.Args) == 0 {
			c.warn(s, subject, "%s: no script; ignored", s.Keyword)
			continue
		}
		if len(s.Args) > 1 {
			c.warn(s, subject, "%s: runs as user %s in keepalived: %s", s.Keyword, strings.Join(s.Args[1:], ":"), noScripts)
			in.note("notify", "keepalived: %s runs as %s (%s); vipd runs it as its own user", s.Keyword, strings.Join(s.Args[1:], ":"), s.Pos)
		}
		argv := c.command(s, subject, s.Args[0])
		if argv == nil {
			continue
		}
		switch s.Keyword {
		case "notify":
			in.notify.command = argv
		case "notify_master":
			in.notify.master = argv
		case "notify_backup":
			in.notify.backup = argv
		case "notify_fault":
			in.notify.fault = argv
		case "notify_stop":
			in.notify.stop = argv
		}
	}
}

// intArg reads a statement's single integer argument in lo..hi.
func (c *converter) intArg(s *Stmt, subject string, lo, hi int) (int, bool) {
	if len(s.Args) == 0 {
		c.warn(s, subject, "%s: no value; ignored", s.Keyword)
		return 0, false
	}
	v, err := strconv.Atoi(s.Args[0])
	if err != nil || v < lo || v > hi {
		c.warn(s, subject, "%s %s: not an integer in %d..%d; ignored", s.Keyword, s.Args[0], lo, hi)
		return 0, false
	}
	return v, true
}

// secondsArg reads a statement's single decimal number of seconds, to the
// microsecond (keepalived's resolution), in lo..hi.
func (c *converter) secondsArg(s *Stmt, subject string, lo, hi time.Duration) (time.Duration, bool) {
	if len(s.Args) == 0 {
		c.warn(s, subject, "%s: no value; ignored", s.Keyword)
		return 0, false
	}
	d, err := parseSeconds(s.Args[0])
	if err != nil || d < lo || d > hi {
		c.warn(s, subject, "%s %s: not a number of seconds in %s..%s; ignored", s.Keyword, s.Args[0], duration(lo), duration(hi))
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
		if !in.hmac.readsBack(got.AuthHMAC) {
			// Not printed: it holds the secrets.
			return fmt.Errorf("instance %q: auth_hmac reads back otherwise than written", in.name)
		}
	}
	return nil
}
