package e2e

// Helpers of the auth_hmac tests: keys on disk and in the test, signed and
// replayed adverts, and the drop counters the tests watch.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
)

// The auth_hmac modes (config.AuthMode), as a configuration spells them.
const (
	authReceiveOnly = "receive_only"
	authPermissive  = "permissive"
	authEnforce     = "enforce"
)

// authKeys are the secrets of a test's keys, by id, each in a file of mode
// 0600 in the lab's directory.
type authKeys struct {
	t       *testing.T
	dir     string
	secrets map[int][]byte
}

// newAuthKeys makes a random 32-byte secret for each id; odd ids are
// written raw, even ones as "hex:" text, so that both forms are read.
func newAuthKeys(t *testing.T, dir string, ids ...int) *authKeys {
	t.Helper()
	k := &authKeys{t: t, dir: dir, secrets: map[int][]byte{}}
	for _, id := range ids {
		k.secrets[id] = authSecret(t)
		if err := lab.WriteSecret(k.path(id), k.secrets[id], id%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func authSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (k *authKeys) path(id int) string { return filepath.Join(k.dir, fmt.Sprintf("auth-key%d", id)) }

// block is an auth_hmac block in mode with the given keys (by secret_file)
// signing with active; active 0 leaves active_key to vipd's default.
func (k *authKeys) block(mode string, active int, ids ...int) *lab.AuthHMAC {
	a := &lab.AuthHMAC{Mode: mode, ActiveKey: active}
	for _, id := range ids {
		if k.secrets[id] == nil {
			k.t.Fatalf("no key %d", id)
		}
		a.Keys = append(a.Keys, lab.AuthKey{ID: id, SecretFile: k.path(id)})
	}
	return a
}

// key is the test's own copy of key id, to sign and verify with.
func (k *authKeys) key(id int) *vrrp.Key {
	k.t.Helper()
	return newAuthKey(k.t, id, k.secrets[id])
}

func newAuthKey(t *testing.T, id int, secret []byte) *vrrp.Key {
	t.Helper()
	key, err := vrrp.NewKey(uint8(id), secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// withAuth returns in with auth_hmac a.
func withAuth(in lab.Instance, a *lab.AuthHMAC) lab.Instance {
	in.AuthHMAC = a
	return in
}

// rigConfig is the configuration rig.start gives vipd on n.
func (r *rig) rigConfig(n *lab.Node, ins ...lab.Instance) string {
	f := lab.VipdFile{ControlSocket: svcSocket(r.l, n), Instances: ins}
	if r.metrics {
		f.MetricsListen = rigMetrics
	}
	return f.YAML()
}

// reload replaces n's configuration with ins and has vipd reload it the
// way an operator would, "vipd reload", which answers once the new
// configuration runs.
func (r *rig) reloadVipd(n *lab.Node, ins ...lab.Instance) {
	r.t.Helper()
	svcWriteConfig(r.t, n, r.rigConfig(n, ins...))
	code, out, errOut := svcRunVipd(r.t, "reload", "--socket", svcSocket(r.l, n))
	if code != 0 || out != "reloaded\n" {
		r.fatalf("vipd reload on %s: exit %d, stdout %q, stderr %q; want 0 and \"reloaded\"", n.Name, code, out, errOut)
	}
}

// strangerAdvert is an advert of the test's VRID for vip at priority, every
// 100ms as the lab's daemons advertise.
func strangerAdvert(vip netip.Addr, priority uint8) *vrrp.Packet {
	return &vrrp.Packet{
		Version: 3, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: priority,
		Interval: uint16(interval / (10 * time.Millisecond)), Addresses: []netip.Addr{vip},
	}
}

// sign returns pkt from src to dst signed with key at sequence number seq,
// checksum included.
func authSign(t *testing.T, key *vrrp.Key, pkt *vrrp.Packet, src, dst netip.Addr, seq uint64) []byte {
	t.Helper()
	b, err := key.Append(nil, pkt, src, dst, vrrp.ChecksumPseudoHeader, seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reChecksum6 writes into b the VRRPv3 checksum of b sent from src to dst
// over IPv6: over the pseudo-header (RFC 8200 §8.1) and the whole message,
// trailer included (RFC 9568 §5.2.8).
func reChecksum6(b []byte, src, dst netip.Addr) {
	b[6], b[7] = 0, 0
	var acc uint32
	add := func(p []byte) {
		for ; len(p) >= 2; p = p[2:] {
			acc += uint32(p[0])<<8 | uint32(p[1])
		}
		if len(p) == 1 {
			acc += uint32(p[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	acc += uint32(len(b)) + vrrp.ProtocolNumber
	add(b)
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	binary.BigEndian.PutUint16(b[6:8], ^uint16(acc))
}

// authClock hands out growing sequence numbers read from a clock that is
// skew off the real one: vrrp.SeqAt(now+skew), or one more than the last
// when that is not after it.
type authClock struct {
	skew time.Duration
	last uint64
}

func (c *authClock) next() uint64 {
	c.last = vrrp.NextSeq(c.last, time.Now().Add(c.skew), 0)
	return c.last
}

// flood calls send count times, every apart, until ctx ends, and returns
// how many it sent.
func authFlood(ctx context.Context, count int, every time.Duration, send func(i int) error) (int, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range count {
		if err := send(i); err != nil {
			return i, err
		}
		select {
		case <-ctx.Done():
			return i + 1, nil
		case <-tick.C:
		}
	}
	return count, nil
}

// dropCounts reads n's vipd_packets_dropped_total by reason.
func droppedByReason(t *testing.T, n *lab.Node) map[string]float64 {
	t.Helper()
	return scrapeMetrics(t, n).byLabel("vipd_packets_dropped_total", "reason")
}

// dropDelta is after − before, by reason, leaving out reasons that did not
// move.
func droppedSince(before, after map[string]float64) map[string]int {
	d := map[string]int{}
	for r, v := range after {
		if x := int(v - before[r]); x != 0 {
			d[r] = x
		}
	}
	return d
}

// authOnly keeps the auth_* reasons of counts.
func authOnly(counts map[string]int) map[string]int {
	out := map[string]int{}
	for r, v := range counts {
		if strings.HasPrefix(r, "auth_") {
			out[r] = v
		}
	}
	return out
}

// authRefusal is vipd's log record of an advert authentication refused:
// logged once per reason every 10s at most, with how many went unlogged.
type authRefusal struct {
	Msg       string `json:"msg"`
	Reason    string `json:"reason"`
	From      string `json:"from"`
	NotLogged int    `json:"not_logged"`
}

// authRefusals returns n's records of refused adverts, every vipd run on
// n, killed ones too.
func authRefusals(t *testing.T, n *lab.Node) []authRefusal {
	t.Helper()
	log, err := n.Log()
	if err != nil {
		t.Fatal(err)
	}
	var out []authRefusal
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"advert refused by authentication`) {
			continue
		}
		var rec authRefusal
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "advert refused by authentication") {
			out = append(out, rec)
		}
	}
	return out
}

// loggedAuthDrops counts by reason the refused adverts n's log records
// (at least one per reason logged).
func loggedAuthDrops(t *testing.T, n *lab.Node) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range authRefusals(t, n) {
		out[r.Reason] += 1 + r.NotLogged
	}
	return out
}

// loggedFrom reports whether n logged a refusal for reason of an advert
// from src.
func loggedFrom(t *testing.T, n *lab.Node, reason string, src netip.Addr) bool {
	t.Helper()
	for _, r := range authRefusals(t, n) {
		if r.Reason == reason && r.From == src.String() {
			return true
		}
	}
	return false
}

func reasonCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// waitDrops polls n's drop counters until reason has risen by want since
// before, or has risen and then stopped moving for 200ms, at most 3s (the
// receive loop may still be catching up), and returns the counters' rise
// by reason.
func waitDrops(t *testing.T, n *lab.Node, before map[string]float64, reason string, want int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	last, still := 0, 0
	for {
		d := droppedSince(before, droppedByReason(t, n))
		if d[reason] > 0 && d[reason] == last {
			still++
		} else {
			still = 0
		}
		if d[reason] >= want || still >= 2 || time.Now().After(deadline) {
			return d
		}
		last = d[reason]
		time.Sleep(100 * time.Millisecond)
	}
}

// wantDrops checks what n counted while the test sent sent packets it
// should drop for reason: that reason rose by nearly all of them (a
// socket buffer may lose one on a busy machine) and at most by all, and no
// other auth_* reason rose.
func wantDrops(t *testing.T, what string, n *lab.Node, got map[string]int, reason string, sent int) {
	t.Helper()
	if g := got[reason]; g > sent || g*10 < sent*9 {
		t.Errorf("%s: %s counted %d drops for %s, want %d (all it was sent); all drops counted: %s", what, n.Name, g, reason, sent, reasonCounts(got))
	}
	for r, v := range authOnly(got) {
		if r != reason {
			t.Errorf("%s: %s counted %d drops for %s, want none (only %s)", what, n.Name, v, r, reason)
		}
	}
}

// sampleVIP is sampleHolders for the rig's VIP, IPv4 or IPv6.
func (r *rig) sampleVIP(every, limit time.Duration) *holderSampler {
	return sampleHoldersOf(r.l, r.vip, every, limit)
}

// onlyHolder fails t at the first sample in which n is not the only
// holder of the VIP.
func onlyHolderThroughout(t *testing.T, what string, samples []holderSample, n *lab.Node) {
	t.Helper()
	if len(samples) == 0 {
		t.Fatalf("%s: no sample of the VIP's holders", what)
	}
	for i, s := range samples {
		if len(s.holders) != 1 || s.holders[0] != n {
			t.Errorf("%s: sample %d of %d at %s: the VIP's holders are %s, want only %s",
				what, i, len(samples), s.at.Format(time.StampMicro), lab.Names(s.holders), n.Name)
			return
		}
	}
}

// noChanges fails t for every state change n logged since since.
func noStateChanges(t *testing.T, what string, n *lab.Node, since time.Time) {
	t.Helper()
	for _, c := range stateChangesTo(t, n, "", since) {
		t.Errorf("%s: %s changed state at %s: %s → %s (%s)", what, n.Name, c.Time.Format(time.StampMicro), c.From, c.To, c.Reason)
	}
}

// nextAdvert takes n's adverts to the group of the rig's family off the
// wire until one that ok accepts, at most 2s (a reload may take effect an
// advert later than its answer), and returns it as sent and as parsed;
// what says what ok wants.
func (r *rig) nextAdvertFrom(n *lab.Node, what string, ok func(*vrrp.Packet) bool) ([]byte, *vrrp.Packet) {
	r.t.Helper()
	src := netip.MustParseAddr(r.source(n))
	dst := vrrp.IPv4Group
	if src.Is6() {
		dst = vrrp.IPv6Group
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var last *vrrp.Packet
	var lastErr error
	msg, err := r.l.CaptureAdvert(ctx, src, func(b []byte) bool {
		p, err := vrrp.Parse(b, src, dst)
		if err != nil {
			lastErr = err
			return false
		}
		last = p
		return ok(p)
	})
	if err != nil {
		r.fatalf("%s's adverts: none %s: %v; the last one seen: %+v (parse error %v)", n.Name, what, err, last, lastErr)
	}
	p, _ := vrrp.Parse(msg, src, dst)
	return msg, p
}

// captureSigned takes n's next advert signed with key's id off the wire
// and checks that it verifies with the test's copy of the key.
func (r *rig) captureSigned(n *lab.Node, key *vrrp.Key) ([]byte, *vrrp.Packet) {
	r.t.Helper()
	msg, p := r.nextAdvertFrom(n, fmt.Sprintf("signed with key %d", key.ID()), func(p *vrrp.Packet) bool {
		return p.Signed && p.Auth.KeyID == key.ID()
	})
	if !key.Verify(msg, netip.MustParseAddr(r.source(n))) {
		r.fatalf("%s's advert, signed with key %d, does not verify with the test's copy of that key: %+v", n.Name, key.ID(), p)
	}
	return msg, p
}

// statuses is each node's api instance as "vipd status" reports it.
func (r *rig) statusLines(nodes ...*lab.Node) []string {
	r.t.Helper()
	var out []string
	for _, n := range nodes {
		st := svcStatus(r.t, svcSocket(r.l, n), "api")
		out = append(out, fmt.Sprintf("%s: %s since %s at %d", n.Name, st.State, st.Since.Format(time.StampMicro), st.Priority))
	}
	return out
}

// undisturbed runs change (reloads, typically) under the rig's prober p and
// checks that, then and for settle after it, none of nodes (which run
// vipd) changed state or what "vipd status" says, master alone held the
// VIP, the client lost no echo reply and no node counted any drop.
func (r *rig) holdUndisturbed(p *lab.Prober, master *lab.Node, nodes []*lab.Node, what string, settle time.Duration, change func()) {
	r.t.Helper()
	t := r.t
	before := map[*lab.Node]map[string]float64{}
	for _, n := range nodes {
		before[n] = droppedByReason(t, n)
	}
	status := r.statusLines(nodes...)
	p.ResetOutage()
	start := time.Now()
	sampler := r.sampleVIP(10*time.Millisecond, time.Minute)
	change()
	time.Sleep(settle)
	onlyHolderThroughout(t, what, sampler.stop(t), master)
	if s := p.Stats(); s.Outage > 0 {
		t.Errorf("%s: the client lost echo replies for %v from %s", what, s.Outage.Round(time.Millisecond), s.OutageStart.Format(time.StampMicro))
	}
	for _, n := range nodes {
		noStateChanges(t, what, n, start)
		if d := droppedSince(before[n], droppedByReason(t, n)); len(d) > 0 {
			t.Errorf("%s: %s counted drops: %s, want none", what, n.Name, reasonCounts(d))
		}
	}
	if after := r.statusLines(nodes...); !slices.Equal(after, status) {
		t.Errorf("%s: vipd status went from %q to %q", what, status, after)
	}
	if t.Failed() {
		t.FailNow()
	}
}
