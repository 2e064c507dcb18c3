package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// vrid is the virtual router of every single-instance scenario.
const vrid = 51

// priorities of n1, n2, n3.
var priorities = []int{150, 100, 50}

// A family is the address family a scenario runs over, and its VIP.
type family struct {
	name string // ipv4 or ipv6
	vip  netip.Prefix
}

var (
	ipv4 = family{"ipv4", lab.VIP}
	ipv6 = family{"ipv6", lab.VIP6}
)

// instanceOf is node i's instance for f's VIP.
func instanceOf(f family, i int, interval time.Duration) lab.Instance {
	return lab.Instance{
		VRID:           vrid,
		Priority:       priorities[i],
		AdvertInterval: interval,
		Preempt:        true,
		VIPs:           []netip.Prefix{f.vip},
	}
}

// scaleAddr is the VIP of instance vrid in the scale and loss scenarios:
// 198.18.0.VRID/32 (RFC 2544 benchmarking range).
func scaleAddr(vrid int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(vrid)}), 32)
}

// scaleRange holds the VIPs of the scale and loss scenarios, and nothing
// else of the lab's (its segment 3 is in 198.19.0.0/24).
var scaleRange = netip.MustParsePrefix("198.18.0.0/16")

// scaleInstances returns instances with VRIDs 1..n, one VIP each.
func scaleInstances(n, priority int, interval time.Duration) []lab.Instance {
	out := make([]lab.Instance, n)
	for i := range out {
		vrid := i + 1
		out[i] = lab.Instance{
			Name:           "v" + strconv.Itoa(vrid),
			VRID:           vrid,
			Priority:       priority,
			AdvertInterval: interval,
			Preempt:        true,
			VIPs:           []netip.Prefix{scaleAddr(vrid)},
		}
	}
	return out
}

func withPriority(ins []lab.Instance, priority int) []lab.Instance {
	out := slices.Clone(ins)
	for i := range out {
		out[i].Priority = priority
	}
	return out
}

// resetLab stops every daemon and removes what they may have left: VIPs
// (IPv4, IPv6, the scale range), the switch's nft tables, cut links. It
// returns the first error stopping a daemon but lab.ErrNotRunning.
func resetLab(l *lab.Lab) error {
	var first error
	for _, n := range l.Nodes {
		if _, err := n.Stop(); err != nil && !errors.Is(err, lab.ErrNotRunning) && first == nil {
			first = err
		}
		_ = n.RestoreLink()
		for _, iface := range n.Ifaces() {
			_, _ = n.IP("addr", "flush", "dev", iface, "to", scaleRange.String())
		}
		for _, vip := range []netip.Prefix{lab.VIP, lab.VIP6} {
			if ok, _ := n.Has(vip); ok {
				_, _ = n.IP("addr", "del", vip.String(), "dev", "eth0")
			}
		}
	}
	_ = l.UnblockVRRP()
	for _, table := range []string{lab.LossTable, lab.HealTable} {
		_ = l.DeleteSwitchTable(table)
	}
	return first
}

// waitTimeout bounds every wait for a VRRP event: generous, as the machine
// may be busy.
func waitTimeout(interval time.Duration) time.Duration {
	return 10*time.Second + 10*interval
}

// settle waits until only want holds vip and the client gets replies, then
// two more intervals so the backups have heard the master. It returns when
// want was seen as the only holder; p must be probing vip.
func settle(ctx context.Context, l *lab.Lab, p *lab.Prober, want *lab.Node, interval time.Duration, vip netip.Prefix) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout(interval))
	defer cancel()
	if _, err := l.WaitHolders(ctx, vip, lab.Only(want)); err != nil {
		return time.Time{}, err
	}
	held := time.Now()
	if err := p.WaitReply(ctx, held); err != nil {
		return held, err
	}
	return held, sleep(ctx, 2*interval)
}

// measure runs event, waits until next holds vip and the client gets a
// reply again, and returns the client's longest gap between replies; p must
// be probing vip.
func measure(ctx context.Context, l *lab.Lab, p *lab.Prober, next *lab.Node, interval time.Duration, vip netip.Prefix, event func(context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout(interval))
	defer cancel()
	p.ResetOutage()
	if err := event(ctx); err != nil {
		return 0, err
	}
	holds := func(h []*lab.Node) bool { return slices.Contains(h, next) }
	if _, err := l.WaitHolders(ctx, vip, holds); err != nil {
		return 0, fmt.Errorf("%s did not take the VIP: %w", next.Name, err)
	}
	if err := p.WaitReply(ctx, time.Now()); err != nil {
		return 0, fmt.Errorf("the client got no reply after %s took the VIP: %w", next.Name, err)
	}
	return p.Stats().Outage, nil
}

// waitNeigh polls the client's ARP entry for the IPv4 VIP every poll until
// it names want's MAC address (lab.WaitNeigh).
func waitNeigh(ctx context.Context, l *lab.Lab, want *lab.Node, poll time.Duration) error {
	return l.WaitNeigh(ctx, lab.VIP.Addr(), want, poll)
}

// vipCount counts n's addresses in scaleRange, on all its interfaces.
func vipCount(n *lab.Node) (int, error) {
	count := 0
	for _, iface := range n.Ifaces() {
		addrs, err := n.Addrs(iface)
		if err != nil {
			return 0, err
		}
		for _, p := range addrs {
			if scaleRange.Contains(p.Addr()) {
				count++
			}
		}
	}
	return count, nil
}

// waitVIPs waits until every node has its wanted number of scale VIPs.
func waitVIPs(ctx context.Context, want map[*lab.Node]int, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		ok := true
		var state []string
		for n, w := range want {
			c, err := vipCount(n)
			if err != nil {
				return err
			}
			state = append(state, fmt.Sprintf("%s %d/%d", n.Name, c, w))
			ok = ok && c == w
		}
		if ok {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			slices.Sort(state)
			return fmt.Errorf("waiting for the VIPs (%s): %w", strings.Join(state, ", "), err)
		}
	}
}

// gaveUp reports that the measurement what gave up with err, and lets the
// scenario go on: it returns an error only when ctx ended, ctx's.
func gaveUp(ctx context.Context, w io.Writer, err error, what string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(w, "%s gave up: %v\n", what, err)
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cutAfterAdvert pulls n's cable right after one of its adverts of family
// f, the worst moment: the backups then wait a whole Master_Down_Interval.
func cutAfterAdvert(l *lab.Lab, n *lab.Node, f family) func(context.Context) error {
	return func(ctx context.Context) error {
		wait := l.WaitAdvert
		if f.vip.Addr().Is6() {
			wait = l.WaitAdvert6
		}
		if _, err := wait(ctx, n); err != nil {
			return err
		}
		return n.CutLink()
	}
}

// stopDaemon stops n's daemon gracefully; its exit is reported in *exit and
// *err, not as the event's failure, so the takeover is measured regardless.
func stopDaemon(n *lab.Node, exit *time.Duration, err *error) func(context.Context) error {
	return func(context.Context) error {
		*exit, *err = n.Stop()
		return nil
	}
}
