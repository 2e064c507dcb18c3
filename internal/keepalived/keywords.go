package keepalived

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The keywords of each kind of block, and what converts each: a row per
// keyword. A keyword without a row goes to its block's other* handler,
// which reports it with the reason reasons.go gives, or a generic one.
// Converting a keyword is one row and its handler.

// keywords is a block's table. A handler reads its statement into x and
// returns the comment that records it in the output, or "".
type keywords[T any] map[string]func(c *converter, x T, s *Stmt) string

// walk hands each statement of block to its keyword's handler, or to
// other, and returns their comments.
func (k keywords[T]) walk(c *converter, x T, block []*Stmt, other func(*converter, T, *Stmt) string) []string {
	var out []string
	for _, s := range block {
		h := k[s.Keyword]
		if h == nil {
			h = other
		}
		if note := h(c, x, s); note != "" {
			out = append(out, note)
		}
	}
	return out
}

// topKeywords: the comments they return go to the end of the output.
var topKeywords = keywords[*document]{
	"global_defs": func(c *converter, d *document, s *Stmt) string {
		d.header = append(d.header, globalKeywords.walk(c, &c.global, s.Block, otherGlobal)...)
		return ""
	},
	"vrrp_script": func(c *converter, _ *document, s *Stmt) string {
		c.script(s)
		return ""
	},
	"vrrp_instance": func(c *converter, _ *document, s *Stmt) string {
		c.instances = append(c.instances, s)
		return ""
	},
	"vrrp_sync_group": func(c *converter, _ *document, s *Stmt) string {
		c.syncGroup(s)
		return ""
	},
	"virtual_server": func(c *converter, _ *document, s *Stmt) string {
		return c.virtualServer(s)
	},
}

func otherTop(c *converter, _ *document, s *Stmt) string {
	reason, ok := topReasons[s.Keyword]
	if !ok {
		reason = "unknown keyword"
	}
	return c.notConverted(s, "", reason)
}

// globalKeywords: the comments they return go to the head of the output.
var globalKeywords = keywords[*globals]{
	"vrrp_version": func(c *converter, g *globals, s *Stmt) string {
		v, ok := c.intArg(s, "global_defs", 2, 3)
		if !ok {
			return ""
		}
		g.version, g.versionStmt = v, s
		return c.same(s, "the version of every instance")
	},
	"vrrp_garp_master_repeat": func(c *converter, g *globals, s *Stmt) string {
		v, ok := c.intArg(s, "global_defs", 1, math.MaxInt32)
		if !ok {
			return ""
		}
		g.garpRepeat = v
		return c.same(s, "announce.count of every instance")
	},
	"vrrp_garp_interval": announceInterval("IPv4", func(g *globals) *time.Duration { return &g.garpInterval }),
	"vrrp_gna_interval":  announceInterval("IPv6", func(g *globals) *time.Duration { return &g.gnaInterval }),
	"vrrp_min_garp": func(c *converter, g *globals, s *Stmt) string {
		if len(s.Args) > 0 && !boolWord(s.Args[0]) {
			return ""
		}
		g.minGarp = true
		return c.same(s, "announce.count 1 for every instance (vipd never sends a second burst)")
	},
	"vrrp_garp_master_delay": func(c *converter, _ *globals, s *Stmt) string {
		return c.garpDelay(s, "global_defs")
	},
	"vrrp_garp_master_refresh": func(c *converter, g *globals, s *Stmt) string {
		v, ok := c.intArg(s, "global_defs", 0, math.MaxInt32)
		if !ok {
			return ""
		}
		g.garpRefresh, g.garpRefreshStmt = time.Duration(v)*time.Second, s
		if v == 0 {
			return c.same(s, "no refresh, vipd's default")
		}
		return c.same(s, "announce.refresh of every instance without its own garp_master_refresh")
	},
	"vrrp_garp_master_refresh_repeat": func(c *converter, _ *globals, s *Stmt) string {
		v, ok := c.intArg(s, "global_defs", 0, math.MaxInt32)
		if !ok {
			return ""
		}
		return c.perRefresh(s, "global_defs", v)
	},
	"vrrp_check_unicast_src": func(c *converter, _ *globals, s *Stmt) string {
		return c.same(s, instanceSame["check_unicast_src"])
	},
}

// announceInterval is the handler of vrrp_garp_interval (IPv4) or
// vrrp_gna_interval (IPv6), which it stores where field says.
func announceInterval(family string, field func(*globals) *time.Duration) func(*converter, *globals, *Stmt) string {
	return func(c *converter, g *globals, s *Stmt) string {
		d, ok := c.secondsArg(s, "global_defs", 0, time.Hour)
		if !ok {
			return ""
		}
		*field(g) = d
		return c.same(s, "announce.interval of every "+family+" instance")
	}
}

func otherGlobal(c *converter, _ *globals, s *Stmt) string {
	reason, ok := globalReasons[s.Keyword]
	if !ok {
		reason = "no vipd equivalent"
	}
	return c.notConverted(s, "global_defs", reason)
}

// garpDelay is vrrp_garp_master_delay, and an instance's garp_master_delay.
func (c *converter) garpDelay(s *Stmt, subject string) string {
	if len(s.Args) == 1 && s.Args[0] == "0" {
		return c.same(s, "no second burst of gratuitous ARPs, as in vipd")
	}
	return c.notConverted(s, subject, "vipd sends one burst of gratuitous ARPs on becoming master, no second one later")
}

// perRefresh is vrrp_garp_master_refresh_repeat, and an instance's
// garp_master_refresh_repeat where a refresh applies.
func (c *converter) perRefresh(s *Stmt, subject string, n int) string {
	if n <= 1 {
		return c.same(s, "one announcement per refresh, as in vipd")
	}
	return c.report(s, Finding{Subject: subject, What: s.Line(), Msg: refreshRepeat(n), Note: "vipd announces once per refresh"})
}

// scriptKeywords: the comments they return go above the check.
var scriptKeywords = keywords[*scriptIn]{
	"script": func(c *converter, x *scriptIn, s *Stmt) string {
		text := s.Raw
		if len(s.Args) == 1 {
			text = s.Args[0]
		}
		x.check.command = c.command(s, x.subject, text)
		return ""
	},
	"interval": func(c *converter, x *scriptIn, s *Stmt) string {
		if d, ok := c.secondsArg(s, x.subject, 10*time.Millisecond, time.Hour); ok {
			x.interval, x.check.interval = d, d
		}
		return ""
	},
	"timeout": func(c *converter, x *scriptIn, s *Stmt) string {
		if d, ok := c.secondsArg(s, x.subject, time.Millisecond, time.Hour); ok {
			x.timeout, x.timeoutStmt = d, s
		}
		return ""
	},
	"weight": func(c *converter, x *scriptIn, s *Stmt) string {
		if len(s.Args) == 0 {
			c.ignored(s, x.subject, "weight", "no value; ignored")
			return ""
		}
		if w, ok := c.intArg(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Args: s.Args[:1], seq: s.seq}, x.subject, -253, 253); ok {
			x.weight = w
		}
		if len(s.Args) > 1 {
			x.reverse = s.Args[1] == "reverse"
			if !x.reverse {
				c.ignored(s, x.subject, "weight", "unknown option %q ignored", s.Args[1])
			}
		}
		return ""
	},
	"rise": riseFall,
	"fall": riseFall,
	"user": func(c *converter, x *scriptIn, s *Stmt) string {
		return c.notConverted(s, x.subject, noScripts)
	},
	"init_fail": func(c *converter, _ *scriptIn, s *Stmt) string {
		return c.report(s, Finding{What: "init_fail", Kind: Same, Note: "vipd checks start down anyway"})
	},
}

func riseFall(c *converter, x *scriptIn, s *Stmt) string {
	v, ok := c.intArg(s, x.subject, 1, math.MaxInt32)
	if !ok {
		return ""
	}
	if v > 100 {
		c.warn(s, x.subject, s.Keyword+" "+strconv.Itoa(v), "vipd allows at most 100; converted as 100")
		v = 100
	}
	x.riseFall[s.Keyword] = true
	if s.Keyword == "rise" {
		x.check.rise = v
	} else {
		x.check.fall = v
	}
	return ""
}

func otherScript(c *converter, x *scriptIn, s *Stmt) string {
	return c.notConverted(s, x.subject, "no vipd equivalent")
}

// instanceKeywords read a vrrp_instance block into an instSrc; what needs
// the VIPs' family is converted later. The comments they return go after
// the instance's fields.
var instanceKeywords = keywords[*instSrc]{
	"state":             wordInto(true, func(src *instSrc) (*string, **Stmt) { return &src.state, &src.stateStmt }),
	"interface":         wordInto(false, func(src *instSrc) (*string, **Stmt) { return &src.iface, &src.ifaceStmt }),
	"virtual_router_id": intInto(1, 255, func(src *instSrc) (*int, **Stmt) { return &src.vrid, &src.vridStmt }),
	"priority":          intInto(1, 255, func(src *instSrc) (*int, **Stmt) { return &src.priority, &src.priorityStmt }),
	"version":           intInto(2, 3, func(src *instSrc) (*int, **Stmt) { return &src.version, &src.versionStmt }),
	"advert_int": secondsInto(time.Microsecond, time.Hour, func(src *instSrc) (*time.Duration, **Stmt) {
		return &src.advert, &src.advertStmt
	}),
	"preempt_delay": secondsInto(0, 1000*time.Second, func(src *instSrc) (*time.Duration, **Stmt) {
		return &src.preemptDelay, &src.preemptDelayStmt
	}),
	"nopreempt":                  stmtInto(func(src *instSrc) **Stmt { return &src.nopreempt }),
	"virtual_ipaddress":          entriesInto(func(src *instSrc) *[]*Stmt { return &src.vips }),
	"virtual_ipaddress_excluded": stmtsInto(func(src *instSrc) *[]*Stmt { return &src.excluded }),
	"unicast_src_ip":             sourceIP,
	"mcast_src_ip":               sourceIP,
	"unicast_peer": func(_ *converter, src *instSrc, s *Stmt) string {
		src.peerBlock = s
		src.peers = append(src.peers, s.Block...)
		return ""
	},
	"authentication": stmtInto(func(src *instSrc) **Stmt { return &src.auth }),
	"auth_hmac": func(c *converter, src *instSrc, s *Stmt) string {
		if src.hmac != nil {
			again := &Stmt{Pos: s.Pos, Keyword: s.Keyword, seq: s.seq} // its words may be secrets
			return c.notConverted(again, src.subject, "given twice; the first ("+src.hmac.Pos.String()+") is used")
		}
		src.hmac = s
		return ""
	},
	"track_script":       entriesInto(func(src *instSrc) *[]*Stmt { return &src.trackScripts }),
	"track_interface":    entriesInto(func(src *instSrc) *[]*Stmt { return &src.trackIfaces }),
	"notify":             notifyStmt,
	"notify_master":      notifyStmt,
	"notify_backup":      notifyStmt,
	"notify_fault":       notifyStmt,
	"notify_stop":        notifyStmt,
	"garp_master_repeat": intInto(1, math.MaxInt32, func(src *instSrc) (*int, **Stmt) { return &src.garpRepeat, &src.garpRepeatStmt }),
	"garp_master_refresh": func(c *converter, src *instSrc, s *Stmt) string {
		if v, ok := c.intArg(s, src.subject, 0, math.MaxInt32); ok {
			src.garpRefresh, src.garpRefreshStmt = time.Duration(v)*time.Second, s
		}
		return ""
	},
	"garp_master_refresh_repeat": intInto(0, math.MaxInt32, func(src *instSrc) (*int, **Stmt) {
		return &src.garpRefreshRepeat, &src.garpRefreshRepeatStmt
	}),
	"virtual_routes": stmtsInto(func(src *instSrc) *[]*Stmt { return &src.vroutes }),
	"virtual_rules":  stmtsInto(func(src *instSrc) *[]*Stmt { return &src.vrules }),
	"garp_master_delay": func(c *converter, src *instSrc, s *Stmt) string {
		return c.garpDelay(s, src.subject)
	},
	"use_vmac": stmtInto(func(src *instSrc) **Stmt { return &src.vmac }),
	"old_unicast_checksum": func(c *converter, src *instSrc, s *Stmt) string {
		if len(s.Args) > 0 && s.Args[0] == "never" {
			return c.notConverted(s, src.subject, "vipd never guesses the checksum kind; set v3_checksum_as_v2 to match the peers")
		}
		src.oldChecksum = s
		return ""
	},
}

// groupKeywords read a vrrp_sync_group block; the comments they return
// go above the group.
var groupKeywords = keywords[*syncIn]{
	"group": func(c *converter, g *syncIn, s *Stmt) string {
		for _, m := range s.Block {
			for _, n := range append([]string{m.Keyword}, m.Args...) {
				if slices.Contains(g.members, n) {
					c.ignored(m, g.subject, "group "+n, "listed twice; once is enough")
					continue
				}
				g.members = append(g.members, n)
				c.groups[n] = append(c.groups[n], g.stmt)
			}
		}
		return ""
	},
	"notify":                     groupNotify,
	"notify_master":              groupNotify,
	"notify_backup":              groupNotify,
	"notify_fault":               groupNotify,
	"notify_stop":                groupNotify,
	"track_script":               entriesInto(func(g *syncIn) *[]*Stmt { return &g.trackScripts }),
	"track_interface":            entriesInto(func(g *syncIn) *[]*Stmt { return &g.trackIfaces }),
	"sync_group_tracking_weight": stmtInto(func(g *syncIn) **Stmt { return &g.trackingWeight }),
}

func groupNotify(_ *converter, g *syncIn, s *Stmt) string {
	g.notify = append(g.notify, s)
	return ""
}

func otherGroup(c *converter, g *syncIn, s *Stmt) string {
	reason, ok := groupReasons[s.Keyword]
	if !ok {
		reason = "no vipd equivalent"
	}
	return c.notConverted(s, g.subject, reason)
}

func otherInstance(c *converter, src *instSrc, s *Stmt) string {
	if why, ok := instanceSame[s.Keyword]; ok {
		return c.same(s, why)
	}
	reason, ok := instanceReasons[s.Keyword]
	if !ok {
		reason = "no vipd equivalent"
	}
	return c.notConverted(s, src.subject, reason)
}

// wordInto is the handler of a keyword whose first word (upper-cased when
// upper) it stores with its statement where field says.
func wordInto[T any](upper bool, field func(T) (*string, **Stmt)) func(*converter, T, *Stmt) string {
	return func(_ *converter, x T, s *Stmt) string {
		if len(s.Args) > 0 {
			v := s.Args[0]
			if upper {
				v = strings.ToUpper(v)
			}
			p, at := field(x)
			*p, *at = v, s
		}
		return ""
	}
}

// intInto is the handler of a keyword with an integer in lo..hi, which
// it stores with its statement where field says.
func intInto(lo, hi int, field func(*instSrc) (*int, **Stmt)) func(*converter, *instSrc, *Stmt) string {
	return func(c *converter, src *instSrc, s *Stmt) string {
		if v, ok := c.intArg(s, src.subject, lo, hi); ok {
			p, at := field(src)
			*p, *at = v, s
		}
		return ""
	}
}

// secondsInto is intInto for a number of seconds.
func secondsInto(lo, hi time.Duration, field func(*instSrc) (*time.Duration, **Stmt)) func(*converter, *instSrc, *Stmt) string {
	return func(c *converter, src *instSrc, s *Stmt) string {
		if d, ok := c.secondsArg(s, src.subject, lo, hi); ok {
			p, at := field(src)
			*p, *at = d, s
		}
		return ""
	}
}

// stmtInto is the handler of a keyword whose statement is read later: it
// stores it where field says.
func stmtInto[T any](field func(T) **Stmt) func(*converter, T, *Stmt) string {
	return func(_ *converter, src T, s *Stmt) string {
		*field(src) = s
		return ""
	}
}

// stmtsInto is stmtInto for a keyword that may be repeated.
func stmtsInto[T any](field func(T) *[]*Stmt) func(*converter, T, *Stmt) string {
	return func(_ *converter, src T, s *Stmt) string {
		*field(src) = append(*field(src), s)
		return ""
	}
}

// entriesInto is stmtsInto for a block whose lines are read later.
func entriesInto[T any](field func(T) *[]*Stmt) func(*converter, T, *Stmt) string {
	return func(_ *converter, src T, s *Stmt) string {
		*field(src) = append(*field(src), s.Block...)
		return ""
	}
}

var (
	sourceIP   = stmtInto(func(src *instSrc) **Stmt { return &src.src })
	notifyStmt = stmtsInto(func(src *instSrc) *[]*Stmt { return &src.notify })
)

// notifyFields are where each notify keyword's command goes.
var notifyFields = map[string]func(*outNotify) *[]string{
	"notify":        func(n *outNotify) *[]string { return &n.command },
	"notify_master": func(n *outNotify) *[]string { return &n.master },
	"notify_backup": func(n *outNotify) *[]string { return &n.backup },
	"notify_fault":  func(n *outNotify) *[]string { return &n.fault },
	"notify_stop":   func(n *outNotify) *[]string { return &n.stop },
}

// authIn is an authentication block while it is read.
type authIn struct {
	typ, pass         string
	typStmt, passStmt *Stmt
	subject           string
}

var authKeywords = keywords[*authIn]{
	"auth_type": wordInto(true, func(x *authIn) (*string, **Stmt) { return &x.typ, &x.typStmt }),
	"auth_pass": wordInto(false, func(x *authIn) (*string, **Stmt) { return &x.pass, &x.passStmt }),
}

func otherAuth(c *converter, x *authIn, s *Stmt) string {
	return c.notConverted(s, x.subject, "unknown authentication keyword")
}
