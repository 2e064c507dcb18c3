package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The addresses every lab uses (RFC 5737 documentation range).
var (
	// VIP is the virtual address the tests, the demo and the benchmark fail over.
	VIP = netip.MustParsePrefix("192.0.2.50/24")
	// ClientAddr is the client's address on the lab's bridge.
	ClientAddr = netip.MustParsePrefix("192.0.2.100/24")
)

// NodeAddr returns the address of router node i (1-based): 192.0.2.10+i/24.
func NodeAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 24)
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
}

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
	var b strings.Builder
	fmt.Fprintf(&b, "control_socket: %s\n", strconv.Quote(controlSocket))
	b.WriteString("instances:\n")
	for _, in := range instances {
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
		fmt.Fprintf(&b, "    announce: {count: %d, interval: %s}\n", in.AnnounceCount, in.AnnounceInterval)
	}
	return b.String()
}

// KeepalivedConfig renders a keepalived configuration equivalent to the
// instances: VRRPv3, the same interval (keepalived takes seconds with
// fractions, down to 0.01), priority, preemption and virtual addresses.
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
		b.WriteString("  virtual_ipaddress {\n")
		for _, p := range in.VIPs {
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
