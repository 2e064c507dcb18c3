package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// iface runs one interface: it waits for the link, runs the interface's
// instances, and opens for each address family in use one socket shared by
// the instances of that family (a plane).
type iface struct {
	d      *Daemon
	name   string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	drops  [drop.Count]prometheus.Counter

	// link is set once by run before ready is set; read-only afterwards.
	link netif.Link

	mu        sync.Mutex
	ready     bool
	pending   []config.Instance // started before the link was found
	instances map[string]*instance
	planes    map[string]*plane // by family
	wg        sync.WaitGroup    // instance and plane goroutines
	instWG    sync.WaitGroup    // instance goroutines
}

func newIface(d *Daemon, name string) *iface {
	f := &iface{d: d, name: name, log: d.log.With("iface", name), instances: map[string]*instance{}, planes: map[string]*plane{}}
	f.ctx, f.cancel = context.WithCancel(d.ctx)
	for r := drop.None + 1; r < drop.Count; r++ {
		f.drops[r] = d.m.PacketsDropped.WithLabelValues(name, r.String())
	}
	return f
}

// run waits for the link, then serves the interface until close or the
// daemon's context ends, and returns once every instance has shut down.
func (f *iface) run() {
	defer f.cancel()
	err := retry(f.ctx, f.log, "waiting for interface", func() error {
		var err error
		f.link, err = f.d.sys.LinkByName(f.name)
		return err
	})
	if err != nil {
		return
	}
	if err := f.d.sys.PrepareInterface(f.name); err != nil {
		f.log.Warn("cannot set promote_secondaries; removing a VIP that became the primary address would remove the host's own address too", "err", err)
	}
	f.mu.Lock()
	f.ready = true
	for _, ic := range f.pending {
		f.startLocked(ic)
	}
	f.pending = nil
	f.mu.Unlock()
	f.log.Info("interface found", "index", f.link.Index)

	<-f.ctx.Done()
	f.wg.Wait()
}

// start runs ic on this interface, at once if the link has been found.
func (f *iface) start(ic config.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		f.pending = append(f.pending, ic)
		return
	}
	f.startLocked(ic)
}

func (f *iface) startLocked(ic config.Instance) {
	p := f.planeLocked(ic.Family)
	in := newInstance(ic, f, p)
	ctx, cancel := context.WithCancel(f.ctx)
	in.cancel = cancel
	f.instances[ic.Name] = in
	f.publishLocked()
	f.d.register(in)
	f.wg.Add(1)
	f.instWG.Add(1)
	go func() {
		defer f.wg.Done()
		defer f.instWG.Done()
		defer close(in.done)
		defer f.d.unregister(in)
		in.run(ctx)
	}()
}

// planeLocked returns the family's plane, starting it if needed.
func (f *iface) planeLocked(family string) *plane {
	if p := f.planes[family]; p != nil {
		return p
	}
	p := &plane{f: f, family: family, log: f.log.With("family", family), ready: make(chan struct{})}
	p.byVRID.Store(&map[uint8]*instance{})
	var vips []netip.Prefix
	for _, ic := range f.pending {
		vips = append(vips, ic.VIPs...)
	}
	for _, in := range f.instances {
		vips = append(vips, in.cfg.VIPs...)
	}
	f.planes[family] = p
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		p.run(f.ctx, vips)
	}()
	return p
}

// stop shuts the named instance down and waits for it.
func (f *iface) stop(name string) {
	f.mu.Lock()
	for i, ic := range f.pending {
		if ic.Name == name {
			f.pending = append(f.pending[:i], f.pending[i+1:]...)
			f.mu.Unlock()
			return
		}
	}
	in := f.instances[name]
	delete(f.instances, name)
	f.publishLocked()
	f.mu.Unlock()
	if in == nil {
		return
	}
	in.cancel()
	<-in.done
	in.deleteMetrics()
}

// update hands a changed configuration to a running instance.
func (f *iface) update(ic config.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.pending {
		if f.pending[i].Name == ic.Name {
			f.pending[i] = ic
			return
		}
	}
	if in := f.instances[ic.Name]; in != nil {
		in.updates <- &ic
	}
}

func (f *iface) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) == 0 && len(f.instances) == 0
}

// close stops the interface's runner; its instances must be stopped first.
func (f *iface) close() { f.cancel() }

func (f *iface) status(name string) (Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.instances[name]; in != nil {
		return in.status(), true
	}
	for _, ic := range f.pending {
		if ic.Name == name {
			return Status{Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Family: ic.Family, State: router.Init,
				Priority: ic.Priority, ConfiguredPriority: ic.Priority, VIPs: ic.VIPs}, true
		}
	}
	return Status{}, false
}

// publishLocked gives each plane's receive loop its new VRID map.
func (f *iface) publishLocked() {
	maps := map[string]map[uint8]*instance{}
	for fam := range f.planes {
		maps[fam] = map[uint8]*instance{}
	}
	for _, in := range f.instances {
		maps[in.cfg.Family][in.cfg.VRID] = in
	}
	for fam, p := range f.planes {
		m := maps[fam]
		p.byVRID.Store(&m)
	}
}

// plane is one address family on one interface: its VRRP socket, shared by
// the family's instances and read by one goroutine, its announcer (ARP or
// NDP) and its source address.
type plane struct {
	f      *iface
	family string
	log    *slog.Logger

	// ready is closed once src, conn and ann are set; read-only afterwards.
	ready chan struct{}
	src   netip.Addr // primary IPv4, or link-local IPv6 (RFC 9568 §5.1.2.1)
	conn  PacketConn
	ann   Announcer
	// sender sends the periodic adverts of the plane's Masters.
	sender *sender

	// byVRID is what the receive loop reads for every packet: a map that
	// is replaced, never changed, when instances come and go.
	byVRID atomic.Pointer[map[uint8]*instance]
}

// group is the family's VRRP multicast group.
func (p *plane) group() netip.Addr {
	if p.family == "ipv6" {
		return vrrp.IPv6Group
	}
	return vrrp.IPv4Group
}

// run sets the plane up, retrying while the address it needs is missing or
// (IPv6) still tentative, then reads its socket until the interface ends.
func (p *plane) run(ctx context.Context, vips []netip.Prefix) {
	sys, link := p.f.d.sys, p.f.link
	err := retry(ctx, p.log, "waiting for the interface's address and opening sockets", func() error {
		var err error
		if p.family == "ipv6" {
			p.src, err = sys.LinkLocalIPv6(link.Index)
		} else {
			p.src, err = sys.PrimaryIPv4(link.Index, vips)
		}
		if err != nil {
			return err
		}
		if p.family == "ipv6" {
			p.conn, err = sys.ListenIPv6(link.Index)
		} else {
			p.conn, err = sys.ListenIPv4(link.Index)
		}
		if err != nil {
			return err
		}
		if p.family == "ipv6" {
			p.ann, err = sys.DialNDP(link.Index)
		} else {
			p.ann, err = sys.DialARP(link.Index)
		}
		if err != nil {
			p.conn.Close()
		}
		return err
	})
	if err != nil {
		return
	}
	p.sender = newSender(p.conn)
	close(p.ready)
	p.log.Info("sockets open", "source", p.src)
	recvDone, sendDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(recvDone)
		p.receive()
	}()
	sendCtx, stopSending := context.WithCancel(context.Background())
	go func() {
		defer close(sendDone)
		p.sender.run(sendCtx)
	}()
	<-ctx.Done()
	// The instances send their last adverts before the sockets close.
	p.f.instWG.Wait()
	stopSending()
	<-sendDone
	p.conn.Close()
	<-recvDone
	p.ann.Close()
}

// receive reads the plane's socket until it is closed, validates each
// packet (RFC 9568 §7.1) and hands it to its instance.
func (p *plane) receive() {
	buf := make([]byte, 2048)
	var pkt vrrp.Packet
	debug := p.log.Enabled(context.Background(), slog.LevelDebug)
	for {
		n, meta, err := p.conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Warn("reading VRRP socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		byVRID := *p.byVRID.Load()
		in, reason := check(&pkt, buf[:n], meta, p.src, byVRID)
		if reason != drop.None {
			p.f.drops[reason].Inc()
			if debug {
				p.log.Debug("packet dropped", "from", meta.Src, "reason", reason.String(), "len", n)
			}
			continue
		}
		in.m.received.Inc()
		ev := router.Event{Kind: router.Advert, From: meta.Src, Priority: pkt.Priority, Interval: pkt.AdvertInterval()}
		if !in.deliver(received{ev: ev, at: at}) {
			p.f.drops[drop.QueueFull].Inc()
		}
	}
}

// check validates one packet in the order of RFC 9568 §7.1 (RFC 3768 §7.1
// for version 2), decodes it into pkt and returns the instance it is for.
func check(pkt *vrrp.Packet, b []byte, meta transport.Meta, self netip.Addr, byVRID map[uint8]*instance) (*instance, drop.Reason) {
	if meta.Src == self {
		return nil, drop.OwnAddress
	}
	if err := vrrp.ParseInto(pkt, b, meta.Src, meta.Dst); err != nil {
		if meta.TTL != 255 {
			return nil, drop.TTL
		}
		return nil, drop.FromCodec(err)
	}
	in := byVRID[pkt.VRID]
	// §7.1: the TTL (hop limit) MUST be 255: the packet was not forwarded
	// by a router. A listed unicast peer is exempt: unicast peers may be
	// routed, and keepalived sends IPv6 unicast adverts with hop limit 64;
	// the peer list is what admits them (wire.accept checks it).
	if meta.TTL != 255 && (in == nil || len(in.wire.peers) == 0) {
		return nil, drop.TTL
	}
	if in == nil {
		return nil, drop.UnknownVRID
	}
	return in, in.wire.accept(pkt, meta.Src)
}
