package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of the bgp section.
const (
	DefaultBGPPort     = 179
	DefaultBGPHoldTime = 9 * time.Second
	minBGPHoldTime     = 3 * time.Second // RFC 4271 §4.2: 0 or at least 3 s
	maxBGPHoldTime     = 65535 * time.Second
	maxASN             = 4294967294 // 4294967295 is reserved (RFC 7300)
)

// BGP is the top-level bgp section: vipd's BGP speaker, which announces
// the VIPs of instances with BGP set while they are Master (docs/bgp.md).
type BGP struct {
	ASN uint32
	// RouterID is the BGP identifier; from router_id, or else the first
	// peer's IPv4 source.
	RouterID netip.Addr
	Peers    []BGPPeer
	// Communities are added to every announced route, as ASN<<16|value.
	Communities []uint32
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16
	// Password turns on TCP MD5 signatures (RFC 2385); empty for none.
	Password string
	// Multihop is the eBGP multihop TTL; 0 for a directly connected peer.
	Multihop uint8
	// Source is the local address of the session; invalid for the
	// kernel's choice.
	Source   netip.Addr
	HoldTime time.Duration
}

// bgpDecoder is what the decoder remembers for the checks across the
// file.
type bgpDecoder struct {
	section *yaml.Node  // the bgp value, nil without one
	uses    []at        // instances' bgp: true
	anycast []anycastAt // parallel to Config.Anycast
}

// bgp decodes the top-level bgp section.
func (d *decoder) bgp(n *yaml.Node, path string) *BGP {
	d.bgpd.section = n
	if !BGPLinked {
		d.errorf(n, path, "this vipd was built without BGP (go build -tags nobgp); use a build without that tag")
		return nil
	}
	b := &BGP{}
	vals, _ := d.mapping(n, path, []field{
		{name: "asn", required: true, decode: setInt(d, &b.ASN, 1, maxASN)},
		{name: "router_id", decode: func(n *yaml.Node, path string) {
			var a netip.Addr
			d.addr(&a)(n, path)
			if a.IsValid() && !a.Is4() {
				d.errorf(n, path, "a router ID is an IPv4 address (RFC 6286), got %s", a)
				return
			}
			b.RouterID = a
		}},
		{name: "peers", required: true, decode: func(n *yaml.Node, path string) { b.Peers = d.bgpPeers(n, path) }},
		{name: "communities", decode: func(n *yaml.Node, path string) {
			d.list(n, path, "communities", func(_ int, n *yaml.Node, path string) {
				if !d.scalar(n, path, "a community such as 65001:100") {
					return
				}
				c, err := parseCommunity(n.Value)
				if err != nil {
					d.errorf(n, path, "%v", err)
					return
				}
				b.Communities = append(b.Communities, c)
			})
		}},
	})
	if vals != nil && vals["router_id"] == nil && len(b.Peers) > 0 {
		if s := b.Peers[0].Source; s.Is4() {
			b.RouterID = s
		} else if vals["peers"] != nil {
			d.errorf(n, join(path, "router_id"), "required field is missing: without it the router ID is the first peer's IPv4 source, and that peer has none")
		}
	}
	return b
}

func (d *decoder) bgpPeers(n *yaml.Node, path string) []BGPPeer {
	var out []BGPPeer
	seen := map[netip.Addr]int{}
	ok := d.list(n, path, "peers", func(_ int, n *yaml.Node, path string) {
		p := BGPPeer{Port: DefaultBGPPort, HoldTime: DefaultBGPHoldTime}
		vals, _ := d.mapping(n, path, []field{
			{name: "address", required: true, decode: d.addr(&p.Address)},
			{name: "asn", required: true, decode: setInt(d, &p.ASN, 1, maxASN)},
			{name: "port", decode: setInt(d, &p.Port, 1, 65535)},
			{name: "password", decode: setString(d, &p.Password, func(s string) error {
				if len(s) > 80 { // TCP_MD5SIG_MAXKEYLEN
					return fmt.Errorf("a TCP MD5 password is at most 80 bytes")
				}
				return nil
			})},
			{name: "multihop", decode: setInt(d, &p.Multihop, 0, 255)},
			{name: "source", decode: d.addr(&p.Source)},
			{name: "hold_time", decode: setDuration(d, &p.HoldTime, minBGPHoldTime, maxBGPHoldTime, time.Second)},
		})
		if an := vals["address"]; an != nil && p.Address.IsValid() {
			if first, dup := seen[p.Address]; dup {
				d.errorf(an, join(path, "address"), "peer %s is listed twice (first at line %d)", p.Address, first)
			} else {
				seen[p.Address] = an.Line
			}
		}
		if sn := vals["source"]; sn != nil && p.Source.IsValid() && p.Address.IsValid() && p.Source.Is4() != p.Address.Is4() {
			d.errorf(sn, join(path, "source"), "source %s and peer %s are of different address families", p.Source, p.Address)
		}
		if p.Password != "" {
			d.warnf(vals["password"], join(path, "password"), "a password written in the file; keep the file readable by root only")
		}
		out = append(out, p)
	})
	if ok && len(n.Content) == 0 {
		d.errorf(n, path, "at least one peer is required")
	}
	return out
}

// parseCommunity parses a standard community, AS:value (RFC 1997).
func parseCommunity(s string) (uint32, error) {
	hi, lo, ok := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(hi, 10, 16)
	v, err2 := strconv.ParseUint(lo, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a community: two numbers 0..65535 as in 65001:100", short(s))
	}
	return uint32(a)<<16 | uint32(v), nil
}

// checkBGP reports instances with bgp: true in a file without a bgp
// section.
func (d *decoder) checkBGP() {
	if d.bgpd.section != nil {
		return
	}
	for _, u := range d.bgpd.uses {
		d.errorf(u.node, u.path, "bgp: true needs the top-level bgp section (asn and peers)")
	}
}

// Anycast is a set of VIPs every node announces while its tracked checks
// pass, with no VRRP: they live on lo, and the router spreads the
// traffic over the nodes that announce them (ECMP).
type Anycast struct {
	Name string
	VIPs []netip.Prefix // host routes: /32 or /128
	// TrackChecks must all be up for the VIPs to be announced.
	TrackChecks []string
}

// anycasts decodes the top-level anycast list.
func (d *decoder) anycasts(n *yaml.Node, path string) []Anycast {
	var out []Anycast
	names := map[string]int{}
	d.list(n, path, "anycast groups", func(_ int, n *yaml.Node, path string) {
		var a Anycast
		var vipLocs []at
		d.mapping(n, path, []field{
			{name: "name", required: true, decode: setString(d, &a.Name, checkName)},
			{name: "vips", required: true, decode: func(n *yaml.Node, path string) {
				vips, locs := d.vips(n, path)
				for i, v := range vips {
					if v.Bits() != v.Addr().BitLen() {
						d.errorf(locs[i].node, locs[i].path, "an anycast VIP is a host route: %s/%d, not %s", v.Addr(), v.Addr().BitLen(), v)
						continue
					}
					a.VIPs = append(a.VIPs, v)
					vipLocs = append(vipLocs, locs[i])
				}
			}},
			{name: "track_checks", decode: func(n *yaml.Node, path string) {
				seen := map[string]int{}
				d.list(n, path, "checks", func(_ int, n *yaml.Node, path string) {
					var name string
					d.mapping(n, path, []field{{name: "check", required: true, decode: setString(d, &name, checkName)}})
					if name == "" {
						return
					}
					if first, dup := seen[name]; dup {
						d.errorf(n, path, "check %q is tracked twice (first at line %d)", name, first)
						return
					}
					seen[name] = n.Line
					a.TrackChecks = append(a.TrackChecks, name)
					d.tracked = append(d.tracked, trackedAt{name: name, node: n, path: path + ".check"})
				})
			}},
		})
		if a.Name != "" {
			if first, dup := names[a.Name]; dup {
				d.errorf(n, join(path, "name"), "anycast name %q is already used (line %d)", a.Name, first)
			} else {
				names[a.Name] = n.Line
			}
		}
		d.bgpd.anycast = append(d.bgpd.anycast, anycastAt{node: n, path: path, vips: vipLocs})
		out = append(out, a)
	})
	return out
}

// anycastAt is where an anycast group was written.
type anycastAt struct {
	node *yaml.Node
	path string
	vips []at // parallel to Anycast.VIPs
}

// checkAnycast reports anycast groups without a bgp section and anycast
// VIPs that are also an instance's or another group's.
func (d *decoder) checkAnycast(c *Config) {
	owner := map[netip.Addr]string{}
	for _, in := range c.Instances {
		for _, v := range in.VIPs {
			owner[v.Addr()] = fmt.Sprintf("instance %q", in.Name)
		}
	}
	for i, a := range c.Anycast {
		src := d.bgpd.anycast[i]
		if c.BGP == nil && d.bgpd.section == nil {
			d.errorf(src.node, src.path, "anycast needs the top-level bgp section (asn and peers)")
		}
		for j, v := range a.VIPs {
			loc := src.vips[j]
			if o, dup := owner[v.Addr()]; dup {
				d.errorf(loc.node, loc.path, "%s is already a VIP of %s", v.Addr(), o)
				continue
			}
			owner[v.Addr()] = fmt.Sprintf("anycast %q", a.Name)
		}
	}
}
