package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// probeTable is the table the preflight probes add and delete in the same
// batch: the kernel checks every object as it is added, and the commit then
// leaves nothing behind.
const probeTable = "vipd-preflight"

// probes are the kernel features the table needs, one batch each, so that
// a failure names the missing one.
var probes = []struct {
	what  string
	build func(b *builder)
}{
	{"nf_tables with inet tables", func(b *builder) {}},
	{"NAT chains in an inet table (nft_chain_nat, Linux 5.2)", func(b *builder) {
		b.baseChain("probe", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, prioDNAT)
	}},
	{"filter chains", func(b *builder) {
		b.baseChain("probe", nftables.ChainTypeFilter, nftables.ChainHookInput, prioFilter)
	}},
	{"verdict maps keyed by concatenations (nft_set_hash)", func(b *builder) {
		b.chain("probe")
		s := b.set(&nftables.Set{Name: "m", IsMap: true, Concatenation: true,
			KeyType: serviceKeyType(true), DataType: nftables.TypeVerdict}, nil)
		b.rule("probe", serviceLookup(true, s.Name, s.ID)...)
	}},
	{"numgen (nft_numgen)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", &expr.Numgen{Register: 1, Modulus: 2, Type: unix.NFT_NG_INCREMENTAL})
	}},
	{"jhash (nft_hash)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", append(saddr(false), &expr.Hash{SourceRegister: 1, DestRegister: 1, Length: 4, Modulus: 2, Seed: hashSeed, Type: expr.HashTypeJenkins})...)
	}},
	{"sets with timeouts updated from rules (dynset)", func(b *builder) {
		b.chain("probe")
		s := b.set(&nftables.Set{Name: "s", KeyType: nftables.TypeIPAddr, HasTimeout: true, Timeout: time.Minute, Dynamic: true}, nil)
		b.rule("probe", append(saddr(false), &expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: unix.NFT_DYNSET_OP_UPDATE})...)
	}},
	{"conntrack state (nft_ct)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", ctStateNew()...)
	}},
	{"reject (nft_reject_inet)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	}},
	{"named counters (nft_counter, nft_objref)", func(b *builder) {
		b.chain("probe")
		b.rs.Counters = append(b.rs.Counters, Counter{Name: "c"})
		b.rule("probe", &expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: "c"})
	}},
	{"DNAT (nft_nat)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", dnat(Backend{Addr: netip.MustParseAddr("192.0.2.1"), Port: 1})...)
	}},
	{"masquerade (nft_masq)", func(b *builder) {
		b.chain("probe")
		b.rule("probe", &expr.Masq{})
	}},
}

// ErrKernel wraps what Preflight found missing.
var ErrKernel = errors.New("lb: the kernel lacks what load balancing needs")

// Preflight checks, without changing anything, that the kernel can hold
// vipd's table, and names what it lacks.
func (l *Linux) Preflight() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range probes {
		c, err := l.dial()
		if err != nil {
			return fmt.Errorf("lb: nftables netlink: %w", err)
		}
		b := newBuilder(probeTable, DefaultMark)
		p.build(b)
		if err := add(c, b.rs, nil, nil); err != nil {
			return err
		}
		c.DelTable(b.rs.Table)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrKernel, p.what, err)
		}
	}
	// The expectation table, which is small where the connection table
	// of a busy balancer is not.
	if _, err := l.ct.ConntrackTableList(netlink.ConntrackExpectTable, unix.AF_INET); err != nil {
		return fmt.Errorf("%w: conntrack over netlink (nf_conntrack_netlink): %v", ErrKernel, err)
	}
	return nil
}

// forwardingPath is the sysctl that lets the kernel forward the family's
// packets, read and written in the calling thread's network namespace.
func forwardingPath(v6 bool) string {
	if v6 {
		return "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	return "/proc/sys/net/ipv4/ip_forward"
}

// Forwarding says whether the kernel forwards IPv4 (or IPv6) packets.
func Forwarding(v6 bool) (bool, error) {
	b, err := os.ReadFile(forwardingPath(v6))
	if err != nil {
		return false, fmt.Errorf("lb: %w", err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

// EnableForwarding turns forwarding of IPv4 (or IPv6) packets on. For IPv6
// this makes every interface a router: see the package documentation.
func EnableForwarding(v6 bool) error {
	if err := os.WriteFile(forwardingPath(v6), []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("lb: enable forwarding: %w", err)
	}
	return nil
}

// ErrForwarding says forwarding is off for a family that has real servers
// on another host.
var ErrForwarding = errors.New("lb: real servers on another host need forwarding")

// CheckForwarding returns ErrForwarding, naming the sysctl, when a virtual
// server has a real server on another host in a family the kernel does not
// forward.
func CheckForwarding(vss []VirtualServer) error {
	for _, v6 := range []bool{false, true} {
		var need string
		for _, v := range vss {
			for _, be := range v.Backends {
				if !be.Local && v.Addr.Is6() == v6 && need == "" {
					need = v.Name
				}
			}
		}
		if need == "" {
			continue
		}
		on, err := Forwarding(v6)
		if err != nil {
			return err
		}
		if !on {
			name := strings.ReplaceAll(strings.TrimPrefix(forwardingPath(v6), "/proc/sys/"), "/", ".")
			return fmt.Errorf("%w: virtual server %s: set %s=1", ErrForwarding, need, name)
		}
	}
	return nil
}
