package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// vrid is the virtual router every scenario uses.
const vrid = 51

// priorities of n1, n2, n3.
var priorities = []int{150, 100, 50}

// daemon starts one VRRP implementation in a node.
type daemon struct {
	name  string
	start func(n *lab.Node, in lab.Instance) error
}

func vipdDaemon(l *lab.Lab, binary string) daemon {
	return daemon{name: "vipd", start: func(n *lab.Node, in lab.Instance) error {
		sock := filepath.Join(l.Dir, n.Name+".sock")
		return n.StartVipd(binary, lab.VipdConfig(sock, in))
	}}
}

var keepalivedDaemon = daemon{name: "keepalived", start: func(n *lab.Node, in lab.Instance) error {
	return n.StartKeepalived(lab.KeepalivedConfig(n.Name, in))
}}

// vipdBinary resolves the --vipd flag to an absolute path of an executable.
func vipdBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("vipd binary: %w (build it with 'make build')", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("vipd binary %s is not an executable file", abs)
	}
	return abs, nil
}

// A family is the address family a scenario runs over, and its VIP.
type family struct {
	name string // ipv4 or ipv6
	vip  netip.Prefix
}

var (
	ipv4 = family{"ipv4", lab.VIP}
	ipv6 = family{"ipv6", lab.VIP6}
)

// instance is node i's instance for the IPv4 VIP.
func instance(i int, interval time.Duration) lab.Instance {
	return lab.Instance{
		VRID:           vrid,
		Priority:       priorities[i],
		AdvertInterval: interval,
		Preempt:        true,
		VIPs:           []netip.Prefix{lab.VIP},
	}
}

// instanceOf is node i's instance for f's VIP.
func instanceOf(f family, i int, interval time.Duration) lab.Instance {
	in := instance(i, interval)
	in.VIPs = []netip.Prefix{f.vip}
	return in
}

// startAll starts d in every node for the IPv4 VIP.
func startAll(l *lab.Lab, d daemon, interval time.Duration) error {
	return startAllOf(l, d, ipv4, interval)
}

// startAllOf starts d in every node for f's VIP.
func startAllOf(l *lab.Lab, d daemon, f family, interval time.Duration) error {
	for i, n := range l.Nodes {
		if err := d.start(n, instanceOf(f, i, interval)); err != nil {
			return err
		}
	}
	return nil
}

// stopAll stops every node's daemon and removes a VIP (IPv4 or IPv6) a
// daemon left behind, so the next daemon starts from a clean lab.
func stopAll(l *lab.Lab) error {
	var first error
	for _, n := range l.Nodes {
		if _, err := n.Stop(); err != nil && err != lab.ErrNotRunning && first == nil {
			first = err
		}
		for _, vip := range []netip.Prefix{lab.VIP, lab.VIP6} {
			if ok, _ := n.Has(vip); ok {
				_, _ = n.IP("addr", "del", vip.String(), "dev", "eth0")
			}
		}
	}
	return first
}

// waitTimeout bounds every wait for a VRRP event: generous, as the machine
// may be busy.
func waitTimeout(interval time.Duration) time.Duration {
	return 10*time.Second + 10*interval
}

// settle waits until only want holds the IPv4 VIP and the client gets
// replies, then two more intervals so the backups have heard the master. It
// returns when want was seen as the only holder.
func settle(ctx context.Context, l *lab.Lab, p *lab.Prober, want *lab.Node, interval time.Duration) (time.Time, error) {
	return settleOf(ctx, l, p, want, interval, lab.VIP)
}

// settleOf is settle for any VIP; p must be probing it.
func settleOf(ctx context.Context, l *lab.Lab, p *lab.Prober, want *lab.Node, interval time.Duration, vip netip.Prefix) (time.Time, error) {
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

// measure runs event, waits until next holds the IPv4 VIP and the client
// gets a reply again, and returns the client's longest gap between replies.
func measure(ctx context.Context, l *lab.Lab, p *lab.Prober, next *lab.Node, interval time.Duration, event func(context.Context) error) (time.Duration, error) {
	return measureOf(ctx, l, p, next, interval, lab.VIP, event)
}

// measureOf is measure for any VIP; p must be probing it.
func measureOf(ctx context.Context, l *lab.Lab, p *lab.Prober, next *lab.Node, interval time.Duration, vip netip.Prefix, event func(context.Context) error) (time.Duration, error) {
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

func needKeepalived() error {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return fmt.Errorf("keepalived not found (apt-get install keepalived): %w", err)
	}
	return nil
}

// ms formats a duration for people: milliseconds with one decimal below a
// second, seconds with two above.
func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// cutAfterAdvert pulls n's cable right after one of its IPv4 adverts, the
// worst moment: the backups then wait a whole Master_Down_Interval.
func cutAfterAdvert(l *lab.Lab, n *lab.Node) func(context.Context) error {
	return cutAfterAdvertOf(l, n, ipv4)
}

// cutAfterAdvertOf is cutAfterAdvert after an advert of family f.
func cutAfterAdvertOf(l *lab.Lab, n *lab.Node, f family) func(context.Context) error {
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
