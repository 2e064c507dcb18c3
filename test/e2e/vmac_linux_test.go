package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/netif"
)

// TestVirtualMAC: two nodes with virtual_mac, a client pinging the VIP
// every 2 ms. Across a cable cut, the cable coming back and a graceful
// stop, the client's neighbour entry for the VIP stays the virtual router
// MAC, the switch learns that MAC on the Master's port, and the Backup
// sends no frame from it. IPv4 and IPv6.
func TestVirtualMAC(t *testing.T) {
	for _, vip := range []netip.Prefix{lab.VIP, lab.VIP6} {
		t.Run(netif.VirtualMAC(vrid, vip.Addr().Is6()).String(), func(t *testing.T) { testVirtualMAC(t, vip) })
	}
}

func testVirtualMAC(t *testing.T, vip netip.Prefix) {
	r := newRig(t, 2, vip)
	l := r.l
	n1, n2 := l.Nodes[0], l.Nodes[1]
	vmac := netif.VirtualMAC(vrid, vip.Addr().Is6())
	inst := func(prio int) svcConfig {
		in := svcInst(prio, true)
		in.VIPs, in.VirtualMAC = []netip.Prefix{vip}, true
		return svcConfig{Instances: []svcInstance{in}}
	}
	startSvc(t, l, n1, inst(150))
	r.waitHolders("n1 holds the VIP", lab.Only(n1))
	startSvc(t, l, n2, inst(100))
	svcWaitState(t, svcSocket(l, n2), "api", "backup")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := l.Probe(ctx, vip.Addr(), 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		t.Fatalf("the client never reached the VIP: %v", err)
	}
	neigh := watchNeigh(ctx, l.Client, vip.Addr())
	defer func() {
		if seen := neigh.stop(); len(seen) != 1 || !bytes.Equal(seen[0], vmac) {
			t.Errorf("the client's neighbour entry for %s was %v; want only %s", vip.Addr(), seen, vmac)
		}
	}()

	// quiet checks, over a steady second, that the Master alone sends
	// from the virtual MAC and that the switch has it on its port.
	quiet := func(master, backup *lab.Node) {
		t.Helper()
		svcWaitFor(t, "the switch learns the virtual MAC on "+master.Name+"'s port", patience, func() (bool, string) {
			n, err := l.FDBNode(vmac)
			return err == nil && n == master, fmt.Sprintf("on %v (%v)", n, err)
		})
		settleAt := time.Now().Add(300 * time.Millisecond)
		time.Sleep(time.Until(settleAt))
		wm, err := master.WatchSourceMAC(ctx, vmac)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := backup.WatchSourceMAC(ctx, vmac)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		wm.Stop()
		wb.Stop()
		if n, _ := wm.Count(); n < 5 {
			t.Errorf("the Master %s sent %d frames from the virtual MAC in a second, want its adverts (10)", master.Name, n)
		}
		if n, last := wb.Count(); n > 0 {
			t.Errorf("the Backup %s sent %d frames from the virtual MAC (the last at %s)", backup.Name, n, last.Format("15:04:05.000"))
		}
		if ok, _ := hasOn(backup, vip); ok {
			t.Errorf("the Backup %s holds the VIP", backup.Name)
		}
	}
	quiet(n1, n2)
	// outage logs how long the client could not reach the VIP across
	// what just happened.
	outage := func(what string) {
		t.Helper()
		if err := p.WaitReply(ctx, time.Now()); err != nil {
			t.Fatalf("the client cannot reach the VIP after %s: %v", what, err)
		}
		t.Logf("%s: the client's longest outage %v", what, p.Stats().Outage.Round(100*time.Microsecond))
		p.ResetOutage()
	}
	p.ResetOutage()

	if err := n1.CutLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	r.waitHolders("n2 takes over from n1, whose cable is cut", lab.Only(n2))
	outage("n1's cable cut")
	quiet(n2, n1)
	p.ResetOutage()
	if err := n1.RestoreLink(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	svcWaitState(t, svcSocket(l, n1), "api", "master")
	r.waitHolders("n1 preempts back", lab.Only(n1))
	outage("n1's cable back, n1 preempts")
	quiet(n1, n2)
	p.ResetOutage()

	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	r.waitHolders("n2 takes over from the stopped n1", lab.Only(n2))
	if out, _ := n1.IP("-o", "link", "show", "type", "macvlan"); out != "" {
		t.Errorf("the stopped n1 left its virtual MAC interface: %s", out)
	}
	outage("n1's graceful stop")

	// A crash leaves the virtual MAC interface and its VIP behind;
	// vipd cleanup (the unit's ExecStopPost) removes them.
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	if out, _ := n2.IP("-o", "link", "show", "type", "macvlan"); out == "" {
		t.Fatal("harness: the killed n2 has no virtual MAC interface left to clean up")
	}
	if out, err := exec.Command("ip", "netns", "exec", n2.NS, vipdBin, "cleanup", "--config", filepath.Join(l.Dir, n2.Name+".yaml")).CombinedOutput(); err != nil {
		t.Fatalf("vipd cleanup: %v: %s", err, out)
	}
	if out, _ := n2.IP("-o", "link", "show", "type", "macvlan"); out != "" {
		t.Errorf("vipd cleanup left the virtual MAC interface: %s", out)
	}
	if ok, _ := hasOn(n2, vip); ok {
		t.Errorf("vipd cleanup left the VIP on n2")
	}
}

// hasOn says whether n has vip's address on any interface.
func hasOn(n *lab.Node, vip netip.Prefix) (bool, error) {
	out, err := n.IP("-o", "addr", "show")
	if err != nil {
		return false, err
	}
	return bytes.Contains([]byte(out), []byte(" "+vip.Addr().String()+"/")), nil
}

// neighWatch records every hardware address a node's neighbour entry for
// an address has, every 5 ms.
type neighWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   []net.HardwareAddr
}

func watchNeigh(ctx context.Context, n *lab.Node, ip netip.Addr) *neighWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &neighWatch{cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if mac, err := n.NeighMAC(ip); err == nil {
				w.mu.Lock()
				if len(w.seen) == 0 || !bytes.Equal(w.seen[len(w.seen)-1], mac) {
					w.seen = append(w.seen, mac)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *neighWatch) stop() []net.HardwareAddr {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// TestVirtualMACInterop: vipd's virtual_mac and keepalived's use_vmac in
// one group, in both orders: the client's neighbour entry for the VIP stays
// the virtual MAC across a cable cut, its return and a graceful stop.
func TestVirtualMACInterop(t *testing.T) {
	needKeepalived(t)
	for _, order := range [][2]string{{keepalivedKind, vipdKind}, {vipdKind, keepalivedKind}} {
		t.Run(order[0]+"-master/"+order[1]+"-backup", func(t *testing.T) {
			r := newRig(t, 2, lab.VIP)
			l := r.l
			n1, n2 := l.Nodes[0], l.Nodes[1]
			vmac := netif.VirtualMAC(vrid, false)
			in := func(prio int) lab.Instance {
				in := r.inst(prio)
				in.VirtualMAC = true
				return in
			}
			// keepalived's own documentation asks for these on the base
			// interface of use_vmac (2.2.7 does not set them): without
			// them, its eth0 answers ARP for the VIP with its own MAC.
			for i, kind := range order {
				if kind != keepalivedKind {
					continue
				}
				ns := l.Nodes[i].NS
				if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
					"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2").CombinedOutput(); err != nil {
					t.Fatalf("harness: sysctl in %s: %v: %s", ns, err, out)
				}
			}
			r.start(n1, order[0], in(150))
			r.waitHolders("n1 holds the VIP", lab.Only(n1))
			r.start(n2, order[1], in(100))
			time.Sleep(time.Second) // n2 settles in Backup

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			if err := p.WaitReply(ctx, time.Now()); err != nil {
				t.Fatalf("the client never reached the VIP: %v", err)
			}
			neigh := watchNeigh(ctx, l.Client, lab.VIP.Addr())
			p.ResetOutage()
			reach := func(what string, master *lab.Node) {
				t.Helper()
				r.waitHolders(what, lab.Only(master))
				if err := p.WaitReply(ctx, time.Now()); err != nil {
					t.Fatalf("the client cannot reach the VIP after %s: %v", what, err)
				}
				t.Logf("%s: the client's longest outage %v", what, p.Stats().Outage.Round(100*time.Microsecond))
				p.ResetOutage()
				svcWaitFor(t, "the switch learns the virtual MAC on "+master.Name+"'s port", patience, func() (bool, string) {
					n, err := l.FDBNode(vmac)
					return err == nil && n == master, fmt.Sprintf("on %v (%v)", n, err)
				})
			}
			if err := n1.CutLink(); err != nil {
				t.Fatalf("harness: %v", err)
			}
			reach("n2 takes over from n1, whose cable is cut", n2)
			if err := n1.RestoreLink(); err != nil {
				t.Fatalf("harness: %v", err)
			}
			reach("n1 preempts back", n1)
			if _, err := n1.Stop(); err != nil {
				t.Fatal(err)
			}
			reach("n2 takes over from the stopped n1", n2)
			if seen := neigh.stop(); len(seen) != 1 || !bytes.Equal(seen[0], vmac) {
				t.Errorf("the client's neighbour entry for %s was %v; want only %s", lab.VIP.Addr(), seen, vmac)
			}
		})
	}
}
