package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// keepalived's LVS virtual_server blocks become vipd virtual_servers
// (docs/load-balancing.md): the kernel's NAT, with one check per virtual
// server run against each real server.

// keepalived's defaults for a virtual server and its checkers.
const (
	kaDelayLoop      = 60 * time.Second
	kaConnectTimeout = 5 * time.Second
	kaRetry          = 1
	kaPersistence    = 6 * time.Minute
)

// outVS is a converted virtual_server.
type outVS struct {
	head        []string
	name        string
	address     netip.Addr
	port        int
	protocol    string
	mode        string
	scheduler   string
	persistence time.Duration
	quorum      int // 0: not written
	check       *outRSCheck
	reals       []outReal
	notes       map[string][]string
	tail        []string
}

func (v *outVS) note(field string, comments ...string) {
	if v.notes == nil {
		v.notes = map[string][]string{}
	}
	v.notes[field] = append(v.notes[field], comments...)
}

// outRSCheck is the check of a virtual server, from the first real
// server's checker.
type outRSCheck struct {
	http              bool
	path, scheme      string
	host              string
	insecure          bool
	status            []int
	port              int // 0: each real server's own
	interval, timeout time.Duration
	fall              int
}

func (a outRSCheck) same(b outRSCheck) bool {
	return a.http == b.http && a.path == b.path && a.scheme == b.scheme && a.host == b.host &&
		strings.Trim(fmt.Sprint(a.status), "[]") == strings.Trim(fmt.Sprint(b.status), "[]") &&
		a.port == b.port && a.interval == b.interval && a.timeout == b.timeout && a.fall == b.fall
}

type outReal struct {
	head    []string
	address netip.Addr
	port    int
	weight  int
}

// vsIn is a virtual_server while its block is read.
type vsIn struct {
	stmt      *Stmt
	subject   string
	algo      string
	algoStmt  *Stmt
	kind      string
	kindStmt  *Stmt
	delayLoop time.Duration
	persist   *Stmt
	proto     string
	quorum    *Stmt
	reals     []*rsIn
}

// rsIn is a real_server while its block is read.
type rsIn struct {
	stmt    *Stmt
	subject string
	weight  int
	wStmt   *Stmt
	checks  []*chkIn
	head    []string
}

// chkIn is a TCP_CHECK, HTTP_GET or SSL_GET while its block is read.
type chkIn struct {
	stmt       *Stmt
	subject    string
	http, ssl  bool
	path       string
	status     []int
	host       string
	port       int
	timeout    time.Duration
	delayLoop  time.Duration
	retry      int
	retryStmt  *Stmt
	delayRetry *Stmt
	urls       int
	notes      []string
}

// vsReasons say why a virtual_server keyword is not converted.
var vsReasons = map[string]string{
	"sorry_server":            "vipd has no sorry server: below quorum new connections get a TCP reset",
	"sorry_server_inhibit":    "vipd has no sorry server",
	"sorry_server_lvs_method": "vipd has no sorry server",
	"inhibit_on_failure":      "vipd takes a failed real server out of the map (its connections drain), it never keeps it with weight 0",
	"omega":                   "vipd runs no quorum scripts; track the virtual server from an instance (track_virtual_servers) instead",
	"quorum_up":               "vipd runs no quorum scripts; track the virtual server from an instance (track_virtual_servers) or use a notify command",
	"quorum_down":             "vipd runs no quorum scripts; track the virtual server from an instance (track_virtual_servers) or use a notify command",
	"hysteresis":              "vipd's quorum has no hysteresis",
	"ha_suspend":              "vipd checks real servers on every node, Master or not (the rules are there all the time)",
	"virtualhost":             "set check.http.host by hand if the real servers need a Host header",
	"persistence_granularity": "vipd's persistence is per client address",
	"persistence_engine":      "vipd's persistence is per client address",
	"ops":                     "vipd has no one-packet scheduling",
	"lb_flags":                "vipd has no IPVS scheduler flags",
	"flag-1":                  "vipd has no IPVS scheduler flags",
	"flag-2":                  "vipd has no IPVS scheduler flags",
	"flag-3":                  "vipd has no IPVS scheduler flags",
	"sh-port":                 "vipd's source_hash hashes the client address only",
	"sh-fallback":             "vipd's source_hash picks among the healthy real servers anyway",
	"mh-port":                 "vipd's source_hash hashes the client address only",
	"mh-fallback":             "vipd's source_hash picks among the healthy real servers anyway",
	"smtp_alert":              noEmail,
	"retry":                   "the converter reads retry inside a checker only: move it into the TCP_CHECK, HTTP_GET or SSL_GET blocks",
	"delay_before_retry":      "vipd spaces every check by the interval",
	"warmup":                  "vipd spaces every check by the interval, with no random start delay",
}

// rsReasons say why a real_server keyword is not converted.
var rsReasons = map[string]string{
	"inhibit_on_failure": vsReasons["inhibit_on_failure"],
	"notify_up":          "vipd runs no real server scripts; vipd_real_server_up is a metric",
	"notify_down":        "vipd runs no real server scripts; vipd_real_server_up is a metric",
	"uthreshold":         "vipd has no connection limits per real server",
	"lthreshold":         "vipd has no connection limits per real server",
	"smtp_alert":         noEmail,
	"MISC_CHECK":         "vipd has no script checks for real servers: its check is tcp or http, run against each real server",
	"SMTP_CHECK":         "vipd's real server checks are tcp or http",
	"DNS_CHECK":          "vipd's real server checks are tcp or http",
	"BFD_CHECK":          "vipd has no BFD",
	"FILE_CHECK":         "vipd's real server checks are tcp or http",
	"PING_CHECK":         "vipd's real server checks are tcp or http",
	"UDP_CHECK":          "vipd's real server checks are tcp or http",
	"delay_loop":         "vipd has one interval per virtual server",
	"virtualhost":        vsReasons["virtualhost"],
}

// schedulers are keepalived's lb_algo values and the vipd scheduler
// nearest each; note says what differs ("" when nothing does), warn
// whether that is worth a warning.
var schedulers = map[string]struct {
	scheduler, note string
	warn            bool
}{
	"rr":  {"round_robin", "IPVS's rr ignores the weights: they are not written", false},
	"wrr": {"round_robin", "", false},
	"sh":  {"source_hash", "", false},
	"mh":  {"source_hash", "vipd's source_hash is not consistent: a change of the healthy real servers moves most clients", true},
	// vipd's least_conn is weighted and needs mode: proxy (lbAlgo).
	"lc":    {"least_conn", "", false},
	"wlc":   {"least_conn", "", false},
	"sed":   {"least_conn", "vipd has no shortest-expected-delay scheduler: converted as least_conn, weighted least connections", true},
	"nq":    {"least_conn", "vipd has no never-queue scheduler: converted as least_conn, weighted least connections", true},
	"lblc":  {"round_robin", "vipd has no locality-based scheduling: converted as round_robin", true},
	"lblcr": {"round_robin", "vipd has no locality-based scheduling: converted as round_robin", true},
	"dh":    {"round_robin", "vipd has no destination hashing: converted as round_robin", true},
	"fo":    {"round_robin", "vipd has no weighted failover scheduler: converted as round_robin", true},
	"ovf":   {"round_robin", "vipd has no overflow scheduler: converted as round_robin", true},
	"twos":  {"round_robin", "vipd has no two-choice scheduler: converted as round_robin", true},
}

// proxyNote says what a virtual server converted to mode proxy changes
// for its real servers.
const proxyNote = "least_conn counts connections, which vipd does in mode proxy (a userspace proxy): real servers see this host's address, not the client's as with LVS NAT"

// leastConnUDP is why a UDP virtual server with a connection-counting
// lb_algo stays in nat mode.
const leastConnUDP = "vipd counts connections only in mode proxy, which carries TCP only: converted as round_robin in nat mode"

var vsKeywords = keywords[*vsIn]{
	"delay_loop": func(c *converter, v *vsIn, s *Stmt) string {
		if d, ok := c.secondsArg(s, v.subject, 10*time.Millisecond, time.Hour); ok {
			v.delayLoop = d
		}
		return ""
	},
	"lb_algo":    wordInto(false, func(v *vsIn) (*string, **Stmt) { return &v.algo, &v.algoStmt }),
	"lvs_sched":  wordInto(false, func(v *vsIn) (*string, **Stmt) { return &v.algo, &v.algoStmt }),
	"lb_kind":    wordInto(true, func(v *vsIn) (*string, **Stmt) { return &v.kind, &v.kindStmt }),
	"lvs_method": wordInto(true, func(v *vsIn) (*string, **Stmt) { return &v.kind, &v.kindStmt }),
	"alpha": func(c *converter, _ *vsIn, s *Stmt) string {
		return c.same(s, "vipd's real servers start down and join after rise (here 1) passing checks")
	},
	"persistence_timeout": stmtInto(func(v *vsIn) **Stmt { return &v.persist }),
	"quorum":              stmtInto(func(v *vsIn) **Stmt { return &v.quorum }),
	"protocol": func(c *converter, v *vsIn, s *Stmt) string {
		if len(s.Args) == 0 {
			c.ignored(s, v.subject, "protocol", "no value; ignored")
			return ""
		}
		v.proto = strings.ToUpper(s.Args[0])
		return ""
	},
	"real_server": func(c *converter, v *vsIn, s *Stmt) string {
		r := &rsIn{stmt: s, subject: v.subject + ": real_server " + strings.Join(s.Args, " "), weight: 1}
		r.head = rsKeywords.walk(c, r, s.Block, otherRS)
		v.reals = append(v.reals, r)
		return ""
	},
}

func otherVS(c *converter, v *vsIn, s *Stmt) string {
	reason, ok := vsReasons[s.Keyword]
	if !ok {
		reason = "no vipd equivalent"
	}
	return c.notConverted(s, v.subject, reason)
}

var rsKeywords = keywords[*rsIn]{
	"weight": func(c *converter, r *rsIn, s *Stmt) string {
		if w, ok := c.intArg(s, r.subject, 0, math.MaxInt32); ok {
			r.weight, r.wStmt = w, s
		}
		return ""
	},
	"TCP_CHECK": checker(false, false),
	"HTTP_GET":  checker(true, false),
	"SSL_GET":   checker(true, true),
}

func otherRS(c *converter, r *rsIn, s *Stmt) string {
	reason, ok := rsReasons[s.Keyword]
	if !ok {
		reason = "no vipd equivalent"
	}
	return c.notConverted(s, r.subject, reason)
}

// checker reads a TCP_CHECK (neither), HTTP_GET (http) or SSL_GET (both).
func checker(http, ssl bool) func(*converter, *rsIn, *Stmt) string {
	return func(c *converter, r *rsIn, s *Stmt) string {
		k := &chkIn{stmt: s, subject: r.subject + ": " + s.Keyword, http: http, ssl: ssl, retry: -1}
		k.notes = checkKeywords.walk(c, k, s.Block, otherCheck)
		r.checks = append(r.checks, k)
		return ""
	}
}

var checkKeywords = keywords[*chkIn]{
	"connect_timeout": func(c *converter, k *chkIn, s *Stmt) string {
		if d, ok := c.secondsArg(s, k.subject, time.Millisecond, time.Hour); ok {
			k.timeout = d
		}
		return ""
	},
	"delay_loop": func(c *converter, k *chkIn, s *Stmt) string {
		if d, ok := c.secondsArg(s, k.subject, 10*time.Millisecond, time.Hour); ok {
			k.delayLoop = d
		}
		return ""
	},
	"connect_port": func(c *converter, k *chkIn, s *Stmt) string {
		if p, ok := c.intArg(s, k.subject, 1, 65535); ok {
			k.port = p
		}
		return ""
	},
	"retry":        checkRetry,
	"nb_get_retry": checkRetry,
	"delay_before_retry": func(_ *converter, k *chkIn, s *Stmt) string {
		k.delayRetry = s
		return ""
	},
	"warmup": func(c *converter, k *chkIn, s *Stmt) string {
		return c.same(s, "vipd starts checking at once")
	},
	"virtualhost": func(_ *converter, k *chkIn, s *Stmt) string {
		if len(s.Args) > 0 {
			k.host = s.Args[0]
		}
		return ""
	},
	"url": func(c *converter, k *chkIn, s *Stmt) string {
		k.urls++
		if k.urls > 1 {
			return c.notConverted(s, k.subject, "vipd's check gets one path: the first url is used")
		}
		return strings.Join(urlKeywords.walk(c, k, s.Block, otherURL), "; ")
	},
}

func checkRetry(c *converter, k *chkIn, s *Stmt) string {
	if n, ok := c.intArg(s, k.subject, 0, 99); ok {
		k.retry, k.retryStmt = n, s
	}
	return ""
}

func otherCheck(c *converter, k *chkIn, s *Stmt) string {
	return c.notConverted(s, k.subject, "no vipd equivalent")
}

var urlKeywords = keywords[*chkIn]{
	"path": func(c *converter, k *chkIn, s *Stmt) string {
		if len(s.Args) == 0 || !strings.HasPrefix(s.Args[0], "/") {
			c.ignored(s, k.subject, "url path", "not a path starting with /; ignored")
			return ""
		}
		k.path = s.Args[0]
		return ""
	},
	"status_code": func(c *converter, k *chkIn, s *Stmt) string {
		for _, a := range s.Args {
			code, err := strconv.Atoi(a)
			if err != nil || code < 100 || code > 599 {
				c.ignored(s, k.subject, "status_code "+a, "not a status code in 100..599 (ranges are not converted); ignored")
				continue
			}
			k.status = append(k.status, code)
		}
		return ""
	},
	"digest": func(c *converter, k *chkIn, s *Stmt) string {
		return c.notConverted(s, k.subject, "vipd's HTTP check looks at the status only, not at a digest of the body")
	},
}

func otherURL(c *converter, k *chkIn, s *Stmt) string {
	return c.notConverted(s, k.subject, "vipd's HTTP check looks at the status only")
}

// virtualServer reads a virtual_server block into a vipd virtual server,
// or reports why it cannot be one.
func (c *converter) virtualServer(s *Stmt) string {
	subject := "virtual_server " + strings.Join(s.Args, " ")
	if len(s.Args) > 0 && (s.Args[0] == "fwmark" || s.Args[0] == "group") {
		why := "vipd balances one address and port per virtual server; give each its own virtual_servers entry"
		if s.Args[0] == "fwmark" {
			why = "vipd matches connections by address and port, not by firewall mark; give each address and port its own virtual_servers entry"
		}
		return c.notConverted(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Raw: s.Raw, seq: s.seq}, "", why)
	}
	var (
		addr netip.Addr
		port int
		err  error
	)
	if len(s.Args) == 2 {
		addr, err = netip.ParseAddr(s.Args[0])
		if err == nil && (addr.Zone() != "" || addr.Is4In6()) {
			err = fmt.Errorf("zone")
		}
		if err == nil {
			port, err = strconv.Atoi(s.Args[1])
			if err == nil && (port < 1 || port > 65535) {
				err = fmt.Errorf("range")
			}
		}
	}
	if len(s.Args) != 2 || err != nil {
		return c.notConverted(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Raw: s.Raw, seq: s.seq}, "", "expected virtual_server ADDRESS PORT")
	}
	v := &vsIn{stmt: s, subject: subject, delayLoop: kaDelayLoop, proto: "TCP"}
	out := &outVS{address: addr, port: port, mode: "nat"}
	out.head = []string{fmt.Sprintf("%s (%s)", subject, s.Pos)}
	out.tail = vsKeywords.walk(c, v, s.Block, otherVS)

	switch v.proto {
	case "TCP", "UDP":
		out.protocol = strings.ToLower(v.proto)
	default:
		return c.notConverted(s, "", "protocol "+v.proto+": vipd balances tcp and udp only")
	}
	key := out.protocol + " " + netip.AddrPortFrom(addr, uint16(port)).String()
	if first, dup := c.vsKeys[key]; dup {
		return c.notConverted(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Raw: s.Raw, seq: s.seq}, "", "the same address, port and protocol as the virtual_server at "+first.String()+"")
	}
	c.lbAlgo(v, out)
	c.lbKind(v, out)
	if v.persist != nil {
		d := kaPersistence
		if len(v.persist.Args) > 0 {
			if n, ok := c.intArg(v.persist, subject, 0, 24*3600); ok {
				d = time.Duration(n) * time.Second
			}
		}
		out.persistence = d
		if d > 0 {
			out.note("persistence", c.same(v.persist, ""))
		}
	}
	c.reals(v, out)
	if len(out.reals) == 0 {
		return c.notConverted(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Raw: s.Raw, seq: s.seq}, "", "no real_server could be converted")
	}
	c.fitWeights(v, out)
	c.rsCheck(v, out)
	c.quorum(v, out)
	c.vsKeys[key] = s.Pos
	out.name = sanitize("vs-"+strings.NewReplacer(":", "_").Replace(addr.String())+"-"+strconv.Itoa(port), "vs", c.vsNames)
	c.vservers = append(c.vservers, out)
	return ""
}

// lbKind: vipd does NAT or a userspace proxy; DR and TUN need
// the real servers to answer the client directly, which vipd cannot set
// up.
func (c *converter) lbKind(v *vsIn, out *outVS) {
	switch s := v.kindStmt; {
	case s == nil && out.mode == "proxy":
		out.note("mode", "keepalived's default lb_kind is NAT; "+proxyNote)
	case s == nil:
		out.note("mode", "keepalived's default lb_kind is NAT")
	case v.kind == "NAT" && out.mode == "proxy":
		out.note("mode", c.same(s, proxyNote))
	case v.kind == "NAT":
		out.note("mode", c.same(s, ""))
	case v.kind == "DR" || v.kind == "TUN":
		how, note, does := "remote real servers see this host's address (masquerade)", "remote real servers see this host's address", "NAT"
		if out.mode == "proxy" {
			how, does = "real servers see this host's address (the proxy's own connection)", "a userspace proxy"
			note = how
		}
		out.note("mode", c.report(s, Finding{Subject: v.subject, What: s.Line(), Msg: "vipd does NAT (or a userspace proxy), not direct routing or tunnelling: converted as " + out.mode + ". Replies now go back through this host: " + how + ", and no longer need the VIP on their loopback", Note: "vipd does " + does + ", not " + v.kind + ": " + note + ", and need no VIP on their loopback"}))
	default:
		out.note("mode", c.report(s, Finding{Subject: v.subject, What: s.Line(), Kind: Ignored, Msg: "unknown lb_kind: converted as nat"}))
	}
}

// lbAlgo converts lb_algo; the connection-counting ones (keepalived's
// default wlc among them) make a TCP virtual server a proxy.
func (c *converter) lbAlgo(v *vsIn, out *outVS) {
	out.scheduler = "round_robin"
	s := v.algoStmt
	if s == nil {
		if out.protocol == "udp" {
			out.note("scheduler", "keepalived's default lb_algo is wlc; "+leastConnUDP)
			c.warn(v.stmt, v.subject, "no lb_algo", "keepalived's default is wlc: %s", leastConnUDP)
			return
		}
		out.scheduler, out.mode = "least_conn", "proxy"
		out.note("scheduler", "keepalived's default lb_algo is wlc")
		return
	}
	m, ok := schedulers[v.algo]
	if !ok {
		out.note("scheduler", c.report(s, Finding{Subject: v.subject, What: s.Line(), Kind: Ignored, Msg: "unknown lb_algo: converted as round_robin"}))
		return
	}
	if m.scheduler == "least_conn" {
		if out.protocol == "udp" {
			out.note("scheduler", c.report(s, Finding{Subject: v.subject, What: s.Line(), Msg: leastConnUDP, Note: leastConnUDP}))
			return
		}
		out.mode = "proxy"
	}
	out.scheduler = m.scheduler
	switch {
	case m.warn:
		out.note("scheduler", c.report(s, Finding{Subject: v.subject, What: s.Line(), Msg: m.note, Note: m.note}))
	default:
		out.note("scheduler", c.same(s, m.note))
	}
}

// reals converts the real servers: address, port and weight.
func (c *converter) reals(v *vsIn, out *outVS) {
	seen := map[netip.AddrPort]bool{}
	kept := v.reals[:0]
	for _, r := range v.reals {
		s := r.stmt
		bad := func(why string) {
			out.tail = append(out.tail, c.notConverted(&Stmt{Pos: s.Pos, Keyword: s.Keyword, Raw: s.Raw, seq: s.seq}, v.subject, why))
		}
		if len(s.Args) < 1 || len(s.Args) > 2 {
			bad("expected real_server ADDRESS [PORT]")
			continue
		}
		a, err := netip.ParseAddr(s.Args[0])
		if err != nil || a.Zone() != "" || a.Is4In6() {
			bad("not an IP address")
			continue
		}
		if a.Is4() != out.address.Is4() {
			bad("not " + config.FamilyWord(config.FamilyOf(out.address)) + " like the virtual server: NAT does not translate between families")
			continue
		}
		port := out.port
		if len(s.Args) == 2 {
			p, err := strconv.Atoi(s.Args[1])
			if err != nil || p < 1 || p > 65535 {
				bad("the port must be in 1..65535")
				continue
			}
			port = p
		}
		ap := netip.AddrPortFrom(a, uint16(port))
		if seen[ap] {
			c.ignored(s, v.subject, "real_server "+ap.String(), "listed twice; converted once")
			continue
		}
		seen[ap] = true
		rs := outReal{address: a, port: port, weight: r.weight, head: r.head}
		switch {
		case r.weight == 0:
			bad("weight 0: keepalived sends it no new connections (quiesced); vipd's weights are 1..256, leave it out until it takes traffic")
			continue
		case r.weight > config.MaxRealWeight:
			c.warn(r.wStmt, r.subject, "weight "+strconv.Itoa(r.weight), "vipd's weights are at most %d: converted as %d", config.MaxRealWeight, config.MaxRealWeight)
			rs.weight = config.MaxRealWeight
		}
		if v.algo == "rr" {
			rs.weight = 1
		}
		out.reals = append(out.reals, rs)
		kept = append(kept, r)
	}
	v.reals = kept
}

// fitWeights keeps the weights within what vipd's map holds: divided by
// their greatest common divisor they add up to at most 1024.
func (c *converter) fitWeights(v *vsIn, out *outVS) {
	g, total := 0, 0
	for _, r := range out.reals {
		a, b := g, r.weight
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	for _, r := range out.reals {
		total += r.weight / g
	}
	if total <= 1024 {
		return
	}
	for i := range out.reals {
		out.reals[i].weight = 1
	}
	c.warn(v.stmt, v.subject, "", "the real servers' weights add up to %d after dividing by their greatest common divisor, more than vipd's 1024: converted as weight 1 each", total)
}

// rsCheck takes the first real server's checker as the virtual server's
// check: vipd runs one check per virtual server, against each real
// server.
func (c *converter) rsCheck(v *vsIn, out *outVS) {
	var first *outRSCheck
	var firstAt *chkIn
	for i, r := range v.reals {
		for j, k := range r.checks {
			ch := c.oneCheck(v, k)
			if j > 0 {
				out.tail = append(out.tail, c.notConverted(&Stmt{Pos: k.stmt.Pos, Keyword: k.stmt.Keyword, seq: k.stmt.seq}, r.subject, "vipd runs one check per real server: the first checker is used"))
				continue
			}
			if k.port == out.reals[i].port {
				ch.port = 0
			}
			if first == nil {
				first, firstAt = &ch, k
				out.note("check", k.notes...)
				continue
			}
			if !ch.same(*first) {
				out.note("check", c.report(k.stmt, Finding{Subject: r.subject, What: k.stmt.Keyword, Kind: NotConverted,
					Msg:  fmt.Sprintf("differs from the checker at %s: vipd runs one check per virtual server, the first one", firstAt.stmt.Pos),
					Note: "differs from the first; vipd runs the first checker against every real server"}))
			}
		}
	}
	if first == nil {
		ch := outRSCheck{interval: v.delayLoop, timeout: min(kaConnectTimeout, v.delayLoop/2), fall: 1}
		first = &ch
		out.note("check", c.report(v.stmt, Finding{Subject: v.subject, Said: "no TCP_CHECK, HTTP_GET or SSL_GET", Msg: "keepalived counts such real servers as always up; vipd checks every real server: converted as a tcp check", Note: "keepalived: no real server checker, they count as always up; vipd checks each with a TCP connection"}))
	}
	for _, r := range v.reals {
		if len(r.checks) == 0 && firstAt != nil {
			c.warn(r.stmt, r.subject, "no checker", "keepalived counts it as always up; vipd checks it like the others")
		}
	}
	out.check = first
}

// oneCheck converts a checker. keepalived marks a real server down after
// the first failure and retry more, and up again after one success.
func (c *converter) oneCheck(v *vsIn, k *chkIn) outRSCheck {
	ch := outRSCheck{http: k.http, path: k.path, status: k.status, port: k.port, host: k.host}
	if k.http {
		if ch.path == "" {
			ch.path = "/"
		}
		ch.scheme = "http"
		if k.ssl {
			ch.scheme, ch.insecure = "https", true
			k.notes = append(k.notes, "keepalived's SSL_GET does not verify the certificate: insecure_skip_verify (set ca_file to verify it)")
		}
	}
	ch.interval = v.delayLoop
	if k.delayLoop > 0 {
		ch.interval = k.delayLoop
	}
	timeout := kaConnectTimeout
	if k.timeout > 0 {
		timeout = k.timeout
	}
	if timeout >= ch.interval {
		adj := ch.interval / 2
		k.notes = append(k.notes, c.report(k.stmt, Finding{Subject: k.subject, What: "connect_timeout " + duration(timeout), Msg: fmt.Sprintf(" is not shorter than the interval %s, as vipd requires: converted as %s", duration(ch.interval), duration(adj)), Note: "; vipd needs it shorter than the interval"}))
		timeout = adj
	}
	ch.timeout = timeout
	retry := kaRetry
	if k.retry >= 0 {
		retry = k.retry
	}
	ch.fall = retry + 1
	if ch.fall > 100 {
		ch.fall = 100
	}
	tries := "retries"
	if retry == 1 {
		tries = "retry"
	}
	note := fmt.Sprintf("fall %d: keepalived marks a real server down after a failure and %d %s, up after one success", ch.fall, retry, tries)
	if k.retryStmt != nil || k.delayRetry != nil {
		note += "; its retries come delay_before_retry apart, vipd's checks an interval apart"
	}
	k.notes = append(k.notes, note)
	return ch
}

// quorum: keepalived's quorum is a total weight of live real servers,
// vipd's a count.
func (c *converter) quorum(v *vsIn, out *outVS) {
	s := v.quorum
	if s == nil {
		return
	}
	q, ok := c.intArg(s, v.subject, 1, math.MaxInt32)
	if !ok {
		return
	}
	w := out.reals[0].weight
	same := true
	for _, r := range out.reals {
		same = same && r.weight == w
	}
	n := (q + w - 1) / w
	if !same {
		n = q
	}
	if n > len(out.reals) {
		n = len(out.reals)
		out.note("quorum", c.report(s, Finding{Subject: v.subject, What: s.Line(), Msg: fmt.Sprintf("more than the real servers can reach: converted as %d, all of them", n), Note: "more than the real servers reach; converted as all of them"}))
	}
	out.quorum = n
	msg := "vipd's quorum counts healthy real servers (keepalived's adds up their weights), and below it the virtual server has no real servers at all (keepalived keeps them and runs quorum_down)"
	if !same {
		msg = "the weights differ: converted as a count of real servers; " + msg
	}
	out.note("quorum", c.report(s, Finding{Subject: v.subject, What: s.Line(), Msg: msg, Note: msg}))
}

func (v *outVS) write(w *yamlWriter) {
	const ind = 4
	w.comments(2, v.head)
	w.field(2, "- name", scalar(v.name))
	f := func(key, value string) {
		w.comments(ind, v.notes[key])
		w.field(ind, key, value)
	}
	f("address", scalar(v.address.String()))
	f("port", strconv.Itoa(v.port))
	f("protocol", v.protocol)
	f("mode", v.mode)
	f("scheduler", v.scheduler)
	if v.persistence > 0 {
		f("persistence", duration(v.persistence))
	}
	if v.quorum > 0 {
		f("quorum", strconv.Itoa(v.quorum))
	}
	ch := v.check
	w.comments(ind, v.notes["check"])
	w.line(ind, "check:")
	if ch.http {
		h := []string{"path: " + flowScalar(ch.path), "scheme: " + ch.scheme}
		if ch.host != "" {
			h = append(h, "host: "+flowScalar(ch.host))
		}
		if ch.insecure {
			h = append(h, "insecure_skip_verify: true")
		}
		switch len(ch.status) {
		case 0:
		case 1:
			h = append(h, "expect_status: "+strconv.Itoa(ch.status[0]))
		default:
			codes := make([]string, len(ch.status))
			for i, s := range ch.status {
				codes[i] = strconv.Itoa(s)
			}
			h = append(h, "expect_status: ["+strings.Join(codes, ", ")+"]")
		}
		w.field(ind+2, "http", "{"+strings.Join(h, ", ")+"}")
	} else {
		w.field(ind+2, "tcp", "{}")
	}
	if ch.port != 0 {
		w.field(ind+2, "port", strconv.Itoa(ch.port))
	}
	w.field(ind+2, "interval", duration(ch.interval))
	w.field(ind+2, "timeout", duration(ch.timeout))
	w.field(ind+2, "fall", strconv.Itoa(ch.fall))
	w.field(ind+2, "rise", "1")
	w.line(ind, "real_servers:")
	for _, r := range v.reals {
		w.comments(ind+2, r.head)
		line := fmt.Sprintf("- {address: %s, port: %d", flowScalar(r.address.String()), r.port)
		if r.weight != 1 {
			line += ", weight: " + strconv.Itoa(r.weight)
		}
		w.line(ind+2, line+"}")
	}
	w.comments(ind, v.tail)
}
