package e2e

// Helpers of the parity tests (announce.refresh, vips_as_source, routes and
// rules): rounds of announcements heard by the client, and the kernel's
// addresses, routes and rules as ip(8) shows them.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// vipdProto is the rtm_protocol of vipd's routes and the FRA_PROTOCOL of
// its rules, as "ip -N" prints it.
const vipdProto = "249"

// newParityRig is newRig for a lab with more than newRig gives (further
// segments), every vipd serving metrics at rigMetrics.
func newParityRig(t *testing.T, vip netip.Prefix, cfg lab.Config) *rig {
	t.Helper()
	r := newRigOf(t, vip, cfg)
	r.metrics = true
	return r
}

// startAndAnswer starts vipd on n with the instances and waits until its
// control socket answers.
func (r *rig) startAndAnswer(n *lab.Node, ins ...lab.Instance) {
	r.t.Helper()
	r.start(n, vipdKind, ins...)
	svcWaitFor(r.t, n.Name+"'s control socket answers", patience, func() (bool, string) {
		if !n.Running() {
			r.t.Fatalf("vipd on %s exited at start; log:\n%s", n.Name, n.LogTail(30))
		}
		_, err := svcStatusOf(svcSocket(r.l, n))
		return err == nil, fmt.Sprint(err)
	})
}

// waitStates waits until each named instance of n's vipd is in state.
func (r *rig) waitStates(n *lab.Node, state string, names ...string) {
	r.t.Helper()
	for _, name := range names {
		svcWaitState(r.t, svcSocket(r.l, n), name, state)
	}
}

// waitHoldersOf is rig.waitHolders for another VIP than the rig's.
func (r *rig) waitHoldersOf(vip netip.Prefix, what string, ok func([]*lab.Node) bool) {
	r.t.Helper()
	other := *r
	other.vip = vip
	other.waitHolders(what, ok)
}

// announcements is the client's view of the gratuitous ARPs and unsolicited
// neighbour advertisements on the segment, from now until t ends.
func announcements(t *testing.T, l *lab.Lab) *lab.AnnouncementCapture {
	t.Helper()
	c, err := l.Client.CaptureAnnouncements(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.Stop(); err != nil {
			t.Errorf("capturing announcements: %v", err)
		}
	})
	return c
}

// roundGap is the longest gap between two frames of one announcement round
// (the request and reply forms of a gratuitous ARP leave together); rounds
// are announce.interval (200ms by default) or more apart.
const roundGap = 50 * time.Millisecond

// announceRounds returns when the rounds of announcements of addr sent from
// mac began, oldest first.
func announceRounds(seen []lab.Announcement, mac net.HardwareAddr, addr netip.Addr) []time.Time {
	var out []time.Time
	var last time.Time
	for _, a := range seen {
		if a.Addr != addr || a.From.String() != mac.String() {
			continue
		}
		if last.IsZero() || a.At.Sub(last) > roundGap {
			out = append(out, a.At)
		}
		last = a.At
	}
	return out
}

// countIn counts the times in [from, to].
func countIn(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// gaps formats the gaps between consecutive times, for failure messages.
func gaps(ts []time.Time) string {
	var s []string
	for i := 1; i < len(ts); i++ {
		s = append(s, ts[i].Sub(ts[i-1]).Round(time.Millisecond).String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

// timedCounter is a counter read by a scrape that began at start and ended
// at end.
type timedCounter struct {
	v          float64
	start, end time.Time
}

// announceCounter reads n's vipd_announcements_sent_total of the instance.
func (r *rig) announceCounter(n *lab.Node, instance, kind string) timedCounter {
	r.t.Helper()
	start := time.Now()
	var v float64
	for _, s := range svcMustScrape(r.t, n, rigMetrics).find("vipd_announcements_sent_total", "instance", instance, "kind", kind) {
		v += s.Value
	}
	return timedCounter{v: v, start: start, end: time.Now()}
}

// ipAddr is one address of "ip -j addr show".
type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Secondary bool   `json:"secondary"`
	Valid     uint32 `json:"valid_life_time"`
	Preferred uint32 `json:"preferred_life_time"`
}

// forever is an address lifetime without end (INFINITY_LIFE_TIME).
const forever = 1<<32 - 1

func (a ipAddr) String() string {
	s := fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)
	if a.Secondary {
		s += " secondary"
	}
	if a.Preferred != forever {
		s += fmt.Sprintf(" preferred %ds", a.Preferred)
	}
	if a.Valid != forever {
		s += fmt.Sprintf(" valid %ds", a.Valid)
	}
	return s
}

// eth0Addrs returns the addresses on n's eth0, IPv4 and IPv6.
func eth0Addrs(t *testing.T, n *lab.Node) []ipAddr {
	t.Helper()
	out, err := n.IP("-j", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var ls []struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("harness: ip -j addr show dev eth0 on %s: %v: %s", n.Name, err, out)
	}
	return ls[0].AddrInfo
}

// addrsOf returns the entries of as for the addresses of ps, whatever
// their prefix length, in the order of ps.
func addrsOf(as []ipAddr, ps ...netip.Prefix) []ipAddr {
	var out []ipAddr
	for _, p := range ps {
		for _, a := range as {
			if a.Local == p.Addr().String() {
				out = append(out, a)
			}
		}
	}
	return out
}

// kRoute is one route of "ip -N -j route show table all".
type kRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Table    string `json:"table"`
	Protocol string `json:"protocol"`
	Prefsrc  string `json:"prefsrc"`
	Metric   int    `json:"metric"`
}

// String is r the way the tests write the routes they expect:
// "203.0.113.0/25 via 198.51.100.1 dev eth1 table 254 metric 0 src -".
func (r kRoute) String() string {
	dst := r.Dst
	if !strings.Contains(dst, "/") && dst != "default" {
		if a, err := netip.ParseAddr(dst); err == nil {
			dst = netip.PrefixFrom(a, a.BitLen()).String()
		}
	}
	s := ""
	if r.Type != "" {
		s = "type " + r.Type + " "
	}
	return s + fmt.Sprintf("%s via %s dev %s table %s metric %d src %s",
		dst, svcOr(r.Gateway, "-"), svcOr(r.Dev, "-"), svcOr(r.Table, "254"), r.Metric, svcOr(r.Prefsrc, "-"))
}

// routes returns n's routes of the family ("-4" or "-6") in every table
// whose protocol keep accepts (as "ip -N" prints it: "249", "2" for
// kernel, "" for boot).
func routes(t *testing.T, n *lab.Node, family string, keep func(proto string) bool) []string {
	t.Helper()
	s, err := routesOf(n, family, keep)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return s
}

// routesOf is routes for a goroutine.
func routesOf(n *lab.Node, family string, keep func(proto string) bool) ([]string, error) {
	out, err := n.IP("-N", "-j", family, "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	var rs []kRoute
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		return nil, fmt.Errorf("ip -N -j %s route show table all on %s: %w: %s", family, n.Name, err, out)
	}
	var s []string
	for _, r := range rs {
		if keep(r.Protocol) {
			s = append(s, r.String())
		}
	}
	slices.Sort(s)
	return s, nil
}

// isVipd accepts vipd's protocol; notVipdOrKernel what is neither vipd's
// nor the kernel's own (connected and local routes): what someone added
// by hand.
func isVipd(proto string) bool          { return proto == vipdProto }
func notVipdOrKernel(proto string) bool { return proto != vipdProto && proto != "2" }
func notVipd(proto string) bool         { return proto != vipdProto }

// kRule is one rule of "ip -N -j rule show".
type kRule struct {
	Priority int    `json:"priority"`
	Src      string `json:"src"`
	SrcLen   *int   `json:"srclen"`
	Dst      string `json:"dst"`
	DstLen   *int   `json:"dstlen"`
	Table    string `json:"table"`
	Protocol string `json:"protocol"`
}

// String is r as "from 192.0.2.50/32 to all table 100" (the priority left
// out: vipd's rules without one get the kernel's).
func (r kRule) String() string {
	sel := func(a string, l *int) string {
		if a == "" || a == "all" {
			return "all"
		}
		if l != nil {
			return fmt.Sprintf("%s/%d", a, *l)
		}
		p, err := netip.ParseAddr(a)
		if err != nil {
			return a
		}
		return netip.PrefixFrom(p, p.BitLen()).String()
	}
	return fmt.Sprintf("from %s to %s table %s", sel(r.Src, r.SrcLen), sel(r.Dst, r.DstLen), r.Table)
}

// rules returns n's rules of the family whose protocol keep accepts.
func rules(t *testing.T, n *lab.Node, family string, keep func(proto string) bool) []string {
	t.Helper()
	out, err := n.IP("-N", "-j", family, "rule", "show")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var rs []kRule
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("harness: ip -N -j %s rule show on %s: %v: %s", family, n.Name, err, out)
	}
	var s []string
	for _, r := range rs {
		if keep(r.Protocol) {
			s = append(s, r.String())
		}
	}
	slices.Sort(s)
	return s
}

// kernelState is vipd's routes and rules on a node, as "ip -N" shows them.
type kernelState struct {
	Routes4, Routes6, Rules4 []string
}

func (k kernelState) empty() bool {
	return len(k.Routes4) == 0 && len(k.Routes6) == 0 && len(k.Rules4) == 0
}

func (k kernelState) String() string {
	return fmt.Sprintf("IPv4 routes %q, IPv6 routes %q, IPv4 rules %q", k.Routes4, k.Routes6, k.Rules4)
}

// equal compares with nil and empty lists the same.
func (k kernelState) equal(o kernelState) bool {
	return slices.Equal(k.Routes4, o.Routes4) && slices.Equal(k.Routes6, o.Routes6) && slices.Equal(k.Rules4, o.Rules4)
}

// vipdState reads vipd's routes and rules on n.
func vipdState(t *testing.T, n *lab.Node) kernelState {
	t.Helper()
	return kernelState{
		Routes4: routes(t, n, "-4", isVipd),
		Routes6: routes(t, n, "-6", isVipd),
		Rules4:  rules(t, n, "-4", isVipd),
	}
}

// othersState reads the routes and rules on n that are neither vipd's nor
// the kernel's own routes (the rules include the kernel's default ones).
func othersState(t *testing.T, n *lab.Node) kernelState {
	t.Helper()
	return kernelState{
		Routes4: routes(t, n, "-4", notVipdOrKernel),
		Routes6: routes(t, n, "-6", notVipdOrKernel),
		Rules4:  rules(t, n, "-4", notVipd),
	}
}

// routesWithin waits until vipd's routes and rules on n are want, or
// records a failure after d.
func routesWithin(t *testing.T, n *lab.Node, what string, want kernelState, d time.Duration) bool {
	t.Helper()
	return ksWithin(t, time.Now().Add(d), fmt.Sprintf("%s: vipd's routes and rules on %s are %v", what, n.Name, want), func() (bool, string) {
		got := vipdState(t, n)
		return got.equal(want), "they are " + got.String()
	})
}

// routeGet is the gateway n's kernel picks for dst, with "ip route get"
// args after it (e.g. from ADDR).
func routeGet(t *testing.T, n *lab.Node, dst string, args ...string) string {
	t.Helper()
	out, err := n.IP(append([]string{"-j", "route", "get", dst}, args...)...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var rs []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("harness: ip -j route get %s on %s: %v: %s", dst, n.Name, err, out)
	}
	return rs[0].Gateway + " dev " + rs[0].Dev
}
