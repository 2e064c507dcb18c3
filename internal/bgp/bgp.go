//go:build !nobgp

package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/vipd/vipd/internal/config"
)

// Timing of the speaker.
const (
	// pollEvery is how often the sessions' states are read, for the log,
	// metrics and status.
	pollEvery = time.Second
	// connectRetry is GoBGP's pause between connection attempts to a
	// peer that does not answer (its default is 120 s).
	connectRetry = 5 * time.Second
	// withdrawWait is how long Close leaves the withdrawals to leave
	// before it closes the sessions.
	withdrawWait = 200 * time.Millisecond
)

// Speaker is one GoBGP server with vipd's peers and routes. Its methods
// never wait for the network: they record what is wanted and wake the
// speaker's goroutine, which alone talks to GoBGP.
type Speaker struct {
	log *slog.Logger

	mu    sync.Mutex // guards cfg, want, peers
	cfg   config.BGP
	want  map[string][]netip.Prefix // by owner
	peers []Peer
	// reasons are why each peer's last session ended, from GoBGP's
	// peer events.
	reasons map[netip.Addr]string
	wake    chan struct{} // cap 1
	stop    chan struct{}
	done    chan struct{}
	closed  bool

	// The goroutine's own.
	s         *server.BgpServer
	unwatch   context.CancelFunc
	running   *config.BGP // what the server was started with, nil if not
	applied   map[netip.Addr]config.BGPPeer
	announced map[netip.Prefix]bool
	comms     []uint32
}

// New starts a speaker for cfg. onChange, if not nil, is called from the
// speaker's goroutine after the peers' states changed.
func New(cfg config.BGP, log *slog.Logger, onChange func()) *Speaker {
	sp := &Speaker{log: log, cfg: cfg, want: map[string][]netip.Prefix{}, reasons: map[netip.Addr]string{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		applied: map[netip.Addr]config.BGPPeer{}, announced: map[netip.Prefix]bool{}}
	go sp.run(onChange)
	sp.poke()
	return sp
}

// Set makes owner's routes prefixes (nil: none); any goroutine, never
// blocks on the network.
func (sp *Speaker) Set(owner string, prefixes []netip.Prefix) {
	sp.mu.Lock()
	if len(prefixes) == 0 {
		delete(sp.want, owner)
	} else {
		sp.want[owner] = slices.Clone(prefixes)
	}
	sp.mu.Unlock()
	sp.poke()
}

// Reconfigure takes a reload's bgp section. Peers that did not change
// keep their sessions; a new ASN or router ID restarts the speaker.
func (sp *Speaker) Reconfigure(cfg config.BGP) {
	sp.mu.Lock()
	sp.cfg = cfg
	sp.mu.Unlock()
	sp.poke()
}

// Peers returns the sessions' states, in configuration order.
func (sp *Speaker) Peers() []Peer {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return slices.Clone(sp.peers)
}

// Announced returns the routes announced now, sorted.
func (sp *Speaker) Announced() []netip.Prefix {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.wanted()
}

// wanted is the union of every owner's prefixes, sorted; sp.mu held.
func (sp *Speaker) wanted() []netip.Prefix {
	set := map[netip.Prefix]bool{}
	for _, ps := range sp.want {
		for _, p := range ps {
			set[p] = true
		}
	}
	out := slices.Collect(maps.Keys(set))
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}

func (sp *Speaker) poke() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// Close withdraws every route, waits briefly for the withdrawals to
// leave, then closes the sessions (a CEASE NOTIFICATION to each peer,
// RFC 4486) and stops the server.
func (sp *Speaker) Close() {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return
	}
	sp.closed = true
	sp.mu.Unlock()
	close(sp.stop)
	<-sp.done
}

func (sp *Speaker) run(onChange func()) {
	defer close(sp.done)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-sp.wake:
			sp.sync()
			if sp.poll() && onChange != nil {
				onChange()
			}
		case <-tick.C:
			if sp.poll() && onChange != nil {
				onChange()
			}
		case <-sp.stop:
			sp.shutdown()
			return
		}
	}
}

// sync brings GoBGP to what is wanted.
func (sp *Speaker) sync() {
	sp.mu.Lock()
	cfg := sp.cfg
	cfg.Peers = slices.Clone(cfg.Peers)
	want := sp.wanted()
	sp.mu.Unlock()

	if sp.running != nil && (sp.running.ASN != cfg.ASN || sp.running.RouterID != cfg.RouterID) {
		sp.log.Info("BGP identity changed; restarting the speaker", "asn", cfg.ASN, "router_id", cfg.RouterID)
		sp.stopServer()
	}
	if sp.running == nil {
		if err := sp.startServer(cfg); err != nil {
			sp.log.Error("starting the BGP speaker failed", "err", err)
			return
		}
	}
	if !slices.Equal(sp.comms, cfg.Communities) {
		// Announce everything again with the new communities.
		sp.withdraw(slices.Collect(maps.Keys(sp.announced)))
		sp.comms = slices.Clone(cfg.Communities)
	}
	sp.syncPeers(cfg)
	sp.syncRoutes(want)
}

func (sp *Speaker) startServer(cfg config.BGP) error {
	s := server.NewBgpServer(server.LoggerOption(slog.New(warnOnly{sp.log.Handler()}).With("component", "gobgp"), levelWarn()))
	go s.Serve()
	err := s.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn:      cfg.ASN,
		RouterId: cfg.RouterID.String(),
		// vipd only speaks: it never listens for sessions.
		ListenPort: -1,
	}})
	if err != nil {
		s.Stop()
		return err
	}
	wctx, unwatch := context.WithCancel(context.Background())
	err = s.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: func(e *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
		st := e.Peer.State
		reason := st.DisconnectMessage
		if reason == "" && st.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
			reason = st.DisconnectReason.String()
		}
		// The idle hold timer ends every failed attempt: keep the
		// reason before it (a NOTIFICATION, a refused connection).
		if reason == "" || st.DisconnectReason == api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED {
			return
		}
		sp.mu.Lock()
		sp.reasons[st.NeighborAddress] = reason
		sp.mu.Unlock()
		sp.poke()
	}}, server.WatchPeer())
	if err != nil {
		unwatch()
		s.Stop()
		return err
	}
	sp.s, sp.unwatch = s, unwatch
	c := cfg
	sp.running = &c
	sp.applied = map[netip.Addr]config.BGPPeer{}
	sp.announced = map[netip.Prefix]bool{}
	sp.comms = slices.Clone(cfg.Communities)
	sp.log.Info("BGP speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID)
	return nil
}

// warnOnly passes GoBGP's warnings and errors to vipd's log: its
// debug lines are per message and connection attempt.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }
func (h warnOnly) WithGroup(g string) slog.Handler       { return warnOnly{h.Handler.WithGroup(g)} }

// levelWarn keeps GoBGP's own logging to warnings and errors.
func levelWarn() *slog.LevelVar {
	var v slog.LevelVar
	v.Set(slog.LevelWarn)
	return &v
}

func (sp *Speaker) stopServer() {
	if sp.s == nil {
		return
	}
	// Stop deconfigures every peer, which sends CEASE (RFC 4486 §4, Peer
	// De-configured), and waits for the sessions to end.
	sp.unwatch()
	sp.s.Stop()
	sp.s, sp.running = nil, nil
}

func (sp *Speaker) syncPeers(cfg config.BGP) {
	next := map[netip.Addr]config.BGPPeer{}
	for _, p := range cfg.Peers {
		next[p.Address] = p
	}
	for addr, old := range sp.applied {
		if p, ok := next[addr]; ok && p == old {
			continue
		}
		if err := sp.s.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			sp.log.Warn("removing BGP peer", "peer", addr, "err", err)
		}
		delete(sp.applied, addr)
	}
	for _, p := range cfg.Peers {
		if _, ok := sp.applied[p.Address]; ok {
			continue
		}
		if err := sp.s.AddPeer(context.Background(), &api.AddPeerRequest{Peer: apiPeer(p)}); err != nil {
			sp.log.Error("adding BGP peer failed", "peer", p.Address, "err", err)
			continue
		}
		sp.applied[p.Address] = p
		sp.log.Info("BGP peer added", "peer", p.Address, "peer_asn", p.ASN)
	}
}

// apiPeer is p as GoBGP wants it: unicast of p's family, no graceful
// restart (a router would keep a dead node's routes).
func apiPeer(p config.BGPPeer) *api.Peer {
	hold := uint64(p.HoldTime / time.Second)
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Address.Is6() {
		family.Afi = api.Family_AFI_IP6
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: uint64(connectRetry / time.Second),
			IdleHoldTimeAfterReset: uint64(connectRetry / time.Second),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family, Enabled: true}}},
	}
	if p.Source.IsValid() {
		ap.Transport.LocalAddress = p.Source.String()
	}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	return ap
}

func (sp *Speaker) syncRoutes(want []netip.Prefix) {
	keep := map[netip.Prefix]bool{}
	var add []netip.Prefix
	for _, p := range want {
		keep[p] = true
		if !sp.announced[p] {
			add = append(add, p)
		}
	}
	var gone []netip.Prefix
	for p := range sp.announced {
		if !keep[p] {
			gone = append(gone, p)
		}
	}
	sp.withdraw(gone)
	for _, p := range add {
		path, err := sp.path(p)
		if err == nil {
			_, err = sp.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}})
		}
		if err != nil {
			sp.log.Error("announcing route failed", "prefix", p, "err", err)
			continue
		}
		sp.announced[p] = true
		sp.log.Info("route announced", "prefix", p)
	}
}

func (sp *Speaker) withdraw(ps []netip.Prefix) {
	for _, p := range ps {
		path, err := sp.path(p)
		if err == nil {
			err = sp.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}})
		}
		if err != nil {
			sp.log.Error("withdrawing route failed", "prefix", p, "err", err)
		}
		delete(sp.announced, p)
		sp.log.Info("route withdrawn", "prefix", p)
	}
}

// path is the route to p: origin IGP, an unspecified next hop, which
// GoBGP replaces with the session's local address, and the communities.
func (sp *Speaker) path(p netip.Prefix) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgp.RF_IPv4_UC
	if p.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if len(sp.comms) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(sp.comms))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// poll reads the sessions' states and logs their changes; it reports
// whether any changed.
func (sp *Speaker) poll() bool {
	sp.mu.Lock()
	order := make([]config.BGPPeer, len(sp.cfg.Peers))
	copy(order, sp.cfg.Peers)
	reasons := maps.Clone(sp.reasons)
	prev := map[netip.Addr]Peer{}
	for _, p := range sp.peers {
		prev[p.Address] = p
	}
	sp.mu.Unlock()
	got := map[string]*api.Peer{}
	if sp.s != nil {
		err := sp.s.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.State != nil {
				got[p.State.NeighborAddress] = p
			}
		})
		if err != nil {
			sp.log.Warn("reading BGP sessions", "err", err)
		}
	}
	peers := make([]Peer, 0, len(order))
	changed := len(order) != len(prev)
	for _, c := range order {
		p := Peer{Address: c.Address, ASN: c.ASN, State: "idle", Reason: reasons[c.Address]}
		if ap := got[c.Address.String()]; ap != nil {
			p.State = stateName(ap.State.SessionState)
			if p.Established() && ap.Timers != nil && ap.Timers.State != nil && ap.Timers.State.Uptime != nil {
				p.Since = ap.Timers.State.Uptime.AsTime()
			}
		}
		old, seen := prev[c.Address]
		if !seen || old.State != p.State || old.Reason != p.Reason {
			changed = true
			sp.logChange(old, p)
		}
		peers = append(peers, p)
	}
	sp.mu.Lock()
	sp.peers = peers
	sp.mu.Unlock()
	return changed
}

func (sp *Speaker) logChange(old, p Peer) {
	switch {
	case p.Established():
		sp.log.Info("BGP session established", "peer", p.Address, "peer_asn", p.ASN)
	case old.Established():
		sp.log.Warn("BGP session down", "peer", p.Address, "peer_asn", p.ASN, "to", p.State, "reason", p.Reason)
	case old.State != "" && p.Reason != "" && p.Reason != old.Reason:
		sp.log.Warn("BGP session not established", "peer", p.Address, "peer_asn", p.ASN, "state", p.State, "reason", p.Reason)
	}
}

func stateName(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return fmt.Sprintf("unknown(%d)", s)
}

// shutdown withdraws everything, waits for the UPDATEs to leave, and
// closes the sessions.
func (sp *Speaker) shutdown() {
	if sp.s == nil {
		return
	}
	if len(sp.announced) > 0 {
		sp.withdraw(slices.Collect(maps.Keys(sp.announced)))
		time.Sleep(withdrawWait)
	}
	sp.stopServer()
}
