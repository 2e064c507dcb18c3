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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/router"
	"github.com/vipd/vipd/pkg/vrrp"
)

// iface runs one interface: it waits for the link and its address, opens
// the socket shared by the interface's instances, reads it, and runs the
// instances.
type iface struct {
	d      *Daemon
	name   string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	drops  [numDropReasons]prometheus.Counter

	// Set once by run before ready is set; read-only afterwards.
	link netif.Link
	src  netip.Addr
	conn PacketConn
	arp  Announcer

	// byVRID is what the receive loop reads for every packet: a map that
	// is replaced, never changed, when instances come and go.
	byVRID atomic.Pointer[map[uint8]*instance]

	// readyc is closed when ready is set.
	readyc chan struct{}

	mu        sync.Mutex
	ready     bool
	pending   []config.Instance // started before the interface was ready
	instances map[string]*instance
	wg        sync.WaitGroup // instance goroutines
}

func newIface(d *Daemon, name string) *iface {
	f := &iface{d: d, name: name, log: d.log.With("iface", name), instances: map[string]*instance{}, readyc: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(d.ctx)
	for r := DropNone + 1; r < numDropReasons; r++ {
		f.drops[r] = d.m.PacketsDropped.WithLabelValues(name, r.String())
	}
	f.byVRID.Store(&map[uint8]*instance{})
	return f
}

// run sets the interface up, then serves it until close or the daemon's
// context ends, and returns once every instance has shut down.
func (f *iface) run(ctx context.Context) {
	defer f.cancel()
	err := retry(f.ctx, f.log, "waiting for interface and its IPv4 address", func() error {
		var err error
		if f.link, err = f.d.sys.LinkByName(f.name); err != nil {
			return err
		}
		f.src, err = f.d.sys.PrimaryIPv4(f.link.Index, f.allVIPs())
		return err
	})
	if err != nil {
		return
	}
	if err := f.d.sys.PrepareInterface(f.name); err != nil {
		f.log.Warn("cannot set promote_secondaries; removing a VIP that became the primary address would remove the host's own address too", "err", err)
	}
	err = retry(f.ctx, f.log, "opening sockets", func() error {
		var err error
		if f.conn, err = f.d.sys.ListenIPv4(f.link.Index); err != nil {
			return err
		}
		if f.arp, err = f.d.sys.DialARP(f.link.Index); err != nil {
			f.conn.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return
	}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		f.receive()
	}()

	f.mu.Lock()
	f.ready = true
	for _, ic := range f.pending {
		f.startLocked(ic)
	}
	n := len(f.pending)
	f.pending = nil
	close(f.readyc)
	f.mu.Unlock()
	f.log.Info("interface ready", "index", f.link.Index, "source", f.src, "instances", n)

	<-f.ctx.Done()
	f.wg.Wait()
	f.conn.Close()
	<-recvDone
	f.arp.Close()
}

func (f *iface) allVIPs() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	var vips []netip.Prefix
	for _, ic := range f.pending {
		vips = append(vips, ic.VIPs...)
	}
	return vips
}

// start runs ic on this interface, at once if the interface is ready.
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
	in := newInstance(ic, f)
	ctx, cancel := context.WithCancel(f.ctx)
	in.cancel = cancel
	f.instances[ic.Name] = in
	f.publishLocked()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(in.done)
		in.run(ctx)
	}()
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
		in.updates <- ic
	}
}

// ping asks every running instance to answer; see Daemon.Ping.
func (f *iface) ping() []chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]chan struct{}, 0, len(f.instances))
	for _, in := range f.instances {
		r := make(chan struct{})
		select {
		case in.pings <- r:
			out = append(out, r)
		case <-in.done:
		default:
			// The loop has not taken the last ping yet: wedged or busy.
			out = append(out, r)
		}
	}
	return out
}

// running lists the running instances.
func (f *iface) running() []*instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*instance, 0, len(f.instances))
	for _, in := range f.instances {
		out = append(out, in)
	}
	return out
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
			return Status{Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Family: "ipv4", State: router.Init,
				Priority: ic.Priority, ConfiguredPriority: ic.Priority, VIPs: ic.VIPs}, true
		}
	}
	return Status{}, false
}

func (f *iface) publishLocked() {
	m := make(map[uint8]*instance, len(f.instances))
	for _, in := range f.instances {
		m[in.cfg.VRID] = in
	}
	f.byVRID.Store(&m)
}

// receive reads the interface's socket until it is closed, validates each
// packet (RFC 9568 §7.1) and hands it to its instance.
func (f *iface) receive() {
	buf := make([]byte, 2048)
	var p vrrp.Packet
	debug := f.log.Enabled(context.Background(), slog.LevelDebug)
	for {
		n, meta, err := f.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			f.log.Warn("reading VRRP socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		byVRID := *f.byVRID.Load()
		reason := check(&p, buf[:n], meta, f.src, byVRID)
		if reason != DropNone {
			f.drops[reason].Inc()
			if debug {
				f.log.Debug("packet dropped", "from", meta.Src, "reason", reason.String(), "len", n)
			}
			continue
		}
		in := byVRID[p.VRID]
		in.m.received.Inc()
		ev := router.Event{Kind: router.Advert, From: meta.Src, Priority: p.Priority, Interval: p.AdvertInterval()}
		select {
		case in.events <- ev:
		default:
			f.drops[DropQueueFull].Inc()
		}
	}
}

// check validates one packet in the order of RFC 9568 §7.1 and decodes it
// into p.
func check(p *vrrp.Packet, b []byte, meta transportMeta, self netip.Addr, byVRID map[uint8]*instance) DropReason {
	// §7.1: the TTL MUST be 255: the packet was not forwarded by a router.
	if meta.TTL != 255 {
		return DropTTL
	}
	if meta.Src == self {
		return DropOwnAddress
	}
	if err := vrrp.ParseInto(p, b, meta.Src, meta.Dst); err != nil {
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
