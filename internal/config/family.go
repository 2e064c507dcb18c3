package config

import (
	"fmt"
	"net/netip"
	"time"

	"gopkg.in/yaml.v3"
)

// addr decodes one IP address.
func (d *decoder) addr(dst *netip.Addr) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if !d.scalar(n, path, "an IP address") {
			return
		}
		a, err := netip.ParseAddr(n.Value)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			d.errorf(n, path, "expected an IP address such as 192.0.2.11 or 2001:db8::11, got %s", describe(n))
			return
		}
		*dst = a
	}
}

// addrs decodes a list of distinct IP addresses.
func (d *decoder) addrs(n *yaml.Node, path string) ([]netip.Addr, []at) {
	var (
		out  []netip.Addr
		locs []at
		seen = map[netip.Addr]int{}
	)
	d.list(n, path, "IP addresses", func(_ int, n *yaml.Node, path string) {
		var a netip.Addr
		d.addr(&a)(n, path)
		if !a.IsValid() {
			return
		}
		if first, dup := seen[a]; dup {
			d.errorf(n, path, "%s is listed twice (first at line %d)", a, first)
			return
		}
		seen[a] = n.Line
		out = append(out, a)
		locs = append(locs, at{n, path})
	})
	return out, locs
}

// FamilyOf is the family name ("ipv4" or "ipv6") of an address.
func FamilyOf(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// FamilyWord is how messages write a family name: "IPv4" or "IPv6".
func FamilyWord(f string) string {
	if f == "ipv6" {
		return "IPv6"
	}
	return "IPv4"
}

func checkAuthPass(s string) error {
	if len(s) == 0 || len(s) > 8 {
		return fmt.Errorf("a VRRPv2 password is 1 to 8 bytes, got %d", len(s))
	}
	return nil
}

// checkFamily derives the instance's address family from its VIPs and
// checks what depends on it: one family per instance, peers and source of
// that family, and the VRRPv2 rules.
func (d *decoder) checkFamily(in *Instance, src source, peers []at, path string) {
	for i, v := range in.VIPs {
		f := FamilyOf(v.Addr())
		if i == 0 {
			in.Family = f
			continue
		}
		if f != in.Family {
			loc := src.vips[i]
			d.errorf(loc.node, loc.path, "%s is %s but the instance's first VIP is %s: an instance has one address family (use a second instance with the same VRID for the other)",
				v.Addr(), FamilyWord(f), FamilyWord(in.Family))
			return
		}
	}
	if in.Family == "" {
		return // no valid VIPs, already reported
	}
	for i, p := range in.UnicastPeers {
		if FamilyOf(p) != in.Family {
			d.errorf(peers[i].node, peers[i].path, "peer %s is not %s like the instance's VIPs", p, FamilyWord(in.Family))
		}
	}
	if in.UnicastSource.IsValid() {
		n := src.vals["unicast_source"]
		switch {
		case FamilyOf(in.UnicastSource) != in.Family:
			d.errorf(n, join(path, "unicast_source"), "%s is not %s like the instance's VIPs", in.UnicastSource, FamilyWord(in.Family))
		case len(in.UnicastPeers) == 0:
			d.errorf(n, join(path, "unicast_source"), "unicast_source needs unicast_peers")
		}
	}
	switch in.Version {
	case 2:
		if in.Family == "ipv6" {
			d.errorf(src.vals["version"], join(path, "version"), "VRRPv2 (RFC 3768) is IPv4 only; use version 3 for IPv6 VIPs")
		}
		if n := src.vals["v3_checksum_as_v2"]; n != nil && in.V3ChecksumAsV2 {
			d.errorf(n, join(path, "v3_checksum_as_v2"), "applies to version 3 only (VRRPv2 checksums never include a pseudo-header)")
		}
	case 3:
		if n := src.vals["auth_pass"]; n != nil {
			d.errorf(n, join(path, "auth_pass"), "VRRPv3 has no authentication (RFC 9568 §9 removed it); set version: 2 to use a password, as keepalived's authentication { auth_type PASS } does")
		}
		if n := src.vals["v3_checksum_as_v2"]; n != nil && in.V3ChecksumAsV2 && in.Family == "ipv6" {
			d.errorf(n, join(path, "v3_checksum_as_v2"), "applies to IPv4 only (IPv6 checksums always include the pseudo-header)")
		}
	}
}

// checkInterval checks advert_interval against the instance's version:
// RFC 9568 §5.2.7 counts 12 bits of centiseconds (10ms..40.95s), RFC 3768
// §5.3.7 8 bits of seconds (1s..255s). An invalid value is reset to the
// default, so later checks see a sane one.
func (d *decoder) checkInterval(in *Instance, src source, path string) {
	n := src.vals["advert_interval"]
	if n == nil {
		return
	}
	v, p := in.AdvertInterval, join(path, "advert_interval")
	bad := true
	switch {
	case in.Version == 2 && (v < time.Second || v > 255*time.Second):
		d.errorf(n, p, "%s is out of range 1s..255s for VRRPv2", n.Value)
	case in.Version == 2 && v%time.Second != 0:
		d.errorf(n, p, "VRRPv2 advertises whole seconds: %s is not a multiple of 1s", fmtDuration(v))
	case in.Version != 2 && (v < 10*time.Millisecond || v > 4095*10*time.Millisecond):
		d.errorf(n, p, "%s is out of range 10ms..40.95s", n.Value)
	case in.Version != 2 && v%(10*time.Millisecond) != 0:
		d.errorf(n, p, "%s is not a multiple of 10ms", n.Value)
	default:
		bad = false
	}
	if bad {
		in.AdvertInterval = DefaultAdvertInterval
	}
}

// checkVMAC fills in the virtual MAC interface's default name and refuses
// the name without the feature.
func (d *decoder) checkVMAC(in *Instance, src source, path string) {
	if !in.VirtualMAC {
		if n := src.vals["virtual_mac_interface"]; n != nil {
			d.errorf(n, join(path, "virtual_mac_interface"), "needs virtual_mac: true")
		}
		in.VirtualMACInterface = ""
		return
	}
	if in.VirtualMACInterface == "" && in.VRID != 0 && in.Family != "" {
		in.VirtualMACInterface = fmt.Sprintf("vrrp.%d", in.VRID)
		if in.Family == "ipv6" {
			in.VirtualMACInterface = fmt.Sprintf("vrrp6.%d", in.VRID)
		}
	}
}
