package daemon

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/pkg/vrrp"
)

func TestIPv6Election(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		v6 := netip.MustParsePrefix("2001:db8::50/64")
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		var ns []*node
		for i, prio := range []uint8{150, 100} {
			ic := instanceConfig(prio)
			ic.Family, ic.VIPs = "ipv6", []netip.Prefix{v6}
			ns = append(ns, startConfig(t, hs[i], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}))
		}
		waitFor(t, 2*time.Second, "host 0 to hold the IPv6 VIP", func() bool { return hs[0].has(v6) && !hs[1].has(v6) })
		if got := ns[0].value("vipd_announcements_sent_total", "instance=api", "kind=na"); got == 0 {
			t.Error("no neighbour advertisements counted")
		}
		ns[0].stop()
		waitFor(t, time.Second, "host 1 to take the IPv6 VIP over", func() bool { return hs[1].has(v6) && !hs[0].has(v6) })
	})
}

func TestUnicastPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		hs := []*host{newHost(seg, "192.0.2.11"), newHost(seg, "192.0.2.12")}
		var ns []*node
		for i, prio := range []uint8{150, 100} {
			ic := instanceConfig(prio)
			ic.UnicastPeers = []netip.Addr{hs[1-i].addr}
			ns = append(ns, startConfig(t, hs[i], &config.Config{File: "test.yaml", Instances: []config.Instance{ic}}))
		}
		waitFor(t, 2*time.Second, "host 0 alone holding the VIP", only(0, hs...))

		// A stranger's adverts, even with a higher priority, are dropped.
		stranger := netip.MustParseAddr("192.0.2.99")
		p := &vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 254, Interval: 1, Addresses: []netip.Addr{vip.Addr()}}
		b, err := p.Marshal(stranger, hs[0].addr)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			seg.inject(b, stranger, hs[0].addr, 255)
		}
		waitFor(t, time.Second, "not_a_peer drops", func() bool {
			return testutil.ToFloat64(ns[0].m.PacketsDropped.WithLabelValues("eth0", "not_a_peer")) >= 20
		})
		if got := holders(hs...); len(got) != 1 || got[0] != 0 {
			t.Fatalf("holders %v after a stranger's adverts, want [0]", got)
		}
		// A listed peer's advert is accepted whatever its TTL: peers may be
		// routed, and keepalived sends IPv6 unicast with hop limit 64.
		p.Priority = 200
		if b, err = p.Marshal(hs[1].addr, hs[0].addr); err != nil {
			t.Fatal(err)
		}
		seg.inject(b, hs[1].addr, hs[0].addr, 64)
		waitFor(t, time.Second, "host 0 to yield to its peer's routed advert", func() bool { return !hs[0].has(vip) })
		ns[0].stop()
		waitFor(t, time.Second, "host 1 to take over", only(1, hs...))
	})
}

func TestVRRPv2Authentication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := &segment{}
		h := newHost(seg, "192.0.2.11")
		ic := instanceConfig(254)
		ic.Version, ic.AuthPass, ic.AdvertInterval = 2, "secret", time.Second
		n := startConfig(t, h, &config.Config{File: "test.yaml", Instances: []config.Instance{ic}})
		waitFor(t, 5*time.Second, "the lone v2 node to become Master", func() bool { return h.has(vip) })

		from := netip.MustParseAddr("192.0.2.99")
		advert := func(mod func(*vrrp.Packet)) []byte {
			p := &vrrp.Packet{Version: 2, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: 254, Interval: 1,
				AuthType: 1, Addresses: []netip.Addr{vip.Addr()}}
			copy(p.AuthData[:], "secret")
			mod(p)
			b, err := p.Marshal(from, vrrp.IPv4Group)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		tests := []struct {
			b      []byte
			reason string
		}{
			{advert(func(p *vrrp.Packet) { p.AuthData = [8]byte{'w', 'r', 'o', 'n', 'g'} }), "auth_mismatch"},
			{advert(func(p *vrrp.Packet) { p.AuthType, p.AuthData = 0, [8]byte{} }), "auth_type"},
			{advert(func(p *vrrp.Packet) { p.Version, p.Interval = 3, 100 }), "version"},
			{advert(func(p *vrrp.Packet) { p.Interval = 3 }), "interval_mismatch"},
		}
		for _, tt := range tests {
			seg.inject(tt.b, from, vrrp.IPv4Group, 255)
			waitFor(t, time.Second, tt.reason+" drop", func() bool {
				return testutil.ToFloat64(n.m.PacketsDropped.WithLabelValues("eth0", tt.reason)) == 1
			})
		}
		if !h.has(vip) {
			t.Fatal("a rejected advert took the VIP away")
		}
		// The right password from a higher address wins the tie.
		seg.inject(advert(func(*vrrp.Packet) {}), from, vrrp.IPv4Group, 255)
		waitFor(t, time.Second, "Master to yield to the authenticated peer", func() bool { return !h.has(vip) })
	})
}
