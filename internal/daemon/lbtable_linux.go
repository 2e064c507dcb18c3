package daemon

import (
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/lb"
)

// linuxLB is LBTable on Linux: internal/lb's nftables table, opened on
// first use so that a configuration without virtual servers never touches
// nftables.
type linuxLB struct {
	mu sync.Mutex
	l  *lb.Linux
}

var _ LBTable = (*linuxLB)(nil)

func (s *linuxSystem) LB() LBTable { return &s.lb }

func (t *linuxLB) open() (*lb.Linux, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l != nil {
		return t.l, nil
	}
	l, err := lb.NewLinux()
	if err != nil {
		return nil, err
	}
	t.l = l
	return l, nil
}

func (t *linuxLB) Preflight() error {
	l, err := t.open()
	if err != nil {
		return err
	}
	return l.Preflight()
}

func (*linuxLB) CheckForwarding(vss []lb.VirtualServer) error { return lb.CheckForwarding(vss) }

func (t *linuxLB) Apply(vss []lb.VirtualServer) error {
	rs, err := lb.Build(vss, lb.Options{})
	if err != nil {
		return err
	}
	l, err := t.open()
	if err != nil {
		return err
	}
	return l.Apply(rs)
}

func (t *linuxLB) Remove() error {
	l, err := t.open()
	if err != nil {
		return err
	}
	return l.Remove()
}

func (t *linuxLB) FlushConntrack(vs lb.VirtualServer, be lb.Backend) (uint, error) {
	l, err := t.open()
	if err != nil {
		return 0, err
	}
	return l.FlushConntrack(vs, be)
}

// Connections reads the table's counters; nothing while the table was
// never opened.
func (t *linuxLB) Connections() ([]lb.Connections, error) {
	t.mu.Lock()
	l := t.l
	t.mu.Unlock()
	if l == nil {
		return nil, nil
	}
	return l.Connections()
}

// LocalAddrs lists every address of the host (of its network namespace),
// as internal/netif reads them.
func (*linuxLB) LocalAddrs() (map[netip.Addr]bool, error) {
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}

func (t *linuxLB) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l == nil {
		return nil
	}
	err := t.l.Close()
	t.l = nil
	return err
}
