package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the name of vipd's table, of family inet (IPv4 and IPv6).
const Table = "vipd"

// DefaultMark is the packet mark bit that asks nat-postrouting to
// masquerade. kube-proxy and flannel use 0x4000 and 0x8000, Calico the
// upper 16 bits; choose another in Options.Mark if something else uses it.
const DefaultMark = 0x2000

// Options tune Build.
type Options struct {
	Mark uint32 // the masquerade mark bit; DefaultMark when 0
}

// Names of the fixed chains, maps and the affinity-set prefix.
const (
	chainServices   = "services"
	chainNoBackends = "no-backends"
	chainReject     = "reject"
	chainMasquerade = "masquerade"
	mapServices4    = "services4"
	mapServices6    = "services6"
	mapNoBackends4  = "no-backends4"
	mapNoBackends6  = "no-backends6"
	affinityPrefix  = "affinity/"
	counterPrefix   = "conns/"
)

// affinitySize is how many clients a real server's affinity set holds (the
// kernel's default is 65535); past it, a new client is balanced without
// affinity until entries expire.
const affinitySize = 1 << 18

// hashSeed is source_hash's jhash seed: fixed, so that every node of a
// cluster and every run sends a client to the same real server.
const hashSeed = 0x76697064 // "vipd"

// Ruleset is the content of vipd's table, in the order it is added.
type Ruleset struct {
	Table    *nftables.Table
	Chains   []*nftables.Chain
	Sets     []Set // named sets and maps first, then the rules' anonymous maps
	Counters []Counter
	Rules    []*nftables.Rule
}

// Counter is a real server's connection counter: a named counter object
// that the real server's chain increments, before it DNATs, for every new
// connection it sends there (nat chains see only a connection's first
// packet, so its packet count is the connection count). Every real server
// of a virtual server has one, in the schedule or not, so that its count
// outlives a failed check.
type Counter struct {
	Name          string // the object's, in Table
	VirtualServer string
	Addr          netip.Addr
	Port          uint16
}

// Counter returns the counter named name, or nil.
func (r *Ruleset) Counter(name string) *Counter {
	for i := range r.Counters {
		if r.Counters[i].Name == name {
			return &r.Counters[i]
		}
	}
	return nil
}

// Set is a set or map and its elements.
type Set struct {
	*nftables.Set
	Elements []nftables.SetElement
}

// Chain returns the chain named name, or nil.
func (r *Ruleset) Chain(name string) *nftables.Chain {
	for _, c := range r.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// RulesOf returns the rules of chain name, in order.
func (r *Ruleset) RulesOf(name string) []*nftables.Rule {
	var out []*nftables.Rule
	for _, rule := range r.Rules {
		if rule.Chain.Name == name {
			out = append(out, rule)
		}
	}
	return out
}

// Set returns the named set or map name, or nil.
func (r *Ruleset) Set(name string) *Set {
	for i := range r.Sets {
		if !r.Sets[i].Anonymous && r.Sets[i].Name == name {
			return &r.Sets[i]
		}
	}
	return nil
}

// SetByID returns the set or map of ID id (what a rule's lookup refers to
// for anonymous maps), or nil.
func (r *Ruleset) SetByID(id uint32) *Set {
	for i := range r.Sets {
		if r.Sets[i].ID == id {
			return &r.Sets[i]
		}
	}
	return nil
}

// builder accumulates a Ruleset; every set gets an ID here, so that rules
// can refer to anonymous maps in the same batch.
type builder struct {
	rs     *Ruleset
	nextID uint32
	mark   uint32
}

// Build returns the table for vss, which must pass Validate. It is pure:
// tests check its output without a kernel.
func Build(vss []VirtualServer, opt Options) (*Ruleset, error) {
	if err := Validate(vss); err != nil {
		return nil, err
	}
	mark := opt.Mark
	if mark == 0 {
		mark = DefaultMark
	}
	b := newBuilder(Table, mark)
	b.base()
	for _, v := range vss {
		b.virtualServer(v)
	}
	return b.rs, nil
}

func newBuilder(table string, mark uint32) *builder {
	return &builder{
		rs:   &Ruleset{Table: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}},
		mark: mark,
	}
}

func (b *builder) chain(name string) *nftables.Chain {
	c := &nftables.Chain{Name: name, Table: b.rs.Table}
	b.rs.Chains = append(b.rs.Chains, c)
	return c
}

func (b *builder) baseChain(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio int32) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	c := &nftables.Chain{
		Name:     name,
		Table:    b.rs.Table,
		Type:     typ,
		Hooknum:  hook,
		Priority: nftables.ChainPriorityRef(nftables.ChainPriority(prio)),
		Policy:   &accept,
	}
	b.rs.Chains = append(b.rs.Chains, c)
	return c
}

func (b *builder) rule(chain string, exprs ...expr.Any) {
	c := b.rs.Chain(chain)
	if c == nil {
		panic("lb: no chain " + chain)
	}
	b.rs.Rules = append(b.rs.Rules, &nftables.Rule{Table: b.rs.Table, Chain: c, Exprs: exprs})
}

func (b *builder) set(s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	b.nextID++
	s.ID = b.nextID
	s.Table = b.rs.Table
	if s.Anonymous {
		s.Name = "__map%d"
	}
	b.rs.Sets = append(b.rs.Sets, Set{Set: s, Elements: elems})
	return s
}

// Priorities as nft names them: filter chains run before DNAT, so they see
// the virtual server's address.
const (
	prioDNAT   = -100
	prioSNAT   = 100
	prioFilter = prioDNAT - 10
)

// base adds what every table has, whatever the virtual servers.
func (b *builder) base() {
	b.baseChain("nat-prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, prioDNAT)
	b.baseChain("nat-output", nftables.ChainTypeNAT, nftables.ChainHookOutput, prioDNAT)
	b.baseChain("nat-postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, prioSNAT)
	// reject is allowed on input, forward and output only.
	b.baseChain("filter-input", nftables.ChainTypeFilter, nftables.ChainHookInput, prioFilter)
	b.baseChain("filter-forward", nftables.ChainTypeFilter, nftables.ChainHookForward, prioFilter)
	b.baseChain("filter-output", nftables.ChainTypeFilter, nftables.ChainHookOutput, prioFilter)
	b.chain(chainServices)
	b.chain(chainNoBackends)
	b.chain(chainReject)
	b.chain(chainMasquerade)

	for _, m := range []struct {
		name string
		v6   bool
	}{{mapServices4, false}, {mapServices6, true}, {mapNoBackends4, false}, {mapNoBackends6, true}} {
		b.set(&nftables.Set{
			Name:          m.name,
			IsMap:         true,
			Concatenation: true,
			KeyType:       serviceKeyType(m.v6),
			DataType:      nftables.TypeVerdict,
		}, nil)
	}

	b.rule("nat-prerouting", jump(chainServices))
	b.rule("nat-output", jump(chainServices))
	b.rule("nat-postrouting", jump(chainMasquerade))
	for _, c := range []string{"filter-input", "filter-forward", "filter-output"} {
		b.rule(c, append(ctStateNew(), jump(chainNoBackends))...)
	}
	b.rule(chainServices, serviceLookup(false, mapServices4, b.idOf(mapServices4))...)
	b.rule(chainServices, serviceLookup(true, mapServices6, b.idOf(mapServices6))...)
	b.rule(chainNoBackends, serviceLookup(false, mapNoBackends4, b.idOf(mapNoBackends4))...)
	b.rule(chainNoBackends, serviceLookup(true, mapNoBackends6, b.idOf(mapNoBackends6))...)

	b.rule(chainReject,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	)
	b.rule(chainReject, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})

	// kube-proxy's masquerade by mark: only marked packets, and the mark is
	// cleared so that it does not leak into routing or other tables.
	mark := binaryutil.NativeEndian.PutUint32(b.mark)
	zero := binaryutil.NativeEndian.PutUint32(0)
	b.rule(chainMasquerade,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mark, Xor: zero},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: zero},
		&expr.Verdict{Kind: expr.VerdictReturn},
	)
	b.rule(chainMasquerade,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^uint32(0)), Xor: mark},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	)
	// Plain masquerade, not kube-proxy's fully-random: it keeps the
	// client's source port where that tuple is free, so a client that
	// reuses a port goes to the real server over the same tuple as
	// before, which a TIME_WAIT left there accepts (RFC 6191). Fully-random
	// (and random) map it to another tuple, freed moments earlier, whose
	// TIME_WAIT on the real server answers the SYN as a stale duplicate:
	// the connect stalls until the SYN is retransmitted a second later.
	// kube-proxy takes fully-random against parallel connections racing
	// for one port; docs/load-balancing.md has the trade and the test
	// (e2e TestLBSched/churn).
	b.rule(chainMasquerade, &expr.Masq{})
}

func (b *builder) idOf(name string) uint32 {
	return b.rs.Set(name).ID
}

func serviceKeyType(v6 bool) nftables.SetDatatype {
	addr := nftables.TypeIPAddr
	if v6 {
		addr = nftables.TypeIP6Addr
	}
	return nftables.MustConcatSetType(addr, nftables.TypeInetProto, nftables.TypeInetService)
}

// serviceKey is the key of v in a services or no-backends map: address,
// protocol and port, each padded to 4 bytes as concatenations are.
func serviceKey(k key) []byte {
	out := append([]byte(nil), k.addr.AsSlice()...)
	out = append(out, byte(k.proto), 0, 0, 0)
	return append(out, byte(k.port>>8), byte(k.port), 0, 0)
}

// serviceLookup is "meta nfproto ipvX ipX daddr . meta l4proto . th dport
// vmap @name". In 32-bit registers (8 + n), the address fills the first one
// or four, the protocol and port follow.
func serviceLookup(v6 bool, name string, id uint32) []expr.Any {
	off, n := uint32(16), addrLen(v6)
	if v6 {
		off = 24
	}
	r := uint32(unix.NFT_REG32_00) + n/4
	return append(nfproto(v6),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r},
		&expr.Payload{DestRegister: r + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: name, SetID: id},
	)
}

func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func jump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
func goTo(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain} }
func vsChain(v VirtualServer) string  { return "vs/" + v.Name }
func counterName(v VirtualServer, be Backend) string {
	return counterPrefix + v.Name + "/" + endpoint(be)
}
func affinitySet(v VirtualServer, be Backend) string {
	return affinityPrefix + v.Name + "/" + endpoint(be)
}
func backendChain(v VirtualServer, be Backend) string {
	return "vs/" + v.Name + "/" + endpoint(be)
}

// endpoint is addr/port with an IPv6 address's colons as dots: nft names
// allow [A-Za-z0-9_./-].
func endpoint(be Backend) string {
	return strings.ReplaceAll(be.Addr.String(), ":", ".") + "/" + strconv.Itoa(int(be.Port))
}

// saddr loads the packet's source address into register 1. The family
// check before it always holds where vipd's rules use it; it is there so
// that nft lists "ip saddr" rather than a raw "@nh,96,32" in an inet table.
func saddr(v6 bool) []expr.Any {
	off, n := uint32(12), uint32(4)
	if v6 {
		off, n = 8, 16
	}
	return append(nfproto(v6), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
}

// nfproto is "meta nfproto ipv4" (or ipv6).
func nfproto(v6 bool) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if v6 {
		proto = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func addrLen(v6 bool) uint32 {
	if v6 {
		return 16
	}
	return 4
}

func (b *builder) virtualServer(v VirtualServer) {
	v6 := v.Addr.Is6()
	for _, be := range slices.Concat(v.Backends, v.Down) {
		b.rs.Counters = append(b.rs.Counters, Counter{Name: counterName(v, be), VirtualServer: v.Name, Addr: be.Addr, Port: be.Port})
	}
	order := schedule(v.Backends)
	if len(order) == 0 {
		b.addElement(mapNoBackends4, mapNoBackends6, v6, nftables.SetElement{
			Key:         serviceKey(v.key()),
			VerdictData: goTo(chainReject),
			Comment:     v.Name,
		})
		return
	}
	b.chain(vsChain(v))
	// Backends of weight 0 get no chain: they are out of the schedule, and
	// their clients' affinity ends with it.
	var active []Backend
	for _, be := range v.Backends {
		if be.Weight > 0 {
			active = append(active, be)
			b.chain(backendChain(v, be))
		}
	}
	affinity := make(map[Backend]*nftables.Set)
	if v.Persistence > 0 {
		for _, be := range active {
			affinity[be] = b.set(&nftables.Set{
				Name:       affinitySet(v, be),
				KeyType:    addrType(v6),
				HasTimeout: true,
				Timeout:    v.Persistence,
				Dynamic:    true,
				Size:       affinitySize,
			}, nil)
		}
		for _, be := range active {
			s := affinity[be]
			b.rule(vsChain(v), append(saddr(v6),
				&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
				goTo(backendChain(v, be)),
			)...)
		}
	}

	elems := make([]nftables.SetElement, len(order))
	for i, bi := range order {
		elems[i] = nftables.SetElement{
			Key:         binaryutil.BigEndian.PutUint32(uint32(i)),
			VerdictData: goTo(backendChain(v, v.Backends[bi])),
		}
	}
	m := b.set(&nftables.Set{
		Anonymous: true,
		Constant:  true,
		IsMap:     true,
		KeyType:   nftables.TypeInteger,
		DataType:  nftables.TypeVerdict,
	}, elems)
	lookup := &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID}
	n := uint32(len(order))
	// numgen and jhash write host-order numbers; google/nftables marks an
	// anonymous map's keys big-endian, so nft would list 1 as 16777216.
	// The keys are big-endian and the number converted to match.
	hton := &expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4}
	switch v.Scheduler {
	case RoundRobin:
		b.rule(vsChain(v), &expr.Numgen{Register: 1, Modulus: n, Type: unix.NFT_NG_INCREMENTAL}, hton, lookup)
	case Random:
		b.rule(vsChain(v), &expr.Numgen{Register: 1, Modulus: n, Type: unix.NFT_NG_RANDOM}, hton, lookup)
	case SourceHash:
		b.rule(vsChain(v), append(saddr(v6),
			&expr.Hash{SourceRegister: 1, DestRegister: 1, Length: addrLen(v6), Modulus: n, Seed: hashSeed, Type: expr.HashTypeJenkins},
			hton, lookup)...)
	default:
		panic(fmt.Sprintf("lb: scheduler %v", v.Scheduler))
	}

	for _, be := range active {
		var exprs []expr.Any
		if s := affinity[be]; s != nil {
			exprs = append(saddr(v6),
				&expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: unix.NFT_DYNSET_OP_UPDATE})
		}
		if !be.Local {
			exprs = append(exprs,
				&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(^b.mark), Xor: binaryutil.NativeEndian.PutUint32(b.mark)},
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			)
		}
		exprs = append(exprs, &expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: counterName(v, be)})
		exprs = append(exprs, dnat(be)...)
		b.rule(backendChain(v, be), exprs...)
	}

	b.addElement(mapServices4, mapServices6, v6, nftables.SetElement{
		Key:         serviceKey(v.key()),
		VerdictData: goTo(vsChain(v)),
		Comment:     v.Name,
	})
}

func addrType(v6 bool) nftables.SetDatatype {
	if v6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

func (b *builder) addElement(m4, m6 string, v6 bool, e nftables.SetElement) {
	name := m4
	if v6 {
		name = m6
	}
	s := b.rs.Set(name)
	s.Elements = append(s.Elements, e)
}

// dnat is "dnat ipX to addr:port".
func dnat(be Backend) []expr.Any {
	fam := uint32(unix.NFPROTO_IPV4)
	if be.Addr.Is6() {
		fam = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: be.Addr.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(be.Port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// schedule returns the indexes into bs of the scheduler's map (Schedule
// over their weights). It is for validated virtual servers (total <=
// MaxWeight).
func schedule(bs []Backend) []int { return Schedule(weightsOf(bs)) }
