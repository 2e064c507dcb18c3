package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

// retryEvery is how often a missing interface or address is looked up again.
const retryEvery = time.Second

// Daemon runs every instance of one configuration.
type Daemon struct {
	cfg   *config.Config
	sys   System
	log   *slog.Logger
	drops DropCounts

	mu        sync.Mutex
	instances []*instance
}

// New returns a Daemon for cfg. It does nothing until Run.
func New(cfg *config.Config, sys System, log *slog.Logger) *Daemon {
	return &Daemon{cfg: cfg, sys: sys, log: log}
}

// Drops returns the counts of dropped packets by reason.
func (d *Daemon) Drops() *DropCounts { return &d.drops }

// Run starts every instance and blocks until ctx is cancelled, then shuts
// them down: a Master sends priority 0 and removes its VIPs. It returns nil
// after a clean shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	byIface := map[string][]config.Instance{}
	var order []string
	for _, ic := range d.cfg.Instances {
		if _, ok := byIface[ic.Interface]; !ok {
			order = append(order, ic.Interface)
		}
		byIface[ic.Interface] = append(byIface[ic.Interface], ic)
	}
	var wg sync.WaitGroup
	for _, name := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runInterface(ctx, name, byIface[name])
		}()
	}
	wg.Wait()
	d.logDrops()
	return nil
}

// Cleanup removes every VIP of cfg from its interface: what a crashed run
// may have left behind. Interfaces that do not exist are skipped.
func Cleanup(cfg *config.Config, sys System, log *slog.Logger) error {
	var errs []error
	for _, ic := range cfg.Instances {
		link, err := sys.LinkByName(ic.Interface)
		if err != nil {
			log.Debug("cleanup: interface not found", "iface", ic.Interface, "err", err)
			continue
		}
		errs = append(errs, removeVIPs(sys, link.Index, ic, log))
	}
	return errors.Join(errs...)
}

func removeVIPs(sys AddrSet, ifindex int, ic config.Instance, log *slog.Logger) error {
	var errs []error
	for _, vip := range ic.VIPs {
		if err := sys.Remove(ifindex, vip); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: removing %s: %w", ic.Name, vip, err))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Error("removing VIPs failed", "instance", ic.Name, "err", err)
	}
	return err
}

// runInterface waits for the interface and its primary address, removes
// VIPs a crashed run may have left, opens the shared socket and runs the
// interface's instances until ctx is cancelled.
func (d *Daemon) runInterface(ctx context.Context, name string, ics []config.Instance) {
	log := d.log.With("iface", name)
	var vips []netip.Prefix
	for _, ic := range ics {
		vips = append(vips, ic.VIPs...)
	}
	var (
		link netif.Link
		src  netip.Addr
	)
	err := retry(ctx, log, "waiting for interface and its IPv4 address", func() error {
		var err error
		if link, err = d.sys.LinkByName(name); err != nil {
			return err
		}
		src, err = d.sys.PrimaryIPv4(link.Index, vips)
		return err
	})
	if err != nil {
		return
	}
	if err := d.sys.PrepareInterface(name); err != nil {
		log.Warn("cannot set promote_secondaries; removing a VIP that became the primary address would remove the host's own address too", "err", err)
	}
	// Before joining the election, take away whatever a crashed earlier run
	// left, so that two hosts never answer for a VIP.
	for _, ic := range ics {
		_ = removeVIPs(d.sys, link.Index, ic, log)
	}

	var conn PacketConn
	var arp Announcer
	err = retry(ctx, log, "opening sockets", func() error {
		var err error
		if conn, err = d.sys.ListenIPv4(link.Index); err != nil {
			return err
		}
		if arp, err = d.sys.DialARP(link.Index); err != nil {
			conn.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return
	}
	defer arp.Close()

	byVRID := make(map[uint8]*instance, len(ics))
	var insts []*instance
	for _, ic := range ics {
		in := newInstance(ic, link, src, conn, arp, d.sys, log)
		byVRID[ic.VRID] = in
		insts = append(insts, in)
	}
	d.mu.Lock()
	d.instances = append(d.instances, insts...)
	d.mu.Unlock()
	log.Info("interface ready", "index", link.Index, "source", src, "instances", len(insts))

	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		d.receive(conn, src, byVRID, log)
	}()

	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.run(ctx)
		}()
	}
	wg.Wait()
	conn.Close()
	<-recvDone
}

// retry calls fn until it succeeds or ctx ends, logging the first failure at
// warn level and the rest at debug.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil {
			if n > 0 {
				log.Info("recovered: " + what)
			}
			return nil
		}
		if n == 0 {
			log.Warn(what, "err", err, "retry_every", retryEvery)
		} else {
			log.Debug(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryEvery):
		}
	}
}

// receive reads the interface's socket until it is closed, validates each
// packet (RFC 9568 §7.1) and hands it to its instance.
func (d *Daemon) receive(conn PacketConn, self netip.Addr, byVRID map[uint8]*instance, log *slog.Logger) {
	buf := make([]byte, 2048)
	var p vrrp.Packet
	for {
		n, meta, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("reading VRRP socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		reason := d.check(&p, buf[:n], meta.Src, meta.Dst, meta.TTL, self, byVRID)
		if reason != DropNone {
			d.drops.add(reason)
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug("packet dropped", "from", meta.Src, "reason", reason.String(), "len", n)
			}
			continue
		}
		in := byVRID[p.VRID]
		ev := router.Event{Kind: router.Advert, From: meta.Src, Priority: p.Priority, Interval: p.AdvertInterval()}
		select {
		case in.events <- ev:
		default:
			d.drops.add(DropQueueFull)
		}
	}
}

// check validates one packet in the order of RFC 9568 §7.1 and decodes it
// into p.
func (d *Daemon) check(p *vrrp.Packet, b []byte, src, dst netip.Addr, ttl int, self netip.Addr, byVRID map[uint8]*instance) DropReason {
	// §7.1: the TTL MUST be 255: the packet was not forwarded by a router.
	if ttl != 255 {
		return DropTTL
	}
	if src == self {
		return DropOwnAddress
	}
	if err := vrrp.ParseInto(p, b, src, dst); err != nil {
		return reasonOf(err)
	}
	if p.Version != 3 {
		return DropVersion
	}
	if _, ok := byVRID[p.VRID]; !ok {
		return DropUnknownVRID
	}
	for _, a := range p.Addresses {
		if !a.Is4() {
			return DropFamily
		}
	}
	return DropNone
}

func (d *Daemon) logDrops() {
	var attrs []any
	for _, r := range DropReasons() {
		if n := d.drops.Get(r); n > 0 {
			attrs = append(attrs, r.String(), n)
		}
	}
	if len(attrs) > 0 {
		d.log.Info("packets dropped while running", attrs...)
	}
}

// Status is a snapshot of one instance.
type Status struct {
	Name      string
	Interface string
	VRID      uint8
	State     router.State
	Priority  uint8
	Master    netip.Addr
	Since     time.Time
}

// Status returns a snapshot of every running instance.
func (d *Daemon) Status() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Status, 0, len(d.instances))
	for _, in := range d.instances {
		out = append(out, in.status())
	}
	return out
}
