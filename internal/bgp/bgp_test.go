//go:build !nobgp

package bgp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
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
	start := time.Now()
	sp.Close()
	if _, ok := r.routes(t)[vip]; ok {
		t.Errorf("route still at the router after Close (%v)", time.Since(start))
	}
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
}

func TestStateValue(t *testing.T) {
	for _, s := range []string{"idle", "connect", "active", "opensent", "openconfirm", "established"} {
		if got, want := StateValue(s), float64(slices.Index([]string{"idle", "connect", "active", "opensent", "openconfirm", "established"}, s)); got != want {
			t.Errorf("StateValue(%s) = %v, want %v", s, got, want)
		}
	}
}
