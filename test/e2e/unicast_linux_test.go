package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/pkg/vrrp"
)

// unicastFamilies are the rigs' VIPs the unicast tests run with.
var unicastFamilies = []struct {
	name string
	vip  netip.Prefix
}{
	{"ipv4", lab.VIP},
	{"ipv6", lab.VIP6},
}

// addrOf is n's address in the rig's family: the one peers list.
func (r *rig) addrOf(n *lab.Node) netip.Addr {
	if r.vip.Addr().Is4() {
		return n.Addr.Addr()
	}
	return n.Addr6.Addr()
}

// unicastInst is the rig's instance on n with every other member as a
// unicast peer. withSource names n's own address as unicast_source.
func (r *rig) unicastInst(n *lab.Node, priority int, members []*lab.Node, withSource bool) lab.Instance {
	in := r.inst(priority)
	for _, m := range members {
		if m != n {
			in.UnicastPeers = append(in.UnicastPeers, r.addrOf(m))
		}
	}
	if withSource {
		in.UnicastSource = r.addrOf(n)
	}
	return in
}

// TestUnicastFailover drops every multicast VRRP packet on the switch and
// runs three nodes with unicast peers: failover on a cable cut, preemption,
// and the graceful handover all work without multicast, over IPv4 and IPv6.
func TestUnicastFailover(t *testing.T) {
	for _, fam := range unicastFamilies {
		t.Run(fam.name, func(t *testing.T) {
			r := newRig(t, 3, fam.vip)
			n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
			if err := r.l.BlockMulticastVRRP(); err != nil {
				t.Fatal(err)
			}
			for i := 2; i >= 0; i-- {
				n := r.l.Nodes[i]
				r.start(n, vipdKind, r.unicastInst(n, 150-50*i, r.l.Nodes, true))
			}
			r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
			p := r.probe()
			r.waitReply(p)
			r.waitNeigh(n1)
			r.holdSteady("n1 alone", 500*time.Millisecond, lab.Only(n1))

			if err := n1.CutLink(); err != nil {
				t.Fatal(err)
			}
			r.waitHolders("n2 takes the VIP", includes(n2))
			r.waitNeigh(n2)
			r.waitReply(p)
			r.holdSteady("n2 and not n3", 300*time.Millisecond, func(h []*lab.Node) bool {
				return includes(n2)(h) && !includes(n3)(h)
			})

			if err := n1.RestoreLink(); err != nil {
				t.Fatal(err)
			}
			r.waitHolders("n1 alone holds the VIP again", lab.Only(n1))
			r.waitNeigh(n1)
			r.waitReply(p)
			r.holdSteady("n1 alone", 500*time.Millisecond, lab.Only(n1))

			p.ResetOutage()
			if _, err := n1.Stop(); err != nil {
				t.Errorf("vipd on n1 after SIGTERM: %v", err)
			}
			r.waitHolders("n2 alone holds the VIP", lab.Only(n2))
			r.waitNeigh(n2)
			r.waitReply(p)
			mdi := lab.MasterDownInterval(100, interval)
			if o, bound := p.Stats().Outage, min(2*interval+100*time.Millisecond, mdi); o >= bound {
				t.Errorf("the client lost the VIP for %v after n1 stopped, want < %v: n2 should take over after Skew_Time (%v)",
					o.Round(time.Millisecond), bound, lab.SkewTime(100, interval))
			}
			for _, n := range r.l.Nodes {
				for _, d := range mustDrops(t, n) {
					t.Errorf("%s dropped a packet from %s: %s", n.Name, d.From, d.Reason)
				}
			}
			// Unicast instances send no multicast adverts at all.
			if n, err := r.l.MulticastVRRPDropped(); err != nil || n != 0 {
				t.Errorf("the switch dropped %d multicast VRRP packets (%v), want none", n, err)
			}
		})
	}
}

// TestUnicastIPv6DefaultSource runs two nodes whose IPv6 unicast peers are
// each other's global addresses, with no unicast_source: the natural
// configuration, which vipd validate accepts. Each must accept the other's
// adverts, so exactly one holds the VIP.
func TestUnicastIPv6DefaultSource(t *testing.T) {
	r := newRig(t, 2, lab.VIP6)
	n1, n2 := r.l.Nodes[0], r.l.Nodes[1]
	if err := r.l.BlockMulticastVRRP(); err != nil {
		t.Fatal(err)
	}
	r.start(n2, vipdKind, r.unicastInst(n2, 100, r.l.Nodes, false))
	r.start(n1, vipdKind, r.unicastInst(n1, 150, r.l.Nodes, false))
	r.waitHolders("n1 holds the VIP", includes(n1))
	time.Sleep(lab.MasterDownInterval(100, interval) + 2*interval)
	h := r.holders()
	if len(h) != 1 || h[0] != n1 {
		t.Errorf("holders %s, want n1 alone; drops on n1 %v, on n2 %v",
			lab.Names(h), reasons(mustDrops(t, n1)), reasons(mustDrops(t, n2)))
		for _, n := range r.l.Nodes {
			if d := mustDrops(t, n); len(d) > 0 {
				t.Logf("%s's first drop: %+v", n.Name, d[0])
			}
		}
	}
}

// TestUnicastStrangerIgnored has a stranger on the segment (n3, running no
// daemon) send unicast adverts for the VRID with priority 254 to the
// Master's address: the Master must ignore them (its peers are n2 only),
// keep the VIP, and count and log them as not_a_peer.
func TestUnicastStrangerIgnored(t *testing.T) {
	for _, fam := range unicastFamilies {
		t.Run(fam.name, func(t *testing.T) {
			r := newRig(t, 3, fam.vip)
			r.metrics = true
			n1, n2, n3 := r.l.Nodes[0], r.l.Nodes[1], r.l.Nodes[2]
			if err := r.l.BlockMulticastVRRP(); err != nil {
				t.Fatal(err)
			}
			members := []*lab.Node{n1, n2}
			r.start(n2, vipdKind, r.unicastInst(n2, 100, members, true))
			r.start(n1, vipdKind, r.unicastInst(n1, 150, members, true))
			r.waitHolders("n1 alone holds the VIP", lab.Only(n1))
			r.holdSteady("n1 alone", 3*interval, lab.Only(n1))

			a, err := lab.NewAdvertiser(n3)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			pkt := &vrrp.Packet{
				Version: 3, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: 254,
				Interval: uint16(interval / (10 * time.Millisecond)), Addresses: []netip.Addr{r.vip.Addr()},
			}
			ctx, cancel := context.WithCancel(context.Background())
			var count int
			done := make(chan struct{})
			go func() {
				defer close(done)
				var err error
				if count, err = a.Advertise(ctx, netip.Addr{}, r.addrOf(n1), pkt, interval/2, 40); err != nil {
					t.Errorf("stranger's adverts: %v", err)
				}
			}()
			defer func() { cancel(); <-done }()
			// Were n1 to believe them, it would fall back to Backup and
			// drop the VIP at the first one.
			r.holdSteady("n1 alone", 1500*time.Millisecond, lab.Only(n1))
			cancel()
			<-done
			r.holdSteady("n1 alone", 3*interval, lab.Only(n1))

			from := r.addrOf(n3).String()
			drops := reasons(dropsFrom(t, n1, from))
			t.Logf("the stranger sent %d adverts; n1 logged drops from %s: %v", count, from, drops)
			if drops["not_a_peer"] == 0 || len(drops) != 1 {
				t.Errorf("n1's drops of the stranger's adverts: %v, want not_a_peer only", drops)
			}
			mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer mcancel()
			text, err := n1.Metrics(mctx, rigMetrics)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := lab.MetricValue(text, "vipd_packets_dropped_total", "reason", "not_a_peer")
			if !ok || v < float64(drops["not_a_peer"]) {
				t.Errorf(`n1's vipd_packets_dropped_total{reason="not_a_peer"} = %v (present %t), want at least the %d drops logged`, v, ok, drops["not_a_peer"])
			}
			changes, err := n1.StateChanges()
			if err != nil {
				t.Fatal(err)
			}
			if last := changes[len(changes)-1]; last.To != "master" || len(changes) != 2 {
				t.Errorf("n1's state changes %+v, want init → backup → master only", changes)
			}
		})
	}
}
