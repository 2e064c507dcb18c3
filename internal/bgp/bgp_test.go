//go:build !nobgp

package bgp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bfd"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/vipd/vipd/internal/config"
)

// router is a plain GoBGP server on 127.0.0.2 that waits for vipd's
// speaker (from 127.0.0.3) to connect, as a top-of-rack router would.
type router struct {
	s    *server.BgpServer
	port uint16
}

func newRouter(t *testing.T, asn, peerASN uint32) *router {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	s := server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	go s.Serve()
	t.Cleanup(s.Stop)
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: "192.0.2.1", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	err = s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.3", PeerAsn: peerASN},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &router{s: s, port: port}
}

// routes lists the router's IPv4 routes as prefix → next hop.
func (r *router) routes(t *testing.T) map[netip.Prefix]netip.Addr {
	t.Helper()
	out := map[netip.Prefix]netip.Addr{}
	err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC}, func(n bgp.NLRI, paths []*apiutil.Path) {
		p, err := netip.ParsePrefix(n.String())
		if err != nil {
			t.Errorf("NLRI %s: %v", n, err)
			return
		}
		for _, path := range paths {
			for _, a := range path.Attrs {
				if nh, ok := a.(*bgp.PathAttributeNextHop); ok {
					out[p] = nh.Value
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func speakerConfig(port uint16, peerASN uint32) config.BGP {
	return config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("192.0.2.11"), Communities: []uint32{65001<<16 | 100},
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("127.0.0.2"), ASN: peerASN, Port: port, Source: netip.MustParseAddr("127.0.0.3"), HoldTime: 9 * time.Second}}}
}

func TestAnnounceWithdraw(t *testing.T) {
	r := newRouter(t, 65000, 65001)
	sp := New(speakerConfig(r.port, 65000), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	vip := netip.MustParsePrefix("198.51.100.10/32")
	sp.Set("api", []netip.Prefix{vip})
	eventually(t, "the route at the router", func() bool { return r.routes(t)[vip] == netip.MustParseAddr("127.0.0.3") })
	eventually(t, "the session established in Peers", func() bool {
		ps := sp.Peers()
		return len(ps) == 1 && ps[0].Established() && !ps[0].Since.IsZero()
	})
	if got := sp.Announced(); !slices.Equal(got, []netip.Prefix{vip}) {
		t.Errorf("Announced() = %v", got)
	}

	// Another owner of the same prefix keeps it announced.
	sp.Set("other", []netip.Prefix{vip})
	sp.Set("api", nil)
	time.Sleep(300 * time.Millisecond)
	if _, ok := r.routes(t)[vip]; !ok {
		t.Fatal("withdrawn while another owner still wants it")
	}
	sp.Set("other", nil)
	eventually(t, "the route withdrawn", func() bool { _, ok := r.routes(t)[vip]; return !ok })

	// Close withdraws and closes the session.
	sp.Set("api", []netip.Prefix{vip})
	eventually(t, "the route again", func() bool { _, ok := r.routes(t)[vip]; return ok })
	// Close returns once the withdrawal and the CEASE are written; the
	// router applies them on its own goroutines, so the route goes a
	// moment later, far inside the 9 s hold time.
	start := time.Now()
	sp.Close()
	closed := time.Since(start)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := r.routes(t)[vip]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route still at the router 2s after Close (which took %v)", closed)
		}
	}
	t.Logf("Close took %v; the route was gone at the router %v after it began", closed, time.Since(start))
}

// TestReconfigureKeepsSession adds a second peer and a community change
// without resetting the first session.
func TestReconfigureKeepsSession(t *testing.T) {
	r := newRouter(t, 65000, 65001)
	cfg := speakerConfig(r.port, 65000)
	sp := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	eventually(t, "the session", func() bool { ps := sp.Peers(); return len(ps) == 1 && ps[0].Established() })
	since := sp.Peers()[0].Since
	cfg.Peers = append(slices.Clone(cfg.Peers), config.BGPPeer{Address: netip.MustParseAddr("127.0.0.4"), ASN: 65004, Port: r.port, HoldTime: 9 * time.Second})
	sp.Reconfigure(cfg)
	eventually(t, "two peers", func() bool { return len(sp.Peers()) == 2 })
	time.Sleep(2 * pollEvery)
	ps := sp.Peers()
	if !ps[0].Established() || !ps[0].Since.Equal(since) {
		t.Errorf("first session reset by the reload: %+v (was up since %v)", ps[0], since)
	}
	if ps[1].Established() {
		t.Errorf("second peer established with nobody there: %+v", ps[1])
	}
}

// TestReconfigureBFD: turning BFD on, changing its interval and turning
// it off by a reload keep the session, and the BFD packets follow.
func TestReconfigureBFD(t *testing.T) {
	bfdc, err := net.ListenPacket("udp", "127.0.0.2:3784")
	if err != nil {
		t.Skipf("BFD port: %v", err)
	}
	defer bfdc.Close()
	r := newRouter(t, 65000, 65001)
	cfg := speakerConfig(r.port, 65000)
	sp := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	eventually(t, "the session", func() bool { ps := sp.Peers(); return len(ps) == 1 && ps[0].Established() })
	since := sp.Peers()[0].Since
	// nextBFD is the transmit interval of the next BFD packet, 0 for
	// none within 3 s (GoBGP's client starts on a one-second tick).
	nextBFD := func() uint32 {
		t.Helper()
		buf := make([]byte, 512)
		_ = bfdc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := bfdc.ReadFrom(buf)
		if err != nil {
			return 0
		}
		var h bfd.BFDHeader
		if err := h.UnmarshalBinary(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return h.DesiredMinTxInterval
	}
	set := func(on bool, interval time.Duration) {
		t.Helper()
		c := cfg
		c.Peers = slices.Clone(cfg.Peers)
		c.Peers[0].BFD, c.Peers[0].BFDInterval, c.Peers[0].BFDMultiplier = on, interval, 3
		sp.Reconfigure(c)
		eventually(t, "the BFD state", func() bool { return (sp.Peers()[0].BFD != "") == on })
	}
	set(true, 100*time.Millisecond)
	if got := nextBFD(); got != 100000 {
		t.Errorf("BFD after turning it on: tx interval %d µs, want 100000", got)
	}
	set(true, 200*time.Millisecond)
	// A packet or two of the old session may still be queued.
	var got uint32
	for i := 0; i < 5 && got != 200000; i++ {
		got = nextBFD()
	}
	if got != 200000 {
		t.Errorf("BFD after a new interval: tx interval %d µs, want 200000", got)
	}
	set(false, 0)
	time.Sleep(200 * time.Millisecond)
	for nextBFD() != 0 {
		if time.Since(since) > time.Minute {
			t.Fatal("BFD packets go on after BFD was turned off")
		}
	}
	if p := sp.Peers()[0]; !p.Established() || !p.Since.Equal(since) {
		t.Errorf("session reset by a BFD reload: %+v (up since %v)", p, since)
	}
}

// TestWrongASN: the router expects another ASN; the session never comes
// up and Peers says why.
func TestWrongASN(t *testing.T) {
	r := newRouter(t, 65000, 65099)
	sp := New(speakerConfig(r.port, 65000), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	eventually(t, "a disconnect reason", func() bool { ps := sp.Peers(); return len(ps) == 1 && ps[0].Reason != "" })
	if p := sp.Peers()[0]; p.Established() {
		t.Errorf("established with a wrong ASN: %+v", p)
	} else {
		t.Logf("reason: %s", p.Reason)
	}
	eventually(t, "a connect failure counted", func() bool { return sp.Peers()[0].ConnectFailures >= 1 })
}

// TestBFDOnceEstablished: a peer with bfd gets BFD packets (at its
// interval and multiplier) once the session is up, and turning BFD on
// does not reset the session.
func TestBFDOnceEstablished(t *testing.T) {
	bfdc, err := net.ListenPacket("udp", "127.0.0.2:3784")
	if err != nil {
		t.Skipf("BFD port: %v", err)
	}
	defer bfdc.Close()
	r := newRouter(t, 65000, 65001)
	cfg := speakerConfig(r.port, 65000)
	cfg.Peers[0].BFD, cfg.Peers[0].BFDInterval, cfg.Peers[0].BFDMultiplier = true, 100*time.Millisecond, 4
	sp := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	eventually(t, "the session", func() bool { ps := sp.Peers(); return len(ps) == 1 && ps[0].Established() })
	since := sp.Peers()[0].Since

	// GoBGP's BFD client starts on a one-second tick.
	var h bfd.BFDHeader
	buf := make([]byte, 512)
	_ = bfdc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := bfdc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no BFD packet: %v", err)
	}
	if err := h.UnmarshalBinary(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if h.DesiredMinTxInterval != 100000 || h.RequiredMinRxInterval != 100000 || h.DetectTimeMultiplier != 4 || h.State != bfd.StateDown {
		t.Errorf("BFD packet %+v, want 100 ms intervals, multiplier 4, state Down", h)
	}
	time.Sleep(2 * pollEvery)
	p := sp.Peers()[0]
	if !p.Established() || !p.Since.Equal(since) {
		t.Errorf("session reset when BFD was turned on: %+v (up since %v)", p, since)
	}
	// Nobody answers: BFD stays down, and a BFD that never came up is no
	// failure of the session.
	if p.BFD != "down" {
		t.Errorf("BFD = %q, want down", p.BFD)
	}
}

// TestNoGracefulRestart: the OPEN the router gets has no graceful-restart
// capability (RFC 4724), so that it never keeps a dead node's routes.
func TestNoGracefulRestart(t *testing.T) {
	r := newRouter(t, 65000, 65001)
	sp := New(speakerConfig(r.port, 65000), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	defer sp.Close()
	eventually(t, "the session", func() bool { ps := sp.Peers(); return len(ps) == 1 && ps[0].Established() })
	var caps []*api.Capability
	err := r.s.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) { caps = p.State.RemoteCap })
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) == 0 {
		t.Fatal("the router lists no capabilities of the speaker")
	}
	for _, c := range caps {
		if c.GetGracefulRestart() != nil || c.GetLongLivedGracefulRestart() != nil {
			t.Errorf("the speaker advertises %v", c)
		}
	}
}

// TestNoAnswer: failed connection attempts are counted, and the third in
// a row names the likely cause once.
func TestNoAnswer(t *testing.T) {
	var logs bytes.Buffer
	sp := &Speaker{log: slog.New(slog.NewTextHandler(&logs, nil)), reasons: map[netip.Addr]string{}, tries: map[netip.Addr]*tries{}, wake: make(chan struct{}, 1)}
	// As GoBGP's peer logger logs it.
	l := slog.New(gobgpLog{Handler: sp.log.Handler(), dialFailed: sp.dialFailed}).With("component", "gobgp").
		With(slog.String("Topic", "Peer"), slog.String("Key", "192.0.2.1"))
	for range 4 {
		l.Debug("failed to connect", slog.String("Error", "dial tcp 192.0.2.1:179: i/o timeout"))
	}
	l.Debug("sent update") // not a failure
	peer := netip.MustParseAddr("192.0.2.1")
	if got := sp.tries[peer].failures; got != 4 {
		t.Errorf("failures = %d, want 4", got)
	}
	want := `level=WARN msg="BGP peer unreachable" peer=192.0.2.1 reason="no answer from peer (wrong password or peer down)" attempts=3`
	if got := logs.String(); strings.Count(got, "BGP peer unreachable") != 1 || !strings.Contains(got, want) {
		t.Errorf("log:\n%s\nwant one line with %s", got, want)
	}
	if r := sp.reasons[peer]; r != "no answer from peer (wrong password or peer down)" {
		t.Errorf("reason %q", r)
	}
	sp.peerEvent(&apiutil.PeerState{NeighborAddress: peer, SessionState: bgp.BGP_FSM_ESTABLISHED})
	if tr := sp.tries[peer]; tr.inARow != 0 || !tr.up {
		t.Errorf("after established: %+v", tr)
	}
}

func TestStateValue(t *testing.T) {
	for _, s := range []string{"idle", "connect", "active", "opensent", "openconfirm", "established"} {
		if got, want := StateValue(s), float64(slices.Index([]string{"idle", "connect", "active", "opensent", "openconfirm", "established"}, s)); got != want {
			t.Errorf("StateValue(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestPeerEventFailures: only an attempt that ends in idle before the
// session was up is a connect failure, and only its reason is kept.
func TestPeerEventFailures(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.1")
	notification := apiutil.PeerState{NeighborAddress: peer, SessionState: bgp.BGP_FSM_IDLE,
		DisconnectReason: api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED, DisconnectMessage: "bad peer AS"}
	tests := []struct {
		name         string
		events       []apiutil.PeerState
		wantFailures uint64
		wantReason   string
	}{
		{"on the way up", []apiutil.PeerState{
			{NeighborAddress: peer, SessionState: bgp.BGP_FSM_OPENCONFIRM, DisconnectMessage: "open-msg-received"},
			{NeighborAddress: peer, SessionState: bgp.BGP_FSM_ESTABLISHED},
		}, 0, ""},
		{"refused by a NOTIFICATION", []apiutil.PeerState{notification}, 1, "bad peer AS"},
		{"idle hold timer after it", []apiutil.PeerState{notification,
			{NeighborAddress: peer, SessionState: bgp.BGP_FSM_IDLE, DisconnectReason: api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED},
		}, 1, "bad peer AS"},
		{"an established session that ends", []apiutil.PeerState{{NeighborAddress: peer, SessionState: bgp.BGP_FSM_ESTABLISHED}, notification}, 0, "bad peer AS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := &Speaker{reasons: map[netip.Addr]string{}, tries: map[netip.Addr]*tries{}}
			for _, e := range tt.events {
				sp.peerEvent(&e)
			}
			if got := sp.tries[peer].failures; got != tt.wantFailures {
				t.Errorf("failures = %d, want %d", got, tt.wantFailures)
			}
			if got := sp.reasons[peer]; got != tt.wantReason {
				t.Errorf("reason %q, want %q", got, tt.wantReason)
			}
		})
	}
}
