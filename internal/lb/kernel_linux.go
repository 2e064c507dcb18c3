package lb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Linux is the kernel's nftables and conntrack tables of one network
// namespace, over netlink.
type Linux struct {
	mu sync.Mutex // one batch at a time
	// dial returns a connection for one batch: a fresh one each time, so
	// that a batch abandoned half-built leaves nothing for the next.
	dial func() (*nftables.Conn, error)
	ct   *netlink.Handle
	ns   netns.NsHandle
	// counters are the applied table's, by object name, for Connections.
	counters map[string]Counter
}

// opTimeout bounds every conntrack netlink request.
const opTimeout = 5 * time.Second

// NewLinux opens netlink sockets in the calling thread's network namespace.
// Close releases them.
func NewLinux() (*Linux, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("lb: network namespace: %w", err)
	}
	l, err := NewLinuxAt(ns)
	ns.Close()
	return l, err
}

// NewLinuxAt opens netlink sockets in network namespace ns, which stays
// the caller's to close. Entering it needs CAP_SYS_ADMIN; NewLinux does not.
func NewLinuxAt(ns netns.NsHandle) (*Linux, error) {
	dup, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lb: network namespace: %w", err)
	}
	l := &Linux{ns: netns.NsHandle(dup)}
	l.dial = func() (*nftables.Conn, error) { return nftables.New(nftables.WithNetNSFd(dup)) }
	l.ct, err = netlink.NewHandleAt(l.ns, unix.NETLINK_NETFILTER)
	if err == nil {
		err = l.ct.SetSocketTimeout(opTimeout)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("lb: conntrack netlink: %w", err)
	}
	return l, nil
}

// Close releases the sockets.
func (l *Linux) Close() error {
	if l.ct != nil {
		l.ct.Close()
	}
	return l.ns.Close()
}

// Apply replaces vipd's table with rs in one batch: the kernel runs either
// the old rules or the new ones, never a mix. Affinity entries of real
// servers that are in both are carried over with their remaining lifetime,
// and so are connection counters: the new table's start at the old one's
// values, which makes them outlive a reload and a restart that finds a
// crashed run's table. A client that gains an affinity entry, or a
// connection counted, between the read of the old table and the commit
// (the time the batch takes) may lose it.
func (l *Linux) Apply(rs *Ruleset) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.dial()
	if err != nil {
		return fmt.Errorf("lb: nftables netlink: %w", err)
	}
	carried := affinities(c, rs)
	counts := counts(c, rs.Table)
	// Adding first makes the delete succeed when there is no table yet.
	c.AddTable(rs.Table)
	c.DelTable(rs.Table)
	if err := add(c, rs, carried, counts); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("lb: replace table %s: %w", rs.Table.Name, err)
	}
	l.counters = make(map[string]Counter, len(rs.Counters))
	for _, ct := range rs.Counters {
		l.counters[ct.Name] = ct
	}
	return nil
}

// counts reads the packet counts of the named counters in table t. An
// error (there is no table yet) means nothing to carry over.
func counts(c *nftables.Conn, t *nftables.Table) map[string]uint64 {
	objs, err := c.GetNamedObjects(t)
	if err != nil {
		return nil
	}
	out := make(map[string]uint64, len(objs))
	for _, o := range objs {
		if n, ok := o.(*nftables.NamedObj); ok && n.Type == nftables.ObjTypeCounter {
			if ctr, ok := n.Obj.(*expr.Counter); ok {
				out[n.Name] = ctr.Packets
			}
		}
	}
	return out
}

// Connections reads the connection counters of the table Apply last put
// in the kernel; nothing before the first Apply.
func (l *Linux) Connections() ([]Connections, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counters) == 0 {
		return nil, nil
	}
	c, err := l.dial()
	if err != nil {
		return nil, fmt.Errorf("lb: nftables netlink: %w", err)
	}
	objs, err := c.GetNamedObjects(&nftables.Table{Name: Table, Family: nftables.TableFamilyINet})
	if err != nil {
		return nil, fmt.Errorf("lb: read counters of table %s: %w", Table, err)
	}
	out := make([]Connections, 0, len(l.counters))
	for _, o := range objs {
		n, ok := o.(*nftables.NamedObj)
		if !ok || n.Type != nftables.ObjTypeCounter {
			continue
		}
		ct, ok := l.counters[n.Name]
		ctr, isCounter := n.Obj.(*expr.Counter)
		if !ok || !isCounter {
			continue
		}
		out = append(out, Connections{VirtualServer: ct.VirtualServer, Addr: ct.Addr, Port: ct.Port, Total: ctr.Packets})
	}
	return out, nil
}

// add queues rs's table and contents, with extra elements for its sets
// and initial packet counts for its counters.
func add(c *nftables.Conn, rs *Ruleset, extra map[string][]nftables.SetElement, counts map[string]uint64) error {
	c.AddTable(rs.Table)
	for _, ch := range rs.Chains {
		c.AddChain(ch)
	}
	for _, s := range rs.Sets {
		elems := s.Elements
		if e := extra[s.Name]; !s.Anonymous && len(e) > 0 {
			elems = append(append([]nftables.SetElement(nil), elems...), e...)
		}
		if err := c.AddSet(s.Set, elems); err != nil {
			return fmt.Errorf("lb: set %s: %w", s.Name, err)
		}
	}
	for _, ct := range rs.Counters {
		c.AddObj(&nftables.NamedObj{Table: rs.Table, Name: ct.Name, Type: nftables.ObjTypeCounter,
			Obj: &expr.Counter{Packets: counts[ct.Name]}})
	}
	for _, r := range rs.Rules {
		c.AddRule(r)
	}
	return nil
}

// affinities reads the current table's entries of rs's affinity sets.
// Errors (there is no table yet, or it is not vipd's layout) mean nothing
// to carry over.
func affinities(c *nftables.Conn, rs *Ruleset) map[string][]nftables.SetElement {
	out := make(map[string][]nftables.SetElement)
	for _, s := range rs.Sets {
		if s.Anonymous || !strings.HasPrefix(s.Name, affinityPrefix) {
			continue
		}
		old, err := c.GetSetByName(rs.Table, s.Name)
		if err != nil || !old.HasTimeout {
			continue
		}
		elems, err := c.GetSetElements(old)
		if err != nil {
			continue
		}
		for _, e := range elems {
			left := e.Expires
			if left <= 0 {
				continue
			}
			left = min(left, s.Timeout)
			out[s.Name] = append(out[s.Name], nftables.SetElement{Key: e.Key, Timeout: left})
		}
	}
	return out
}

// Remove deletes vipd's table, and nothing else. It is no error when there
// is none.
func (l *Linux) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.dial()
	if err != nil {
		return fmt.Errorf("lb: nftables netlink: %w", err)
	}
	l.counters = nil
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("lb: delete table %s: %w", Table, err)
	}
	return nil
}

// Present says whether vipd's table exists.
func (l *Linux) Present() (bool, error) {
	c, err := l.dial()
	if err != nil {
		return false, fmt.Errorf("lb: nftables netlink: %w", err)
	}
	_, err = c.ListTableOfFamily(Table, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

// flowFilter matches the conntrack entries of connections to a virtual
// server that were sent to one real server.
type flowFilter struct {
	vs key
	be netip.AddrPort
}

func (f flowFilter) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	return fl.Forward.Protocol == uint8(f.vs.proto) &&
		fl.Forward.DstPort == f.vs.port && ipIs(fl.Forward.DstIP, f.vs.addr) &&
		fl.Reverse.SrcPort == f.be.Port() && ipIs(fl.Reverse.SrcIP, f.be.Addr())
}

func ipIs(ip net.IP, a netip.Addr) bool {
	b, ok := netip.AddrFromSlice(ip)
	return ok && b.Unmap() == a
}

// FlushConntrack deletes the conntrack entries of connections to vs that
// went to real server be, and returns how many. Call it once be is out of
// the table: the clients' next packets then find no entry, are balanced
// anew and reset by whichever real server gets them, so the clients
// reconnect at once instead of waiting on a real server that is gone.
func (l *Linux) FlushConntrack(vs VirtualServer, be Backend) (uint, error) {
	fam := netlink.InetFamily(unix.AF_INET)
	if vs.Addr.Is6() {
		fam = unix.AF_INET6
	}
	n, err := l.ct.ConntrackDeleteFilters(netlink.ConntrackTable, fam,
		flowFilter{vs.key(), netip.AddrPortFrom(be.Addr, be.Port)})
	if err != nil {
		return n, fmt.Errorf("lb: conntrack of %s to %v: %w", vs.Name, netip.AddrPortFrom(be.Addr, be.Port), err)
	}
	return n, nil
}
