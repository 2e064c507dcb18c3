package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

// instance drives one virtual router. Only its run goroutine touches the
// router, the timers and the buffers; status is guarded by mu.
type instance struct {
	cfg   config.Instance
	link  netif.Link
	src   netip.Addr
	conn  PacketConn
	arp   Announcer
	addrs AddrSet
	log   *slog.Logger

	r      *router.Router
	events chan router.Event

	pkt     vrrp.Packet
	buf     []byte
	actions []router.Action

	// announceLeft counts the gratuitous ARP rounds still to send;
	// announceArmed says the announce timer is running.
	announceLeft  int
	announceArmed bool
	// sendFailing is set after a failed send, so that only the first
	// failure of a run is logged at warn level.
	sendFailing bool

	mu   sync.Mutex
	snap Status
}

func newInstance(ic config.Instance, link netif.Link, src netip.Addr, conn PacketConn, arp Announcer, addrs AddrSet, log *slog.Logger) *instance {
	in := &instance{
		cfg:   ic,
		link:  link,
		src:   src,
		conn:  conn,
		arp:   arp,
		addrs: addrs,
		log:   log.With("instance", ic.Name, "vrid", ic.VRID),
		r: router.New(router.Config{
			Priority:       ic.Priority,
			AdvertInterval: ic.AdvertInterval,
			Preempt:        ic.Preempt,
			PreemptDelay:   ic.PreemptDelay,
			Addr:           src,
		}),
		events: make(chan router.Event, 64),
		buf:    make([]byte, 0, 1500),
	}
	in.pkt = vrrp.Packet{
		Version:  3,
		Type:     vrrp.TypeAdvertisement,
		VRID:     ic.VRID,
		Priority: ic.Priority,
		// RFC 9568 §5.2.7: centiseconds; the config allows only whole ones.
		Interval: uint16(ic.AdvertInterval / (10 * time.Millisecond)),
	}
	for _, v := range ic.VIPs {
		in.pkt.Addresses = append(in.pkt.Addresses, v.Addr())
	}
	in.snap = Status{Name: ic.Name, Interface: link.Name, VRID: ic.VRID, Priority: ic.Priority, State: router.Init, Since: time.Now()}
	return in
}

// run is the instance's driver loop: the only goroutine that steps the
// router. It returns after the shutdown actions have been carried out.
func (in *instance) run(ctx context.Context) {
	protocol := time.NewTimer(time.Hour)
	protocol.Stop()
	announce := time.NewTimer(time.Hour)
	announce.Stop()
	defer protocol.Stop()
	defer announce.Stop()

	var armed time.Time
	in.step(router.Event{Kind: router.Startup})
	for {
		if dl := in.r.Deadline(); !dl.Equal(armed) {
			armed = dl
			protocol.Stop()
			if !dl.IsZero() {
				protocol.Reset(time.Until(dl))
			}
		}
		switch {
		case in.announceLeft > 0 && !in.announceArmed:
			announce.Reset(in.cfg.Announce.Interval)
			in.announceArmed = true
		case in.announceLeft == 0 && in.announceArmed:
			announce.Stop()
			in.announceArmed = false
		}
		select {
		case <-ctx.Done():
			in.step(router.Event{Kind: router.Shutdown})
			return
		case ev := <-in.events:
			in.step(ev)
		case <-protocol.C:
			armed = time.Time{}
			in.step(router.Event{Kind: router.Timeout})
		case <-announce.C:
			in.announceArmed = false
			in.announceRound()
		}
	}
}

// step feeds ev to the router and carries out the resulting actions in
// order.
func (in *instance) step(ev router.Event) {
	in.actions = in.r.Step(time.Now(), ev, in.actions[:0])
	for _, a := range in.actions {
		switch a.Kind {
		case router.SendAdvert:
			in.send(a.Priority)
		case router.AddVIPs:
			for _, vip := range in.cfg.VIPs {
				if err := in.addrs.Add(in.link.Index, vip); err != nil {
					in.log.Error("adding VIP failed", "vip", vip, "err", err)
				}
			}
		case router.RemoveVIPs:
			in.announceLeft = 0
			_ = removeVIPs(in.addrs, in.link.Index, in.cfg, in.log)
		case router.Announce:
			// The first round goes out at once; the rest follow at the
			// configured interval from the run loop.
			in.announceLeft = in.cfg.Announce.Count
			in.announceRound()
		case router.Transition:
			in.transition(a)
		}
	}
}

// send multicasts an advertisement with priority p.
func (in *instance) send(p uint8) {
	in.pkt.Priority = p
	b, err := in.pkt.Append(in.buf[:0], in.src, vrrp.IPv4Group, vrrp.ChecksumPseudoHeader)
	if err == nil {
		in.buf = b
		err = in.conn.WriteTo(b, in.src, vrrp.IPv4Group)
	}
	switch {
	case err != nil && !in.sendFailing:
		in.sendFailing = true
		in.log.Warn("sending advertisement failed; retrying at every interval", "err", err)
	case err != nil:
		in.log.Debug("sending advertisement failed", "err", err)
	case in.sendFailing:
		in.sendFailing = false
		in.log.Info("sending advertisements again")
	}
}

// announceRound sends one gratuitous ARP round for every VIP.
func (in *instance) announceRound() {
	if in.announceLeft <= 0 {
		return
	}
	in.announceLeft--
	for _, vip := range in.cfg.VIPs {
		if err := in.arp.Announce(vip.Addr()); err != nil {
			in.log.Debug("gratuitous ARP failed", "vip", vip.Addr(), "err", err)
		}
	}
}

func (in *instance) transition(a router.Action) {
	master := in.r.Master()
	in.mu.Lock()
	in.snap.State = a.To
	in.snap.Master = master
	in.snap.Since = time.Now()
	in.mu.Unlock()
	attrs := []any{"from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String()}
	if master.IsValid() {
		attrs = append(attrs, "master", master)
	}
	in.log.Info("state change", attrs...)
}

func (in *instance) status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.snap
	return s
}
