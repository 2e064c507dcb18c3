package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The addresses every lab uses (RFC 5737 and RFC 3849 documentation ranges).
var (
	// VIP is the virtual address the tests, the demo and the benchmark fail over.
	VIP = netip.MustParsePrefix("192.0.2.50/24")
	// ClientAddr is the client's address on the lab's bridge.
	ClientAddr = netip.MustParsePrefix("192.0.2.100/24")
	// VIP6 is the IPv6 virtual address, for labs with Config.IPv6.
	VIP6 = netip.MustParsePrefix("2001:db8::50/64")
	// ClientAddr6 is the client's IPv6 address, in labs with Config.IPv6.
	ClientAddr6 = netip.MustParsePrefix("2001:db8::100/64")
)

// NodeAddr returns the address of router node i (1-based): 192.0.2.10+i/24.
func NodeAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 24)
}

// NodeAddr6 returns the IPv6 address of router node i (1-based), spelled
// like its IPv4 address: 2001:db8::11/64 for 192.0.2.11.
func NodeAddr6(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("2001:db8::%d/64", 10+i))
}

// MaxSegments is how many Ethernet segments a lab can have (Config.Segments):
// one per documentation range SegmentAddr draws from.
const MaxSegments = 4

// SegmentAddr returns the address of router node i (1-based) on segment k
// (0-based; see Config.Segments), on its interface ethK: NodeAddr(i) on
// segment 0, then .10+i/24 in 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737)
// and 198.19.0.0/24 (RFC 2544's benchmarking range) on segments 1, 2 and 3.
func SegmentAddr(k, i int) netip.Prefix {
	nets := [MaxSegments][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}, {198, 19, 0}}
	n := nets[k]
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{n[0], n[1], n[2], byte(10 + i)}), 24)
}

// Instance describes one virtual router the same way for vipd and for
// keepalived, so both daemons can be run against the same scenario.
type Instance struct {
	Name             string // default "api"
	Interface        string // default "eth0"
	VRID             int
	Priority         int
	AdvertInterval   time.Duration
	Preempt          bool
	PreemptDelay     time.Duration
	VIPs             []netip.Prefix
	AnnounceCount    int           // gratuitous ARP rounds on becoming master; default 5
	AnnounceInterval time.Duration // between rounds; default 200ms

	// Version is the VRRP version, 2 or 3; 0 means 3. Version 2 needs
	// whole seconds in AdvertInterval.
	Version int
	// AuthPass is VRRPv2's simple password (keepalived's auth_type PASS).
	AuthPass string
	// UnicastPeers, when not empty, replace multicast: adverts go to each.
	UnicastPeers []netip.Addr
	// UnicastSource is the source of unicast adverts; zero means the
	// daemon's default.
	UnicastSource netip.Addr
	// V3ChecksumAsV2 has vipd compute VRRPv3 IPv4 checksums without the
	// pseudo-header. keepalived has no such option: KeepalivedConfig
	// ignores it.
	V3ChecksumAsV2 bool
	// AuthHMAC, when not nil, is vipd's auth_hmac block: adverts signed
	// and verified with keepalived 2.4's HMAC trailer. keepalived 2.2,
	// the one the lab runs, has no such thing: KeepalivedConfig ignores
	// it.
	AuthHMAC *AuthHMAC

	// AnnounceRefresh is announce.refresh: while Master, vipd announces
	// the VIPs again every AnnounceRefresh after its last announcement; 0
	// leaves it out (off).
	AnnounceRefresh time.Duration
	// VIPsAsSource is vips_as_source: the VIPs are added exactly as
	// written, and the kernel may pick them as the host's source address.
	VIPsAsSource bool
	// Routes and Rules are the instance's virtual routes and routing
	// policy rules, in the kernel while it is Master.
	Routes []Route
	Rules  []Rule
	// VirtualMAC is vipd's virtual_mac and keepalived's use_vmac: the VIPs
	// on a macvlan carrying the virtual router MAC.
	VirtualMAC bool
}

// Route is one entry of an instance's routes. Zero fields are left out of
// the configuration, so that vipd's defaults apply.
type Route struct {
	To     netip.Prefix
	Via    netip.Addr
	Dev    string
	Table  int
	Metric int
	Src    netip.Addr
	// Type is unicast, blackhole, unreachable or prohibit; "" leaves it
	// out (unicast).
	Type string
}

// Rule is one entry of an instance's rules; zero fields are left out.
type Rule struct {
	From, To netip.Prefix
	Table    int
	Priority int
}

// AuthHMAC is an instance's auth_hmac block. Zero fields are left out of
// the configuration, so that vipd's defaults apply.
type AuthHMAC struct {
	Keys []AuthKey
	// ActiveKey is the key that signs (active_key); 0 leaves it out.
	ActiveKey int
	// Mode is receive_only, permissive or enforce; "" leaves it out.
	Mode string
	// AntiReplay is time or monotonic; "" leaves it out.
	AntiReplay string
	// TimeWindow is time_window; 0 leaves it out.
	TimeWindow time.Duration
}

// AuthKey is one key of an auth_hmac block: its id and either the file
// holding its secret (see WriteSecret) or the secret inline ("hex:…").
type AuthKey struct {
	ID         int
	SecretFile string
	Secret     string
}

// IPv6 reports whether the instance's VIPs are IPv6 addresses.
func (in Instance) IPv6() bool { return len(in.VIPs) > 0 && in.VIPs[0].Addr().Is6() }

func (in Instance) withDefaults() Instance {
	if in.Name == "" {
		in.Name = "api"
	}
	if in.Interface == "" {
		in.Interface = "eth0"
	}
	if in.AnnounceCount == 0 {
		in.AnnounceCount = 5
	}
	if in.AnnounceInterval == 0 {
		in.AnnounceInterval = 200 * time.Millisecond
	}
	return in
}

// VipdConfig renders a vipd YAML configuration with the given control socket
// path and instances.
func VipdConfig(controlSocket string, instances ...Instance) string {
	return VipdFile{ControlSocket: controlSocket, Instances: instances}.YAML()
}

// VipdFile is a whole vipd configuration file.
type VipdFile struct {
	ControlSocket string
	// MetricsListen is metrics.listen (host:port in the node's namespace,
	// e.g. 127.0.0.1:9405), or empty for no metrics listener.
	MetricsListen string
	Instances     []Instance
}

// YAML renders f.
func (f VipdFile) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "control_socket: %s\n", strconv.Quote(f.ControlSocket))
	if f.MetricsListen != "" {
		fmt.Fprintf(&b, "metrics: {listen: %s}\n", strconv.Quote(f.MetricsListen))
	}
	b.WriteString("instances:\n")
	for _, in := range f.Instances {
		in = in.withDefaults()
		vips := make([]string, len(in.VIPs))
		for i, p := range in.VIPs {
			vips[i] = strconv.Quote(p.String())
		}
		fmt.Fprintf(&b, "  - name: %s\n", in.Name)
		fmt.Fprintf(&b, "    interface: %s\n", in.Interface)
		fmt.Fprintf(&b, "    vrid: %d\n", in.VRID)
		fmt.Fprintf(&b, "    priority: %d\n", in.Priority)
		fmt.Fprintf(&b, "    advert_interval: %s\n", in.AdvertInterval)
		fmt.Fprintf(&b, "    preempt: %t\n", in.Preempt)
		fmt.Fprintf(&b, "    preempt_delay: %s\n", in.PreemptDelay)
		fmt.Fprintf(&b, "    vips: [%s]\n", strings.Join(vips, ", "))
		if in.AnnounceRefresh != 0 {
			fmt.Fprintf(&b, "    announce: {count: %d, interval: %s, refresh: %s}\n", in.AnnounceCount, in.AnnounceInterval, in.AnnounceRefresh)
		} else {
			fmt.Fprintf(&b, "    announce: {count: %d, interval: %s}\n", in.AnnounceCount, in.AnnounceInterval)
		}
		if in.Version != 0 {
			fmt.Fprintf(&b, "    version: %d\n", in.Version)
		}
		if in.AuthPass != "" {
			fmt.Fprintf(&b, "    auth_pass: %s\n", strconv.Quote(in.AuthPass))
		}
		if len(in.UnicastPeers) > 0 {
			fmt.Fprintf(&b, "    unicast_peers: [%s]\n", quoteAddrs(in.UnicastPeers, ", "))
		}
		if in.UnicastSource.IsValid() {
			fmt.Fprintf(&b, "    unicast_source: %s\n", strconv.Quote(in.UnicastSource.String()))
		}
		if in.V3ChecksumAsV2 {
			b.WriteString("    v3_checksum_as_v2: true\n")
		}
		if in.AuthHMAC != nil {
			in.AuthHMAC.write(&b)
		}
		if in.VIPsAsSource {
			b.WriteString("    vips_as_source: true\n")
		}
		if in.VirtualMAC {
			b.WriteString("    virtual_mac: true\n")
		}
		if len(in.Routes) > 0 {
			b.WriteString("    routes:\n")
			for _, r := range in.Routes {
				fmt.Fprintf(&b, "      - %s\n", r.yaml())
			}
		}
		if len(in.Rules) > 0 {
			b.WriteString("    rules:\n")
			for _, r := range in.Rules {
				fmt.Fprintf(&b, "      - %s\n", r.yaml())
			}
		}
	}
	return b.String()
}

// yaml renders r as a flow mapping of its non-zero fields.
func (r Route) yaml() string {
	var f []string
	if r.To.IsValid() {
		f = append(f, "to: "+strconv.Quote(r.To.String()))
	}
	if r.Via.IsValid() {
		f = append(f, "via: "+strconv.Quote(r.Via.String()))
	}
	if r.Dev != "" {
		f = append(f, "dev: "+strconv.Quote(r.Dev))
	}
	if r.Table != 0 {
		f = append(f, fmt.Sprintf("table: %d", r.Table))
	}
	if r.Metric != 0 {
		f = append(f, fmt.Sprintf("metric: %d", r.Metric))
	}
	if r.Src.IsValid() {
		f = append(f, "src: "+strconv.Quote(r.Src.String()))
	}
	if r.Type != "" {
		f = append(f, "type: "+r.Type)
	}
	return "{" + strings.Join(f, ", ") + "}"
}

// yaml renders r as a flow mapping of its non-zero fields.
func (r Rule) yaml() string {
	var f []string
	if r.From.IsValid() {
		f = append(f, "from: "+strconv.Quote(r.From.String()))
	}
	if r.To.IsValid() {
		f = append(f, "to: "+strconv.Quote(r.To.String()))
	}
	if r.Table != 0 {
		f = append(f, fmt.Sprintf("table: %d", r.Table))
	}
	if r.Priority != 0 {
		f = append(f, fmt.Sprintf("priority: %d", r.Priority))
	}
	return "{" + strings.Join(f, ", ") + "}"
}

// write renders a as an instance's auth_hmac mapping.
func (a *AuthHMAC) write(b *strings.Builder) {
	b.WriteString("    auth_hmac:\n      keys:\n")
	for _, k := range a.Keys {
		switch {
		case k.SecretFile != "":
			fmt.Fprintf(b, "        - {id: %d, secret_file: %s}\n", k.ID, strconv.Quote(k.SecretFile))
		default:
			fmt.Fprintf(b, "        - {id: %d, secret: %s}\n", k.ID, strconv.Quote(k.Secret))
		}
	}
	if a.ActiveKey != 0 {
		fmt.Fprintf(b, "      active_key: %d\n", a.ActiveKey)
	}
	if a.Mode != "" {
		fmt.Fprintf(b, "      mode: %s\n", a.Mode)
	}
	if a.AntiReplay != "" {
		fmt.Fprintf(b, "      anti_replay: %s\n", a.AntiReplay)
	}
	if a.TimeWindow != 0 {
		fmt.Fprintf(b, "      time_window: %s\n", a.TimeWindow)
	}
}

func quoteAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = strconv.Quote(a.String())
	}
	return strings.Join(s, sep)
}

// KeepalivedConfig renders a keepalived configuration equivalent to the
// instances: VRRPv3 unless an instance says version 2, the same interval
// (keepalived takes seconds with fractions, down to 0.01), priority,
// preemption, virtual addresses (IPv4 or IPv6), password, unicast peers and
// source. AuthHMAC is left out: keepalived 2.2 neither signs nor verifies.
// So are AnnounceRefresh, VIPsAsSource, Routes and Rules.
func KeepalivedConfig(routerID string, instances ...Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n  vrrp_version 3\n", routerID)
	if len(instances) > 0 {
		// keepalived spaces gratuitous ARPs per interface, not per instance:
		// the first instance's announce interval stands for all.
		fmt.Fprintf(&b, "  vrrp_garp_interval %s\n", seconds(instances[0].withDefaults().AnnounceInterval))
	}
	b.WriteString("}\n")
	for _, in := range instances {
		in = in.withDefaults()
		fmt.Fprintf(&b, "vrrp_instance %s {\n", in.Name)
		// nopreempt needs the initial state BACKUP; every node starts as a
		// backup in vipd too (RFC 9568 §6.4.1 unless priority is 255).
		b.WriteString("  state BACKUP\n")
		fmt.Fprintf(&b, "  interface %s\n", in.Interface)
		fmt.Fprintf(&b, "  virtual_router_id %d\n", in.VRID)
		fmt.Fprintf(&b, "  priority %d\n", in.Priority)
		fmt.Fprintf(&b, "  advert_int %s\n", seconds(in.AdvertInterval))
		if in.Version == 2 {
			b.WriteString("  version 2\n")
		}
		if in.AuthPass != "" {
			fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", in.AuthPass)
		}
		if in.UnicastSource.IsValid() {
			fmt.Fprintf(&b, "  unicast_src_ip %s\n", in.UnicastSource)
		}
		if len(in.UnicastPeers) > 0 {
			b.WriteString("  unicast_peer {\n")
			for _, p := range in.UnicastPeers {
				fmt.Fprintf(&b, "    %s\n", p)
			}
			b.WriteString("  }\n")
		}
		if in.Preempt {
			if in.PreemptDelay > 0 {
				fmt.Fprintf(&b, "  preempt_delay %s\n", seconds(in.PreemptDelay))
			}
		} else {
			b.WriteString("  nopreempt\n")
		}
		// As many gratuitous ARPs as vipd's announce rounds, and no second
		// burst later.
		fmt.Fprintf(&b, "  garp_master_repeat %d\n", in.AnnounceCount)
		b.WriteString("  garp_master_delay 0\n")
		if in.VirtualMAC {
			// The VIPs go on the vmac interface: no dev.
			b.WriteString("  use_vmac\n")
		}
		b.WriteString("  virtual_ipaddress {\n")
		for _, p := range in.VIPs {
			if in.VirtualMAC {
				fmt.Fprintf(&b, "    %s\n", p)
				continue
			}
			fmt.Fprintf(&b, "    %s dev %s\n", p, in.Interface)
		}
		b.WriteString("  }\n}\n")
	}
	return b.String()
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// SkewTime is RFC 9568 §6.1's Skew_Time: (256 − priority) × interval / 256,
// how long a backup waits after a priority-0 advert before taking over.
func SkewTime(priority int, interval time.Duration) time.Duration {
	return time.Duration(256-priority) * interval / 256
}

// MasterDownInterval is RFC 9568 §6.1's Master_Down_Interval:
// 3 × interval + Skew_Time, how long a backup waits for a silent master.
func MasterDownInterval(priority int, interval time.Duration) time.Duration {
	return 3*interval + SkewTime(priority, interval)
}
