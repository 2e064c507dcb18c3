package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

const demoInterval = 100 * time.Millisecond

// pause lets a person read one step before the next happens.
func pause(ctx context.Context) error { return sleep(ctx, 2*time.Second) }

// demo walks a person through a failover, a preemption and a graceful
// handover, printing what happens in plain words.
func demo(ctx context.Context, w io.Writer, vipdPath, logDir string) (err error) {
	bin, err := vipdBinary(vipdPath)
	if err != nil {
		return err
	}
	l, err := lab.New(lab.Config{Nodes: 3, Dir: logDir})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(w, "\nSomething went wrong; the nodes' logs end with:\n%s", l.LogTails(15))
		}
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	who := func() string {
		mac, err := l.Client.NeighMAC(lab.VIP.Addr())
		if err != nil {
			return err.Error()
		}
		name := "unknown"
		if m := l.NodeByMAC(mac); m != nil {
			name = m.Name
		}
		return fmt.Sprintf("%s (%s)", mac, name)
	}
	mdi := lab.MasterDownInterval(priorities[1], demoInterval)
	skew := lab.SkewTime(priorities[1], demoInterval)

	say("vipd demo: three routers and a client on one Ethernet segment (a Linux bridge),")
	say("each in its own network namespace (%s-*).", l.Prefix)
	say("")
	for i, n := range l.Nodes {
		say("  %-6s  %-11s  priority %3d  MAC %s", n.Name, n.Addr.Addr(), priorities[i], n.MAC())
	}
	say("  %-6s  %-11s  pings the VIP every 2ms", "client", l.Client.Addr.Addr())
	say("")
	say("Each node runs vipd for the VIP %s (VRID %d, an advert every %v, preempt on).", lab.VIP, vrid, demoInterval)
	say("")

	say("Starting vipd on n1, n2 and n3 ...")
	start := time.Now()
	if err := vipdIn(l, bin).startAll(ipv4, demoInterval); err != nil {
		return err
	}
	p, err := l.Probe(ctx, lab.VIP.Addr(), 2*time.Millisecond)
	if err != nil {
		return err
	}
	defer p.Stop()
	held, err := settle(ctx, l, p, n1, demoInterval, lab.VIP)
	if err != nil {
		return err
	}
	say("  n1 holds %s, %s after the start: it has the highest priority.", lab.VIP.Addr(), ms(held.Sub(start)))
	say("  The client reaches the VIP; its ARP entry says %s is at %s.", lab.VIP.Addr(), who())
	say("")

	if err := pause(ctx); err != nil {
		return err
	}
	say("Step 1: pull n1's cable (its port on the bridge goes down), right after one of its adverts.")
	before := who()
	outage, err := measure(ctx, l, p, n2, demoInterval, lab.VIP, cutAfterAdvert(l, n1, ipv4))
	if err != nil {
		return err
	}
	say("  n2 took over the VIP. The client could not reach it for %s.", ms(outage))
	say("  RFC 9568 has n2 wait Master_Down_Interval = 3×%v + (256−%d)×%v/256 = %s after n1's last advert.",
		demoInterval, priorities[1], demoInterval, ms(mdi))
	say("  The client's ARP entry for %s moved: %s → %s.", lab.VIP.Addr(), before, who())
	if has, _ := n1.Has(lab.VIP); has {
		say("  (n1, cut off, still has the VIP on its eth0, where nobody can reach it.)")
	}
	say("")

	if err := pause(ctx); err != nil {
		return err
	}
	say("Step 2: plug n1's cable back in; n1 has the higher priority and preempt is on.")
	back := time.Now()
	p.ResetOutage()
	if err := n1.RestoreLink(); err != nil {
		return err
	}
	if held, err = settle(ctx, l, p, n1, demoInterval, lab.VIP); err != nil {
		return err
	}
	say("  %s after the cable came back n1 was the only holder again: n2 heard n1's", ms(held.Sub(back)))
	lost := "the client lost not one echo request"
	if o := p.Stats().Outage; o > 0 {
		lost = "the client could not reach the VIP for " + ms(o)
	}
	say("  higher priority and let go; %s. ARP entry: %s.", lost, who())
	say("")

	if err := pause(ctx); err != nil {
		return err
	}
	say("Step 3: stop vipd on n1 gracefully (SIGTERM): it sends a priority-0 advert and keeps the VIP")
	say("  until it hears n2 advertise as the new master (make-before-break), then removes it.")
	var exit time.Duration
	var stopErr error
	outage, err = measure(ctx, l, p, n2, demoInterval, lab.VIP, stopDaemon(n1, &exit, &stopErr))
	if stopErr != nil {
		say("  vipd on n1 did not stop cleanly: %v", stopErr)
	} else {
		say("  vipd on n1 exited with status 0 after %s.", ms(exit))
	}
	if err != nil {
		return err
	}
	say("  n2 took over; the client could not reach the VIP for %s.", ms(outage))
	say("  After a priority-0 advert RFC 9568 has n2 wait only Skew_Time = (256−%d)×%v/256 = %s,",
		priorities[1], demoInterval, ms(skew))
	say("  not the %s of a silent master. ARP entry: %s.", ms(mdi), who())
	say("")

	say("Done: stopping vipd on n2 and n3 and removing the namespaces.")
	if logDir != "" {
		say("The daemons' logs are in %s.", logDir)
	}
	p.Stop()
	return resetLab(l)
}
