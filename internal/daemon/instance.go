package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/ladder"
	"github.com/vipd/vipd/internal/metrics"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// instance is one virtual router as its loop holds it: the router, the
// adverts it sends, what it tracks and its series. Only its loop's
// goroutine touches it, except status, an atomic snapshot.
type instance struct {
	cfg config.Instance
	log *slog.Logger
	r   *router.Router

	// admit is what the loop's reader checks adverts against and counts
	// them in. A reload replaces it (publish) rather than change it: the
	// reader may be using the old one.
	admit *admission
	// replay is the auth_hmac replay state, which outlives admit (nil
	// until the instance has auth_hmac); only the reader touches what is
	// inside.
	replay *ladder.Replay

	// sign, when not nil, signs adverts (auth_hmac permissive or
	// enforce); seq is the last sequence number sent and seqWindow the
	// time_window it restarts from the clock after (0: monotonic).
	sign      *vrrp.Key
	seq       uint64
	seqWindow time.Duration

	// src is the source of adverts, and the address compared on equal
	// priorities; dsts are where adverts go; csum how they are summed.
	src  netip.Addr
	dsts []netip.Addr
	csum vrrp.Checksum
	pkt  vrrp.Packet
	// adverts is the advertisement for each destination at priority
	// advertsPrio, rebuilt when the priority or the source changes.
	adverts     []transport.Outgoing
	advertsPrio uint8
	// queued says adverts of the instance wait in the loop's batch: a
	// second one before the flush (a shutdown's priority 0 after a
	// routine advert) must not be signed into the same buffers.
	queued bool

	// tracker holds the tracked checks and interfaces; effective is the
	// priority they leave.
	tracker   *tracker
	effective uint8

	// ownFault says its tracker or interface keeps it in FAULT;
	// groupFault that its sync group does (another member's ownFault).
	// vote is what it last reported to its group, if voted.
	ownFault, groupFault bool
	vote                 router.Member
	voted                bool

	// stopping says it left the election and waits only to release its
	// VIPs; released, if not nil, is closed once it has (gone).
	stopping bool
	released chan struct{}
	// sendFailing is set after a failed send, so that only the first
	// failure of a run is logged at warn level.
	sendFailing bool

	hooks *hooks // nil without notify commands

	// vmac is the virtual MAC interface of a virtual_mac instance once
	// started (nil otherwise); vmacUp says it is up, holding the VIPs.
	vmac   VMAC
	vmacUp bool

	// owner names the instance to the routes manager: its name and a
	// number of its own, so that an instance restarted under its name
	// and its predecessor, which may still hand its VIPs over, are two.
	owner string
	// routed says the manager has the instance's routes and rules.
	routed bool

	// heapAt is the instance's key in its loop's timer heap, heapIdx its
	// position (-1 when not in it).
	heapAt  time.Time
	heapIdx int

	// cell is the snapshot Status reads, from any goroutine.
	cell *statusCell
}

// statusCell holds an instance's latest Status and its counters: what
// Status and the metrics read, from any goroutine. The daemon creates it,
// so that they find it by name; the loop (and its reader, for received)
// updates it.
type statusCell struct {
	p atomic.Pointer[Status]

	sent, received, announced, masterChanges atomic.Uint64
	added, removed                           atomic.Uint64 // VIP repairs
	splitBrain                               atomic.Bool
	transitions                              [router.Fault + 1][router.Fault + 1]atomic.Uint64
}

// sample is the cell as the metrics want it.
func (c *statusCell) sample(s *metrics.InstanceSample) {
	st := c.p.Load()
	*s = metrics.InstanceSample{
		Name: st.Name, Interface: st.Interface, Family: st.Family, VRID: st.VRID,
		State: int(st.State), Configured: st.ConfiguredPriority, Effective: st.Priority,
		SplitBrain: c.splitBrain.Load(), Sent: c.sent.Load(), Received: c.received.Load(),
		Announcements: c.announced.Load(), AnnounceKind: announceKind(st.Family),
		MasterChanges: c.masterChanges.Load(), Added: c.added.Load(), Removed: c.removed.Load(),
	}
	if st.Master.IsValid() {
		s.Master = st.Master.String()
	}
	for from := range c.transitions {
		for to := range c.transitions[from] {
			s.Transitions[from][to] = c.transitions[from][to].Load()
		}
	}
}

// admission is what the loop's reader needs of an instance for every
// packet: the ladder's rules and the counter of adverts it admits.
type admission struct {
	rules    ladder.Rules
	received *atomic.Uint64
}

func newInstance(ic config.Instance, cell *statusCell, d *Daemon, log *slog.Logger) *instance {
	in := &instance{
		cfg:       ic,
		log:       log.With("instance", ic.Name, "vrid", ic.VRID),
		effective: ic.Priority,
		heapIdx:   -1,
		cell:      cell,
	}
	in.setAuth()
	in.owner = fmt.Sprintf("%s/%d", ic.Name, d.owners.Add(1))
	in.pkt = vrrp.Packet{Version: uint8(ic.Version), Type: vrrp.TypeAdvertisement, VRID: ic.VRID}
	if ic.AuthPass != "" {
		in.pkt.AuthType, in.pkt.AuthData = in.admit.rules.AuthType, in.admit.rules.Auth
	}
	in.setInterval()
	for _, v := range ic.VIPs {
		in.pkt.Addresses = append(in.pkt.Addresses, v.Addr())
	}
	in.csum = vrrp.ChecksumPseudoHeader
	if ic.V3ChecksumAsV2 || ic.Version == 2 {
		in.csum = vrrp.ChecksumNoPseudoHeader
	}
	cell.p.Store(&Status{Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Family: ic.Family, State: router.Init,
		Priority: ic.Priority, ConfiguredPriority: ic.Priority, VIPs: ic.VIPs, Since: time.Now(), Auth: authStatus(ic.AuthHMAC), SyncGroup: ic.SyncGroup})

	if hasHooks(ic.Notify) {
		in.hooks = newHooks(ic.Notify.Timeout, d.runCommand, in.log)
	}
	return in
}

// setAuth derives from cfg what the reader admits and how adverts are
// signed; the loop publishes the new admission.
func (in *instance) setAuth() {
	rules := ladder.RulesFor(in.cfg)
	in.sign, in.seqWindow = nil, 0
	if a := in.cfg.AuthHMAC; a != nil {
		if in.replay == nil {
			in.replay = ladder.NewReplay(max(ladder.DefaultReplaySenders, len(in.cfg.UnicastPeers)))
		}
		v, err := ladder.NewHMAC(a, in.replay)
		if err != nil {
			// config.Load refuses what NewHMAC would: a key without
			// its secret is a caller's bug, not an operator's.
			panic("auth_hmac: " + err.Error())
		}
		rules.HMAC = v
		if a.Mode.Signs() {
			k := a.Key(a.ActiveKey)
			if in.sign, err = vrrp.NewKey(k.ID, k.Secret); err != nil {
				panic("auth_hmac: " + err.Error())
			}
			if a.AntiReplay == config.AntiReplayTime {
				in.seqWindow = a.TimeWindow
			}
		}
	}
	in.admit = &admission{rules: rules, received: &in.cell.received}
}

// wantRoutes hands the instance's routes and rules to rs (it holds its
// VIPs), replacing what it wanted before.
func (in *instance) wantRoutes(rs RouteSet) {
	if len(in.cfg.Routes) == 0 && len(in.cfg.Rules) == 0 {
		in.releaseRoutes(rs)
		return
	}
	rs.Want(in.owner, in.cfg.Routes, in.cfg.Rules)
	in.routed = true
}

// releaseRoutes takes the instance's routes and rules back from rs.
func (in *instance) releaseRoutes(rs RouteSet) {
	if in.routed {
		rs.Release(in.owner)
		in.routed = false
	}
}

// authStatus is Status.Auth for a: "enforce, signing with key 2".
func authStatus(a *config.AuthHMAC) string {
	switch {
	case a == nil:
		return ""
	case a.Mode.Signs():
		return fmt.Sprintf("%s, signing with key %d", a.Mode, a.ActiveKey)
	}
	return string(a.Mode) + ", not signing"
}

func (in *instance) routerConfig() router.Config {
	return router.Config{
		Priority:         in.effective,
		AdvertInterval:   in.cfg.AdvertInterval,
		Preempt:          in.cfg.Preempt,
		PreemptDelay:     in.cfg.PreemptDelay,
		Addr:             in.src,
		AnnounceRounds:   in.cfg.Announce.Count,
		AnnounceInterval: in.cfg.Announce.Interval,
		AnnounceRefresh:  in.cfg.Announce.Refresh,
		Grouped:          in.cfg.SyncGroup != "",
	}
}

func (in *instance) setInterval() {
	if in.cfg.Version == 2 {
		// RFC 3768 §5.3.7: whole seconds.
		in.pkt.Interval = uint16(in.cfg.AdvertInterval / time.Second)
		return
	}
	// RFC 9568 §5.2.7: centiseconds; the config allows only whole ones.
	in.pkt.Interval = uint16(in.cfg.AdvertInterval / (10 * time.Millisecond))
}

// advertsAt returns the advertisement at priority p for each destination.
// The one at the router's own priority is kept for the next interval; a
// priority-0 advert is built afresh. Signed adverts carry a new sequence
// number each time: they are signed again, into the kept buffers unless
// fresh says those may still be queued.
func (in *instance) advertsAt(p uint8, now time.Time, fresh bool) []transport.Outgoing {
	if in.sign != nil {
		return in.signedAt(p, now, fresh)
	}
	if p == in.advertsPrio && in.adverts != nil {
		return in.adverts
	}
	in.pkt.Priority = p
	out := make([]transport.Outgoing, 0, len(in.dsts))
	for _, dst := range in.dsts {
		// The checksum covers the destination (RFC 9568 §5.2.8).
		b, err := in.pkt.Append(nil, in.src, dst, in.csum)
		if err != nil {
			in.log.Error("cannot build the advertisement", "dst", dst, "err", err)
			continue
		}
		out = append(out, transport.Outgoing{B: b, Src: in.src, Dst: dst})
	}
	if p != 0 {
		in.adverts, in.advertsPrio = out, p
	}
	return out
}

// signedAt is advertsAt for an instance that signs: one sequence number
// for the advertisement, sent to every destination (the HMAC does not
// cover the destination; the checksum does).
func (in *instance) signedAt(p uint8, now time.Time, fresh bool) []transport.Outgoing {
	in.seq = vrrp.NextSeq(in.seq, now, in.seqWindow)
	in.pkt.Priority = p
	out := in.adverts
	if fresh || p != in.advertsPrio || len(out) != len(in.dsts) {
		out = make([]transport.Outgoing, len(in.dsts))
	}
	n := 0
	for _, dst := range in.dsts {
		b, err := in.sign.Append(out[n].B[:0], &in.pkt, in.src, dst, in.csum, in.seq)
		if err != nil {
			in.log.Error("cannot build the advertisement", "dst", dst, "err", err)
			continue
		}
		out[n] = transport.Outgoing{B: b, Src: in.src, Dst: dst}
		n++
	}
	out = out[:n]
	if p != 0 && !fresh {
		in.adverts, in.advertsPrio = out, p
	}
	return out
}

// resetAdverts drops the cached advertisement (a new source or interval).
func (in *instance) resetAdverts() { in.adverts = nil }

// sendResult logs and counts the outcome of sending one advertisement; the
// first failure of a run is a warning.
func (in *instance) sendResult(err error) {
	switch {
	case err != nil && !in.sendFailing:
		in.sendFailing = true
		in.log.Warn("sending advertisement failed; retrying at every interval", "err", err)
	case err != nil:
		in.log.Debug("sending advertisement failed", "err", err)
	default:
		in.cell.sent.Add(1)
		if in.sendFailing {
			in.sendFailing = false
			in.log.Info("sending advertisements again")
		}
	}
}

// setStatus updates the snapshot that Status reads.
func (in *instance) setStatus(f func(*Status)) {
	s := *in.cell.p.Load()
	f(&s)
	in.cell.p.Store(&s)
}

// transition reports a state change: metrics, hooks, status, the log.
func (in *instance) transition(a router.Action, master netip.Addr) {
	if in.hooks != nil {
		in.hooks.transition(in.cfg.Notify, in.cfg.Name, a.To, in.effective)
	}
	in.cell.transitions[a.From][a.To].Add(1)
	in.setStatus(func(s *Status) { s.State, s.Since = a.To, time.Now() })
	attrs := []any{"from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String()}
	if master.IsValid() {
		attrs = append(attrs, "master", master)
	}
	in.log.Info("state change", attrs...)
}

// observeMaster keeps the Master address metrics and status.
func (in *instance) observeMaster(prev netip.Addr) {
	master := in.r.Master()
	if master == prev {
		return
	}
	if prev.IsValid() && master.IsValid() {
		in.cell.masterChanges.Add(1)
	}
	in.setStatus(func(s *Status) { s.Master = master })
}

// joined says the instance has joined the election (or FAULT): its router
// exists from then on.
func (in *instance) joined() bool { return in.r != nil }

// gone says the instance has released its VIPs for good.
func (in *instance) gone() {
	in.closeVMAC()
	if in.released != nil {
		close(in.released)
		in.released = nil
	}
}

// vipPrefix is how vip goes on the interface: on a virtual MAC interface
// as a host address, so that its subnet route stays the parent's.
func (in *instance) vipPrefix(vip netip.Prefix) netip.Prefix {
	if in.vmac != nil {
		return netip.PrefixFrom(vip.Addr(), vip.Addr().BitLen())
	}
	return vip
}

// closeVMAC deletes the virtual MAC interface, if any.
func (in *instance) closeVMAC() {
	if in.vmac == nil {
		return
	}
	if err := in.vmac.Close(); err != nil {
		in.log.Warn("removing the virtual MAC interface failed", "iface", in.cfg.VirtualMACInterface, "err", err)
	}
	in.vmac, in.vmacUp = nil, false
}

// announceKind is the announcements label of a family.
func announceKind(family string) string {
	if family == "ipv6" {
		return "na"
	}
	return "garp"
}

func hasHooks(n config.Notify) bool {
	return len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) > 0
}
