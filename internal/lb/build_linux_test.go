package lb

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func build(t *testing.T, vss ...VirtualServer) *Ruleset {
	t.Helper()
	rs, err := Build(vss, Options{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return rs
}

// schedRule is the virtual server chain's last rule, the scheduler's.
func schedRule(t *testing.T, rs *Ruleset, v VirtualServer) *nftables.Rule {
	t.Helper()
	rules := rs.RulesOf(vsChain(v))
	if len(rules) == 0 {
		t.Fatalf("chain %s has no rules", vsChain(v))
	}
	return rules[len(rules)-1]
}

// targets returns the chains the scheduler's anonymous map sends key 0,
// 1, ... to, checking that the keys are exactly 0..n-1.
func targets(t *testing.T, rs *Ruleset, r *nftables.Rule) []string {
	t.Helper()
	l, ok := r.Exprs[len(r.Exprs)-1].(*expr.Lookup)
	if !ok || !l.IsDestRegSet {
		t.Fatalf("scheduler rule ends in %#v, want a vmap lookup", r.Exprs[len(r.Exprs)-1])
	}
	s := rs.SetByID(l.SetID)
	if s == nil || !s.Anonymous || !s.Constant || !s.IsMap || s.Name != l.SetName {
		t.Fatalf("lookup refers to %+v", s)
	}
	out := make([]string, len(s.Elements))
	for i, e := range s.Elements {
		if k := binary.BigEndian.Uint32(e.Key); k != uint32(i) {
			t.Fatalf("element %d has key %d", i, k)
		}
		if e.VerdictData == nil || e.VerdictData.Kind != expr.VerdictGoto {
			t.Fatalf("element %d: %+v, want a goto", i, e.VerdictData)
		}
		out[i] = e.VerdictData.Chain
	}
	return out
}

var hton = &expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4}

func TestBuildSchedulers(t *testing.T) {
	v := vs4(be("192.0.2.11", 1), be("192.0.2.12", 1), be("192.0.2.13", 1))
	chains := []string{"vs/web/192.0.2.11/8080", "vs/web/192.0.2.12/8080", "vs/web/192.0.2.13/8080"}
	ip4 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
	}
	tests := []struct {
		sched Scheduler
		want  []expr.Any // before the lookup
	}{
		{RoundRobin, []expr.Any{&expr.Numgen{Register: 1, Modulus: 3, Type: unix.NFT_NG_INCREMENTAL}, hton}},
		{Random, []expr.Any{&expr.Numgen{Register: 1, Modulus: 3, Type: unix.NFT_NG_RANDOM}, hton}},
		{SourceHash, append(slices.Clone(ip4),
			&expr.Hash{SourceRegister: 1, DestRegister: 1, Length: 4, Modulus: 3, Seed: hashSeed, Type: expr.HashTypeJenkins}, hton)},
	}
	for _, tt := range tests {
		t.Run(tt.sched.String(), func(t *testing.T) {
			v := v
			v.Scheduler = tt.sched
			rs := build(t, v)
			if n := len(rs.RulesOf(vsChain(v))); n != 1 {
				t.Errorf("chain %s has %d rules, want 1 (no persistence)", vsChain(v), n)
			}
			r := schedRule(t, rs, v)
			if diff := cmp.Diff(tt.want, r.Exprs[:len(r.Exprs)-1]); diff != "" {
				t.Errorf("scheduler rule (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(chains, targets(t, rs, r)); diff != "" {
				t.Errorf("map (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildWeights(t *testing.T) {
	tests := []struct {
		weights []int
		want    []int // backend indexes of the map
	}{
		{[]int{1, 1, 1}, []int{0, 1, 2}},
		{[]int{2, 1}, []int{0, 1, 0}},
		{[]int{300, 100, 0}, []int{0, 0, 1, 0}}, // reduced by 100; weight 0 is out
		{[]int{5, 5}, []int{0, 1}},
		{[]int{1, 3}, []int{1, 0, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			var bs []Backend
			for i, w := range tt.weights {
				bs = append(bs, be(fmt.Sprintf("192.0.2.%d", 11+i), w))
			}
			v := vs4(bs...)
			rs := build(t, v)
			var want []string
			for _, i := range tt.want {
				want = append(want, backendChain(v, bs[i]))
			}
			if diff := cmp.Diff(want, targets(t, rs, schedRule(t, rs, v))); diff != "" {
				t.Errorf("map (-want +got):\n%s", diff)
			}
			for _, b := range bs {
				if got := rs.Chain(backendChain(v, b)) != nil; got != (b.Weight > 0) {
					t.Errorf("chain for weight %d: %v", b.Weight, got)
				}
			}
		})
	}
}

func TestBuildBackends(t *testing.T) {
	remote := be("192.0.2.11", 1)
	local := be("192.0.2.1", 1)
	local.Local = true
	v := vs4(remote, local)
	rs := build(t, v)
	// Every new connection is counted, then DNATed.
	dnat := func(a string) []expr.Any {
		return []expr.Any{
			&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: "conns/web/" + a + "/8080"},
			&expr.Immediate{Register: 1, Data: netip.MustParseAddr(a).AsSlice()},
			&expr.Immediate{Register: 2, Data: []byte{0x1f, 0x90}},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}
	}
	mark := binaryutil.NativeEndian.PutUint32(DefaultMark)
	want := map[string][]expr.Any{
		backendChain(v, remote): append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^uint32(DefaultMark)), Xor: mark},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}, dnat("192.0.2.11")...),
		// A local real server is not masqueraded: it sees the client.
		backendChain(v, local): dnat("192.0.2.1"),
	}
	for chain, w := range want {
		rules := rs.RulesOf(chain)
		if len(rules) != 1 {
			t.Fatalf("chain %s: %d rules, want 1", chain, len(rules))
		}
		if diff := cmp.Diff(w, rules[0].Exprs); diff != "" {
			t.Errorf("chain %s (-want +got):\n%s", chain, diff)
		}
	}
	// The virtual server is in services4, and nowhere else.
	wantKey := []byte{192, 0, 2, 50, unix.IPPROTO_TCP, 0, 0, 0, 0, 80, 0, 0}
	checkElements(t, rs, mapServices4, map[string]string{string(wantKey): "vs/web"})
	checkElements(t, rs, mapNoBackends4, nil)
	checkElements(t, rs, mapServices6, nil)
}

// checkElements compares a verdict map's elements, key to goto chain.
func checkElements(t *testing.T, rs *Ruleset, name string, want map[string]string) {
	t.Helper()
	got := make(map[string]string)
	for _, e := range rs.Set(name).Elements {
		got[string(e.Key)] = e.VerdictData.Chain
	}
	if want == nil {
		want = map[string]string{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("map %s (-want +got):\n%s", name, diff)
	}
}

func TestBuildNoBackends(t *testing.T) {
	v := vs4() // nothing healthy
	w := vs4(be("192.0.2.11", 0))
	w.Name, w.Port = "quiesced", 81
	rs := build(t, v, w)
	if rs.Chain(vsChain(v)) != nil || rs.Chain(vsChain(w)) != nil {
		t.Error("a virtual server without real servers has a chain")
	}
	checkElements(t, rs, mapServices4, nil)
	checkElements(t, rs, mapNoBackends4, map[string]string{
		string([]byte{192, 0, 2, 50, 6, 0, 0, 0, 0, 80, 0, 0}): chainReject,
		string([]byte{192, 0, 2, 50, 6, 0, 0, 0, 0, 81, 0, 0}): chainReject,
	})
	// TCP gets a reset, anything else ICMP port unreachable.
	want := [][]expr.Any{
		{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
		},
		{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}},
	}
	var got [][]expr.Any
	for _, r := range rs.RulesOf(chainReject) {
		got = append(got, r.Exprs)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reject chain (-want +got):\n%s", diff)
	}
}

func TestBuildCounters(t *testing.T) {
	v := vs4(be("192.0.2.11", 1), be("192.0.2.12", 0))
	v.Down = []Backend{be("192.0.2.13", 1)}
	w := VirtualServer{Name: "web6", Addr: netip.MustParseAddr("2001:db8::50"), Port: 443, Protocol: TCP,
		Down: []Backend{{Addr: netip.MustParseAddr("2001:db8::11"), Port: 8443}}}
	rs := build(t, v, w)
	// Every real server has one, in the schedule (weight > 0), out of it
	// (weight 0) or down, and a virtual server without healthy ones too.
	want := []Counter{
		{Name: "conns/web/192.0.2.11/8080", VirtualServer: "web", Addr: netip.MustParseAddr("192.0.2.11"), Port: 8080},
		{Name: "conns/web/192.0.2.12/8080", VirtualServer: "web", Addr: netip.MustParseAddr("192.0.2.12"), Port: 8080},
		{Name: "conns/web/192.0.2.13/8080", VirtualServer: "web", Addr: netip.MustParseAddr("192.0.2.13"), Port: 8080},
		{Name: "conns/web6/2001.db8..11/8443", VirtualServer: "web6", Addr: netip.MustParseAddr("2001:db8::11"), Port: 8443},
	}
	if diff := cmp.Diff(want, rs.Counters, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	// Only the scheduled real server's chain refers to one, and every
	// reference resolves.
	refs := 0
	for _, r := range rs.Rules {
		for _, e := range r.Exprs {
			if o, ok := e.(*expr.Objref); ok {
				refs++
				if r.Chain.Name != "vs/web/192.0.2.11/8080" || o.Name != "conns/web/192.0.2.11/8080" || rs.Counter(o.Name) == nil {
					t.Errorf("chain %s counts into %q", r.Chain.Name, o.Name)
				}
			}
		}
	}
	if refs != 1 {
		t.Errorf("%d counter references, want 1", refs)
	}
}

func TestBuildPersistence(t *testing.T) {
	v := vs4(be("192.0.2.11", 1), be("192.0.2.12", 1))
	v.Persistence = 90 * time.Second
	rs := build(t, v)
	rules := rs.RulesOf(vsChain(v))
	if len(rules) != 3 {
		t.Fatalf("chain %s: %d rules, want an affinity rule per real server and the scheduler", vsChain(v), len(rules))
	}
	for i, b := range v.Backends {
		name := affinitySet(v, b)
		s := rs.Set(name)
		if s == nil {
			t.Fatalf("no set %s", name)
		}
		if !s.HasTimeout || s.Timeout != 90*time.Second || !s.Dynamic || s.KeyType != nftables.TypeIPAddr || s.IsMap {
			t.Errorf("set %s: %+v", name, s.Set)
		}
		want := append(saddr(false),
			&expr.Lookup{SourceRegister: 1, SetName: name, SetID: s.ID},
			goTo(backendChain(v, b)))
		if diff := cmp.Diff(want, rules[i].Exprs); diff != "" {
			t.Errorf("affinity rule %d (-want +got):\n%s", i, diff)
		}
		be := rs.RulesOf(backendChain(v, b))[0].Exprs
		wantUpdate := append(saddr(false), &expr.Dynset{SrcRegKey: 1, SetName: name, SetID: s.ID, Operation: unix.NFT_DYNSET_OP_UPDATE})
		if diff := cmp.Diff(wantUpdate, be[:len(wantUpdate)]); diff != "" {
			t.Errorf("real server chain %d starts (-want +got):\n%s", i, diff)
		}
	}
	// Without persistence there are no affinity sets.
	v.Persistence = 0
	for _, s := range build(t, v).Sets {
		if !s.Anonymous && len(s.Name) > len(affinityPrefix) && s.Name[:len(affinityPrefix)] == affinityPrefix {
			t.Errorf("set %s without persistence", s.Name)
		}
	}
}

func TestBuildIPv6(t *testing.T) {
	v := VirtualServer{Name: "web6", Addr: netip.MustParseAddr("2001:db8::50"), Port: 443, Protocol: UDP,
		Scheduler: SourceHash, Persistence: time.Minute,
		Backends: []Backend{{Addr: netip.MustParseAddr("2001:db8::11"), Port: 8443, Weight: 1}}}
	rs := build(t, v)
	key := append(netip.MustParseAddr("2001:db8::50").AsSlice(), unix.IPPROTO_UDP, 0, 0, 0, 0x01, 0xbb, 0, 0)
	checkElements(t, rs, mapServices6, map[string]string{string(key): "vs/web6"})
	checkElements(t, rs, mapServices4, nil)
	if c := backendChain(v, v.Backends[0]); c != "vs/web6/2001.db8..11/8443" {
		t.Errorf("chain name %s", c)
	}
	r := schedRule(t, rs, v)
	wantHash := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Hash{SourceRegister: 1, DestRegister: 1, Length: 16, Modulus: 1, Seed: hashSeed, Type: expr.HashTypeJenkins},
		hton,
	}
	if diff := cmp.Diff(wantHash, r.Exprs[:len(r.Exprs)-1]); diff != "" {
		t.Errorf("scheduler rule (-want +got):\n%s", diff)
	}
	if s := rs.Set(affinitySet(v, v.Backends[0])); s == nil || s.KeyType != nftables.TypeIP6Addr {
		t.Errorf("affinity set %+v, want ipv6_addr keys", s)
	}
	last := rs.RulesOf(backendChain(v, v.Backends[0]))[0].Exprs
	if nat := last[len(last)-1].(*expr.NAT); nat.Family != unix.NFPROTO_IPV6 {
		t.Errorf("dnat family %d", nat.Family)
	}
	// services: the IPv6 lookup puts l4proto after the 16-byte address.
	want6 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_04},
		&expr.Payload{DestRegister: unix.NFT_REG32_05, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, IsDestRegSet: true, SetName: mapServices6, SetID: rs.Set(mapServices6).ID},
	}
	if diff := cmp.Diff(want6, rs.RulesOf(chainServices)[1].Exprs); diff != "" {
		t.Errorf("services rule for IPv6 (-want +got):\n%s", diff)
	}
}

func TestBuildBase(t *testing.T) {
	rs := build(t)
	if rs.Table.Name != "vipd" || rs.Table.Family != nftables.TableFamilyINet {
		t.Errorf("table %+v", rs.Table)
	}
	type hook struct {
		Type nftables.ChainType
		Hook nftables.ChainHook
		Prio nftables.ChainPriority
	}
	want := map[string]hook{
		"nat-prerouting":  {nftables.ChainTypeNAT, *nftables.ChainHookPrerouting, -100},
		"nat-output":      {nftables.ChainTypeNAT, *nftables.ChainHookOutput, -100},
		"nat-postrouting": {nftables.ChainTypeNAT, *nftables.ChainHookPostrouting, 100},
		"filter-input":    {nftables.ChainTypeFilter, *nftables.ChainHookInput, -110},
		"filter-forward":  {nftables.ChainTypeFilter, *nftables.ChainHookForward, -110},
		"filter-output":   {nftables.ChainTypeFilter, *nftables.ChainHookOutput, -110},
	}
	got := make(map[string]hook)
	for _, c := range rs.Chains {
		if c.Hooknum != nil {
			if *c.Policy != nftables.ChainPolicyAccept {
				t.Errorf("chain %s: policy %v", c.Name, *c.Policy)
			}
			got[c.Name] = hook{c.Type, *c.Hooknum, *c.Priority}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("base chains (-want +got):\n%s", diff)
	}
	// Every set has its own ID, and every rule's set reference resolves.
	ids := make(map[uint32]bool)
	for _, s := range rs.Sets {
		if s.ID == 0 || ids[s.ID] {
			t.Errorf("set %s: ID %d", s.Name, s.ID)
		}
		ids[s.ID] = true
	}
	v := vs4(be("192.0.2.11", 1))
	v.Persistence = time.Minute
	full := build(t, v)
	for _, r := range full.Rules {
		for _, e := range r.Exprs {
			var name string
			var id uint32
			switch e := e.(type) {
			case *expr.Lookup:
				name, id = e.SetName, e.SetID
			case *expr.Dynset:
				name, id = e.SetName, e.SetID
			default:
				continue
			}
			if s := full.SetByID(id); s == nil || s.Name != name {
				t.Errorf("chain %s refers to set %s (ID %d): %+v", r.Chain.Name, name, id, s)
			}
		}
	}
	// The masquerade chain honours Options.Mark.
	rs2, err := Build(nil, Options{Mark: 0x100})
	if err != nil {
		t.Fatal(err)
	}
	r := rs2.RulesOf(chainMasquerade)
	if len(r) != 3 {
		t.Fatalf("masquerade chain: %d rules", len(r))
	}
	if m := r[0].Exprs[1].(*expr.Bitwise).Mask; binaryutil.NativeEndian.Uint32(m) != 0x100 {
		t.Errorf("masquerade checks mark %x", m)
	}
	// Not fully-random: see base.
	if diff := cmp.Diff([]expr.Any{&expr.Masq{}}, r[2].Exprs); diff != "" {
		t.Errorf("last masquerade rule (-want +got):\n%s", diff)
	}
}

func TestBuildInvalid(t *testing.T) {
	if _, err := Build([]VirtualServer{vs4(), vs4()}, Options{}); err == nil {
		t.Error("Build of two virtual servers with one name did not fail")
	}
}

// TestApplyBatch checks, over a fake netlink conn, that Apply sends one
// batch that adds, deletes and adds the table again, then its contents.
func TestApplyBatch(t *testing.T) {
	var sends [][]uint16 // message types per send, subsystem stripped
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		var types []uint16
		for _, m := range req {
			types = append(types, uint16(m.Header.Type)&0xff)
		}
		sends = append(sends, types)
		if len(req) == 1 && uint16(req[0].Header.Type)&0xff == unix.NFT_MSG_GETSET {
			return nil, unix.ENOENT
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	l := &Linux{dial: func() (*nftables.Conn, error) { return c, nil }}
	v := vs4(be("192.0.2.11", 1), be("192.0.2.12", 1))
	v.Persistence = time.Minute
	rs := build(t, v)
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	var batch []uint16
	for _, s := range sends {
		if len(s) > 1 {
			if batch != nil {
				t.Fatalf("more than one batch: %v", sends)
			}
			batch = s
		}
	}
	const begin, end = unix.NFNL_MSG_BATCH_BEGIN & 0xff, unix.NFNL_MSG_BATCH_END & 0xff
	want := []uint16{begin, unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWTABLE}
	for range rs.Chains {
		want = append(want, unix.NFT_MSG_NEWCHAIN)
	}
	for _, s := range rs.Sets {
		want = append(want, unix.NFT_MSG_NEWSET)
		if len(s.Elements) > 0 {
			want = append(want, unix.NFT_MSG_NEWSETELEM)
		}
	}
	for range rs.Counters {
		want = append(want, unix.NFT_MSG_NEWOBJ)
	}
	for range rs.Rules {
		want = append(want, unix.NFT_MSG_NEWRULE)
	}
	want = append(want, end)
	if diff := cmp.Diff(want, batch); diff != "" {
		t.Errorf("batch message types (-want +got):\n%s", diff)
	}
}
