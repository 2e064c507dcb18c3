package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults for optional fields.
const (
	DefaultControlSocket    = "/run/vipd/vipd.sock"
	DefaultPriority         = 100
	DefaultAdvertInterval   = time.Second
	DefaultPreempt          = true
	DefaultPreemptDelay     = 0
	DefaultAnnounceCount    = 5
	DefaultAnnounceInterval = 200 * time.Millisecond
)

// Config is a validated vipd configuration.
type Config struct {
	File          string // path it was loaded from
	ControlSocket string
	Metrics       Metrics
	Checks        []Check
	Instances     []Instance
	SyncGroups    []SyncGroup
	// VirtualServers are load-balanced in the kernel (docs/load-balancing.md).
	VirtualServers []VirtualServer
	// BGP, when not nil, is the BGP speaker that announces the VIPs of
	// instances with BGP set (bgp.go).
	BGP *BGP
	// Anycast VIPs are announced by every node whose checks pass (bgp.go).
	Anycast []Anycast
	// Warnings are what is allowed but risky, such as a secret written in
	// the file; vipd validate prints them and vipd run logs them.
	Warnings Errors
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	// Listen is the host:port of the /metrics and /healthz listener;
	// empty means no listener.
	Listen string
}

// Instance is one VRRP virtual router.
type Instance struct {
	Name           string
	Interface      string
	VRID           uint8
	Priority       uint8 // 1..254; 255 (address owner) is not supported
	AdvertInterval time.Duration
	Preempt        bool
	PreemptDelay   time.Duration
	VIPs           []netip.Prefix // IPv4, the address as written with its prefix length
	Announce       Announce

	// Family is "ipv4" or "ipv6", from the VIPs.
	Family string
	// Version is the VRRP version: 3 (RFC 9568, the default) or 2
	// (RFC 3768, IPv4 only).
	Version int
	// AuthPass is VRRPv2's simple text password (RFC 3768 §5.3.6), up to 8
	// bytes; empty for none.
	AuthPass string
	// UnicastPeers, when not empty, replaces multicast: adverts go to each
	// peer, and adverts from anyone else are dropped.
	UnicastPeers []netip.Addr
	// UnicastSource is the source address of unicast adverts; invalid means
	// the interface's (primary IPv4, or link-local IPv6).
	UnicastSource netip.Addr
	// V3ChecksumAsV2 computes IPv4 VRRPv3 checksums without the
	// pseudo-header, for peers that expect that (keepalived's
	// vrrp_version 3 with v3_checksum_as_v2).
	V3ChecksumAsV2 bool
	// AuthHMAC, when not nil, signs and verifies adverts (keepalived
	// 2.4's auth_hmac).
	AuthHMAC *AuthHMAC

	TrackChecks     []TrackCheck
	TrackInterfaces []TrackInterface
	// TrackVirtualServers follow virtual servers' quorum (lb.go).
	TrackVirtualServers []TrackVirtualServer
	Notify              Notify

	// VIPsAsSource lets the kernel pick the VIPs as source addresses of
	// the host's own traffic. Without it (the default) an IPv4 VIP inside
	// a subnet of the interface is added as a secondary address of that
	// subnet and an IPv6 VIP deprecated, so that neither becomes the
	// host's source or node IP.
	VIPsAsSource bool

	// Routes and Rules are in the kernel while the instance is Master.
	Routes []Route
	Rules  []Rule

	// SyncGroup names the sync group the instance is a member of, ""
	// for none (from Config.SyncGroups).
	SyncGroup string

	// VirtualMAC puts the VIPs on a macvlan of the interface that carries
	// the virtual router MAC (RFC 9568 §7.3), named VirtualMACInterface
	// (default vrrp.VRID, vrrp6.VRID for IPv6); adverts and announcements
	// leave from it while Master.
	VirtualMAC          bool
	VirtualMACInterface string

	// BGP announces the VIPs to Config.BGP's peers, as /32 or /128 routes
	// with this node as next hop, while the instance holds them.
	BGP bool
}

// Announce is how gratuitous ARPs (IPv4) or unsolicited neighbour
// advertisements (IPv6) are sent when an instance becomes master.
type Announce struct {
	Count    int           // rounds, the first at once
	Interval time.Duration // between rounds
	// Refresh, if not 0, announces the VIPs again every Refresh while
	// Master (keepalived's garp_master_refresh), on its own timer.
	Refresh time.Duration
}

// Load reads the file at path and parses it; path is the file name used in
// error messages. A read failure is returned as is (an *fs.PathError);
// anything wrong with the contents as Errors.
//
// Load also reads the auth_hmac secret files, relative paths from the
// config file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, filepath.Dir(path))
}

// Parse parses and validates a config; file is used in error messages and
// as Config.File. When anything is wrong it returns a nil Config and an
// error of type Errors holding every problem found, ordered by line.
//
// Parse reads no file: an auth_hmac key given as secret_file is left
// without its Secret (Load reads it).
func Parse(file string, data []byte) (*Config, error) {
	return parse(file, data, "")
}

// parse is Parse, reading secret files from dir unless it is empty.
func parse(file string, data []byte, dir string) (*Config, error) {
	d := &decoder{file: file}
	var cfg *Config
	if root := d.document(data); root != nil {
		cfg = d.config(root)
		d.checkTracked(cfg)
		if dir != "" {
			d.readSecrets(cfg, dir)
		}
	}
	byLine := func(a, b *Error) int { return a.Line - b.Line }
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, byLine)
		return nil, d.errs
	}
	slices.SortStableFunc(d.warns, byLine)
	cfg.Warnings = d.warns
	return cfg, nil
}

// document returns the root node of the single YAML document in data, or
// nil after reporting why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, &Error{File: d.file, Msg: "empty file; at least one instance is required"})
		} else {
			d.errs = append(d.errs, syntaxError(d.file, data, err))
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorf(&extra, "", "only one YAML document is allowed")
	case !errors.Is(err, io.EOF):
		d.errs = append(d.errs, syntaxError(d.file, data, err))
	}
	root := &doc
	if len(doc.Content) > 0 { // always, for a document
		root = doc.Content[0]
	}
	if root.Kind == yaml.DocumentNode || root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		d.errorf(root, "", "empty document; at least one instance is required")
		return nil
	}
	return root
}

// config decodes the top-level mapping.
func (d *decoder) config(n *yaml.Node) *Config {
	c := &Config{File: d.file, ControlSocket: DefaultControlSocket}
	d.mapping(n, "", []field{
		{name: "control_socket", decode: setString(d, &c.ControlSocket, checkSocketPath)},
		{name: "metrics", decode: func(n *yaml.Node, path string) {
			d.mapping(n, path, []field{
				{name: "listen", decode: setString(d, &c.Metrics.Listen, checkListen)},
			})
		}},
		{name: "checks", decode: func(n *yaml.Node, path string) {
			c.Checks, d.checkLines = d.checks(n, path)
		}},
		{name: "instances", required: true, decode: func(n *yaml.Node, path string) {
			c.Instances = d.instances(n, path)
		}},
		{name: "sync_groups", decode: func(n *yaml.Node, path string) {
			c.SyncGroups = d.syncGroups(n, path)
		}},
		{name: "virtual_servers", decode: func(n *yaml.Node, path string) { c.VirtualServers = d.virtualServers(n, path) }},
		{name: "bgp", decode: func(n *yaml.Node, path string) { c.BGP = d.bgp(n, path) }},
		{name: "anycast", decode: func(n *yaml.Node, path string) { c.Anycast = d.anycasts(n, path) }},
	})
	d.checkBGP()
	d.checkAnycast(c)
	d.checkGroups(c)
	d.checkVirtualServers(c)
	return c
}

// source remembers where an instance's values came from, for the checks
// that span instances.
type source struct {
	vals map[string]*yaml.Node // value node by field name
	vips []at                  // parallel to Instance.VIPs
}

// at is where a value was written.
type at struct {
	node *yaml.Node
	path string
}

func (d *decoder) instances(n *yaml.Node, path string) []Instance {
	var (
		insts []Instance
		srcs  []source
	)
	ok := d.list(n, path, "instances", func(_ int, n *yaml.Node, path string) {
		in, src := d.instance(n, path, len(insts))
		insts = append(insts, in)
		srcs = append(srcs, src)
	})
	if ok && len(n.Content) == 0 {
		d.errorf(n, path, "at least one instance is required")
	}
	d.checkUnique(path, insts, srcs)
	d.instAt = map[string]int{}
	for i, in := range insts {
		if _, dup := d.instAt[in.Name]; in.Name != "" && !dup {
			d.instAt[in.Name] = i
		}
	}
	return insts
}

func (d *decoder) instance(n *yaml.Node, path string, idx int) (Instance, source) {
	in := Instance{
		Priority:       DefaultPriority,
		AdvertInterval: DefaultAdvertInterval,
		Preempt:        DefaultPreempt,
		PreemptDelay:   DefaultPreemptDelay,
		Announce:       Announce{Count: DefaultAnnounceCount, Interval: DefaultAnnounceInterval},
		Notify:         Notify{Timeout: DefaultNotifyTimeout},
		Version:        3,
	}
	var src source
	var peerNodes []at
	src.vals, _ = d.mapping(n, path, []field{
		{name: "name", required: true, decode: setString(d, &in.Name, checkName)},
		{name: "interface", required: true, decode: setString(d, &in.Interface, checkInterface)},
		{name: "vrid", required: true, decode: setInt(d, &in.VRID, 1, 255)},
		{name: "priority", decode: d.priority(&in.Priority)},
		// RFC 9568 §5.2.7: a 12-bit count of centiseconds.
		// The range depends on the version, known only once the mapping
		// is read: checkInterval.
		{name: "advert_interval", decode: setDuration(d, &in.AdvertInterval, math.MinInt64, math.MaxInt64, 0)},
		{name: "preempt", decode: setBool(d, &in.Preempt)},
		{name: "preempt_delay", decode: setDuration(d, &in.PreemptDelay, 0, time.Hour, 0)},
		{name: "vips", required: true, decode: func(n *yaml.Node, path string) {
			in.VIPs, src.vips = d.vips(n, path)
		}},
		{name: "announce", decode: func(n *yaml.Node, path string) {
			d.mapping(n, path, []field{
				{name: "count", decode: setInt(d, &in.Announce.Count, 1, 100)},
				{name: "interval", decode: setDuration(d, &in.Announce.Interval, 10*time.Millisecond, 10*time.Second, 0)},
				{name: "refresh", decode: func(n *yaml.Node, path string) {
					setDuration(d, &in.Announce.Refresh, 0, 24*time.Hour, 0)(n, path)
					if r := in.Announce.Refresh; r > 0 && r < time.Second {
						d.errorf(n, path, "%s is more often than once a second; 0 turns the refresh off", n.Value)
						in.Announce.Refresh = 0
					}
				}},
			})
		}},
		{name: "track_checks", decode: func(n *yaml.Node, path string) {
			d.tracking(n, path, "check", checkName, func(name string, w int, n *yaml.Node, path string) {
				in.TrackChecks = append(in.TrackChecks, TrackCheck{Check: name, Weight: w})
				d.tracked = append(d.tracked, trackedAt{name: name, node: n, path: path + ".check"})
			})
		}},
		{name: "track_interfaces", decode: func(n *yaml.Node, path string) {
			d.tracking(n, path, "interface", checkInterface, func(name string, w int, n *yaml.Node, path string) {
				in.TrackInterfaces = append(in.TrackInterfaces, TrackInterface{Interface: name, Weight: w})
			})
		}},
		{name: "notify", decode: func(n *yaml.Node, path string) { d.notify(n, path, &in.Notify) }},
		{name: "version", decode: setInt(d, &in.Version, 2, 3)},
		{name: "auth_pass", decode: setString(d, &in.AuthPass, checkAuthPass)},
		{name: "unicast_peers", decode: func(n *yaml.Node, path string) {
			in.UnicastPeers, peerNodes = d.addrs(n, path)
			if len(in.UnicastPeers) == 0 && len(peerNodes) == 0 && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
				d.errorf(n, path, "an empty list would silently mean multicast; remove the field to use multicast, or list the peers")
			}
		}},
		{name: "unicast_source", decode: d.addr(&in.UnicastSource)},
		{name: "v3_checksum_as_v2", decode: setBool(d, &in.V3ChecksumAsV2)},
		{name: "auth_hmac", decode: func(n *yaml.Node, path string) { in.AuthHMAC = d.authHMAC(n, path, idx) }},
		{name: "vips_as_source", decode: setBool(d, &in.VIPsAsSource)},
		{name: "routes", decode: func(n *yaml.Node, path string) { in.Routes = d.routes(n, path) }},
		{name: "virtual_mac", decode: setBool(d, &in.VirtualMAC)},
		{name: "virtual_mac_interface", decode: setString(d, &in.VirtualMACInterface, checkInterface)},
		{name: "rules", decode: func(n *yaml.Node, path string) { in.Rules = d.rules(n, path) }},
		{name: "track_virtual_servers", decode: func(n *yaml.Node, path string) { d.trackVirtualServers(n, path, &in) }},
		{name: "bgp", decode: func(n *yaml.Node, path string) {
			setBool(d, &in.BGP)(n, path)
			if in.BGP {
				d.bgpd.uses = append(d.bgpd.uses, at{n, path})
			}
		}},
	})
	d.checkInterval(&in, src, path)
	finishAuth(&in)
	d.checkFamily(&in, src, peerNodes, path)
	d.checkVMAC(&in, src, path)
	return in, src
}

// priority is setInt(1, 254) with a clearer word for 255.
func (d *decoder) priority(dst *uint8) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.integer(n, path)
		switch {
		case !ok:
		case v == 255:
			// RFC 9568 §5.2.4: 255 is reserved for the router that owns the
			// addresses; vipd always adds VIPs it does not own.
			d.errorf(n, path, "255 is reserved for the address owner, which vipd does not support; use 1..254")
		case d.inRange(n, path, v, 1, 254):
			*dst = uint8(v)
		}
	}
}

// vips decodes the VIP list, reporting bad entries and duplicates within
// it; duplicates across instances are checkUnique's.
func (d *decoder) vips(n *yaml.Node, path string) ([]netip.Prefix, []at) {
	var (
		vips []netip.Prefix
		locs []at
		seen = map[netip.Addr]*yaml.Node{}
	)
	ok := d.list(n, path, "addresses", func(_ int, n *yaml.Node, path string) {
		if !d.scalar(n, path, "an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64") {
			return
		}
		p, err := parseVIP(n.Value)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if first, dup := seen[p.Addr()]; dup {
			d.errorf(n, path, "%s is listed twice (first at line %d)", p.Addr(), first.Line)
			return
		}
		seen[p.Addr()] = n
		vips = append(vips, p)
		locs = append(locs, at{n, path})
	})
	if ok && len(n.Content) == 0 {
		d.errorf(n, path, "at least one VIP is required")
	}
	return vips, locs
}

// checkUnique reports names, VRIDs on one interface, and VIP addresses used
// by more than one instance, at the second use. Zero values are fields that
// were missing or invalid, already reported.
func (d *decoder) checkUnique(path string, insts []Instance, srcs []source) {
	type where struct {
		inst int
		line int
	}
	type link struct {
		iface  string
		family string
		vrid   uint8
	}
	names := map[string]where{}
	vrids := map[link]where{}
	vips := map[netip.Addr]where{}
	vmacs := map[string]where{}
	ifaces := map[string]bool{}
	for _, in := range insts {
		ifaces[in.Interface] = true
	}
	for i, in := range insts {
		if in.VirtualMAC && ifaces[in.VirtualMACInterface] {
			n := valueOf(srcs, i, "virtual_mac_interface", "virtual_mac")
			d.errorf(n, fmt.Sprintf("%s[%d].virtual_mac_interface", path, i), "%s is an instance's interface; a virtual MAC interface is vipd's own, created and deleted with the instance", in.VirtualMACInterface)
		}
	}
	for i, in := range insts {
		src := srcs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		if in.Name != "" {
			n := src.vals["name"]
			if w, dup := names[in.Name]; dup {
				d.errorf(n, p+".name", "instance name %q is already used (line %d)", in.Name, w.line)
			} else {
				names[in.Name] = where{i, n.Line}
			}
		}
		if in.Interface != "" && in.VRID != 0 {
			n := src.vals["vrid"]
			k := link{in.Interface, in.Family, in.VRID}
			if w, dup := vrids[k]; dup {
				d.errorf(n, p+".vrid", "VRID %d is already used for %s on %s by %s (line %d)", in.VRID, FamilyWord(in.Family), in.Interface, label(insts, path, w.inst), w.line)
			} else {
				vrids[k] = where{i, n.Line}
			}
		}
		if in.VirtualMAC && in.VirtualMACInterface != "" {
			n := src.vals["virtual_mac_interface"]
			if n == nil {
				n = src.vals["virtual_mac"]
			}
			if w, dup := vmacs[in.VirtualMACInterface]; dup {
				d.errorf(n, p+".virtual_mac_interface", "virtual MAC interface %s is already %s's (line %d): give one of them virtual_mac_interface", in.VirtualMACInterface, label(insts, path, w.inst), w.line)
			} else {
				vmacs[in.VirtualMACInterface] = where{i, n.Line}
			}
		}
		for j, v := range in.VIPs {
			loc := src.vips[j]
			if w, dup := vips[v.Addr()]; dup {
				d.errorf(loc.node, loc.path, "%s is already a VIP of %s (line %d)", v.Addr(), label(insts, path, w.inst), w.line)
			} else {
				vips[v.Addr()] = where{i, loc.node.Line}
			}
		}
	}
}

// valueOf returns the value node of the first of the named fields that
// instance i has.
func valueOf(srcs []source, i int, names ...string) *yaml.Node {
	for _, name := range names {
		if n := srcs[i].vals[name]; n != nil {
			return n
		}
	}
	return nil
}

// label names instance i in a message: by name when it has a valid one.
func label(insts []Instance, path string, i int) string {
	if insts[i].Name != "" {
		return fmt.Sprintf("instance %q", insts[i].Name)
	}
	return fmt.Sprintf("%s[%d]", path, i)
}
