package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of a virtual server.
const (
	DefaultVSProtocol   = "tcp"
	DefaultVSMode       = "nat"
	DefaultVSScheduler  = "round_robin"
	DefaultVSQuorum     = 1
	DefaultRealWeight   = 1
	MaxRealWeight       = 256
	DefaultRSCheckTime  = time.Second
	defaultHTTPPath     = "/"
	maxVSWeightsReduced = 1024 // lb.MaxWeight: the size of a virtual server's map
)

// DefaultDrainTimeout is how long a proxy virtual server's connections may
// go on after a stop or its removal; MaxDrainTimeout bounds it below the
// systemd unit's TimeoutStopSec.
const (
	DefaultDrainTimeout = 5 * time.Second
	MaxDrainTimeout     = 30 * time.Second
)

// VirtualServer is an address, port and protocol whose connections vipd
// spreads over the healthy real servers, in the kernel (mode nat, with
// nftables; internal/lb) or in a userspace proxy (mode proxy, TCP only;
// internal/proxy).
type VirtualServer struct {
	Name     string
	Address  netip.Addr
	Port     uint16
	Protocol string // "tcp" or "udp"
	Mode     string // "nat" or "proxy"
	// Scheduler is round_robin, random, source_hash or (proxy)
	// least_conn.
	Scheduler string
	// Persistence, when not 0, sends a client back to its last real
	// server for that long after its last connection.
	Persistence time.Duration
	// Quorum is the number of healthy real servers the virtual server
	// needs to be up; below it, it has no backends at all.
	Quorum      int
	Check       RealServerCheck
	RealServers []RealServer
	// DrainTimeout (proxy) bounds how long established connections go on
	// after a stop or the virtual server's removal; 0 with nat.
	DrainTimeout time.Duration
	// ProxyProtocol (proxy) is "v2" to send each real server a PROXY
	// protocol v2 header with the client's address; "" for none.
	ProxyProtocol string
}

// RealServerCheck is the health check run against each real server of a
// virtual server, at the real server's address and port (or Port). Exactly
// one of TCP and HTTP is set.
type RealServerCheck struct {
	Interval time.Duration
	Timeout  time.Duration
	Fall     int
	Rise     int
	// Port, when not 0, is checked instead of each real server's port.
	Port uint16
	TCP  bool
	HTTP *RealServerHTTP
}

// RealServerHTTP is an HTTP check of a real server: a GET of
// Scheme://address:port/Path.
type RealServerHTTP struct {
	Path               string
	Scheme             string // http or https
	Host               string // Host header and TLS server name; empty: the address
	CAFile             string
	InsecureSkipVerify bool
	ExpectStatus       []int // empty: 200..299
}

// RealServer is one backend of a virtual server.
type RealServer struct {
	Address netip.Addr
	Port    uint16
	Weight  int // 1..MaxRealWeight
}

// AddrPort is the real server's address and port.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Address, r.Port) }

// TrackVirtualServer ties an instance to a virtual server's quorum, like
// TrackCheck: the virtual server is up while at least Quorum of its real
// servers are healthy.
type TrackVirtualServer struct {
	VirtualServer string
	Weight        int
}

// checkVSName applies internal/lb's rule for names, which become chain
// names.
func checkVSName(s string) error {
	if !isName(s, true) {
		return fmt.Errorf("%q is not a valid virtual server name: a letter, then up to 63 of A-Z a-z 0-9 _ . -", short(s))
	}
	return nil
}

// lbDecoder is what the decoder remembers of virtual servers for the
// checks across the file.
type lbDecoder struct {
	vss     []vsAt      // parallel to Config.VirtualServers
	tracked []trackedAt // track_virtual_servers entries
}

// vsAt is where a virtual server was written, for the checks that need the
// instances.
type vsAt struct {
	node *yaml.Node
	path string
	vals map[string]*yaml.Node
}

// virtualServers decodes the top-level virtual_servers list.
func (d *decoder) virtualServers(n *yaml.Node, path string) []VirtualServer {
	var out []VirtualServer
	d.list(n, path, "virtual servers", func(_ int, n *yaml.Node, path string) {
		v, src := d.virtualServer(n, path)
		out = append(out, v)
		d.lb.vss = append(d.lb.vss, src)
	})
	type key struct {
		addr  netip.Addr
		proto string
		port  uint16
	}
	names := map[string]int{}
	keys := map[key]int{}
	for i, v := range out {
		src := d.lb.vss[i]
		if v.Name != "" {
			if first, dup := names[v.Name]; dup {
				d.errorf(src.vals["name"], src.path+".name", "virtual server name %q is already used (line %d)", v.Name, first)
			} else {
				names[v.Name] = src.vals["name"].Line
			}
		}
		if v.Address.IsValid() && v.Port != 0 {
			k := key{v.Address, v.Protocol, v.Port}
			if first, dup := keys[k]; dup {
				d.errorf(src.vals["port"], src.path+".port", "%s %s port %d is already a virtual server (line %d)", v.Protocol, v.Address, v.Port, first)
			} else {
				keys[k] = src.node.Line
			}
		}
	}
	return out
}

func (d *decoder) virtualServer(n *yaml.Node, path string) (VirtualServer, vsAt) {
	v := VirtualServer{Protocol: DefaultVSProtocol, Mode: DefaultVSMode, Scheduler: DefaultVSScheduler, Quorum: DefaultVSQuorum,
		Check: RealServerCheck{Interval: DefaultRSCheckTime, Fall: DefaultCheckFall, Rise: DefaultCheckRise, TCP: true}}
	src := vsAt{node: n, path: path}
	var rsNodes []at
	src.vals, _ = d.mapping(n, path, []field{
		{name: "name", required: true, decode: setString(d, &v.Name, checkVSName)},
		{name: "address", required: true, decode: d.addr(&v.Address)},
		{name: "port", required: true, decode: setInt(d, &v.Port, 1, 65535)},
		{name: "protocol", decode: setString(d, &v.Protocol, oneOf("tcp", "udp"))},
		{name: "mode", decode: setString(d, &v.Mode, func(s string) error {
			if s == "nat" || s == "proxy" {
				return nil
			}
			return fmt.Errorf("%q is not a mode: nat (in the kernel) or proxy (userspace)", short(s))
		})},
		{name: "scheduler", decode: setString(d, &v.Scheduler, oneOf("round_robin", "random", "source_hash", "least_conn"))},
		{name: "persistence", decode: func(n *yaml.Node, path string) {
			setDuration(d, &v.Persistence, 0, 24*time.Hour, time.Second)(n, path)
		}},
		{name: "quorum", decode: setInt(d, &v.Quorum, 1, 1024)},
		{name: "drain_timeout", decode: setDuration(d, &v.DrainTimeout, 0, MaxDrainTimeout, 0)},
		{name: "proxy_protocol", decode: setString(d, &v.ProxyProtocol, oneOf("v2"))},
		{name: "check", decode: func(n *yaml.Node, path string) { d.realServerCheck(n, path, &v.Check) }},
		{name: "real_servers", required: true, decode: func(n *yaml.Node, path string) {
			v.RealServers, rsNodes = d.realServers(n, path)
		}},
	})
	if v.Check.Timeout == 0 {
		v.Check.Timeout = v.Check.Interval / 2
	}
	d.checkVSMode(&v, src)
	if v.Address.IsValid() && v.Mode != "proxy" {
		for i, r := range v.RealServers {
			if r.Address.Is4() != v.Address.Is4() {
				d.errorf(rsNodes[i].node, rsNodes[i].path+".address", "%s is %s but the virtual server's address %s is %s: NAT does not translate between families",
					r.Address, FamilyWord(FamilyOf(r.Address)), v.Address, FamilyWord(FamilyOf(v.Address)))
			}
		}
	}
	if v.Port != 0 {
		for i := range v.RealServers {
			if v.RealServers[i].Port == 0 {
				v.RealServers[i].Port = v.Port
			}
		}
	}
	seen := map[netip.AddrPort]int{}
	for i, r := range v.RealServers {
		if !r.Address.IsValid() || r.Port == 0 {
			continue
		}
		if first, dup := seen[r.AddrPort()]; dup {
			d.errorf(rsNodes[i].node, rsNodes[i].path, "real server %s is listed twice (first at line %d)", r.AddrPort(), first)
			continue
		}
		seen[r.AddrPort()] = rsNodes[i].node.Line
	}
	if q := src.vals["quorum"]; q != nil && len(v.RealServers) > 0 && v.Quorum > len(v.RealServers) {
		d.errorf(q, path+".quorum", "%d is more than the %d real servers: the virtual server could never be up", v.Quorum, len(v.RealServers))
	}
	if total := reducedWeights(v.RealServers); total > maxVSWeightsReduced {
		d.errorf(src.vals["real_servers"], path+".real_servers", "the weights add up to %d after dividing by their greatest common divisor, more than %d", total, maxVSWeightsReduced)
	}
	return v, src
}

// checkVSMode checks the fields that only one mode takes, and gives a
// proxy its drain timeout.
func (d *decoder) checkVSMode(v *VirtualServer, src vsAt) {
	if v.Mode == "proxy" {
		if n := src.vals["protocol"]; n != nil && v.Protocol == "udp" {
			d.errorf(n, src.path+".protocol", "udp needs mode nat: the proxy carries TCP only")
		}
		if src.vals["drain_timeout"] == nil {
			v.DrainTimeout = DefaultDrainTimeout
		}
		return
	}
	if n := src.vals["scheduler"]; n != nil && v.Scheduler == "least_conn" {
		d.errorf(n, src.path+".scheduler", "least_conn needs mode proxy, which counts connections; with nat use round_robin, random or source_hash")
	}
	for _, f := range []string{"drain_timeout", "proxy_protocol"} {
		if n := src.vals[f]; n != nil {
			d.errorf(n, src.path+"."+f, "%s needs mode proxy: with nat the kernel carries the connections", f)
		}
	}
	v.DrainTimeout, v.ProxyProtocol = 0, ""
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", short(s), strings.Join(vals, ", "))
	}
}

// realServers decodes a real_servers list; the entries' nodes are
// returned too, for the checks across them.
func (d *decoder) realServers(n *yaml.Node, path string) ([]RealServer, []at) {
	var (
		out  []RealServer
		locs []at
	)
	ok := d.list(n, path, "real servers", func(_ int, n *yaml.Node, path string) {
		r := RealServer{Weight: DefaultRealWeight}
		d.mapping(n, path, []field{
			{name: "address", required: true, decode: d.addr(&r.Address)},
			{name: "port", decode: setInt(d, &r.Port, 1, 65535)},
			{name: "weight", decode: setInt(d, &r.Weight, 1, MaxRealWeight)},
		})
		out = append(out, r)
		locs = append(locs, at{n, path})
	})
	if ok && len(n.Content) == 0 {
		d.errorf(n, path, "at least one real server is required")
	}
	return out, locs
}

// realServerCheck decodes a virtual server's check over its defaults.
func (d *decoder) realServerCheck(n *yaml.Node, path string, c *RealServerCheck) {
	kinds := 0
	vals, ok := d.mapping(n, path, []field{
		{name: "tcp", decode: func(n *yaml.Node, path string) {
			kinds++
			c.TCP, c.HTTP = true, nil
			d.mapping(n, path, nil)
		}},
		{name: "http", decode: func(n *yaml.Node, path string) {
			kinds++
			h := &RealServerHTTP{Path: defaultHTTPPath, Scheme: "http"}
			c.TCP, c.HTTP = false, h
			d.mapping(n, path, []field{
				{name: "path", decode: setString(d, &h.Path, func(s string) error {
					if !strings.HasPrefix(s, "/") {
						return fmt.Errorf("%q does not start with /", short(s))
					}
					return nil
				})},
				{name: "scheme", decode: setString(d, &h.Scheme, oneOf("http", "https"))},
				{name: "host", decode: setString(d, &h.Host, nil)},
				{name: "ca_file", decode: setString(d, &h.CAFile, checkFile)},
				{name: "insecure_skip_verify", decode: setBool(d, &h.InsecureSkipVerify)},
				{name: "expect_status", decode: func(n *yaml.Node, path string) {
					one := func(n *yaml.Node, path string) {
						var code int
						setInt(d, &code, 100, 599)(n, path)
						if code != 0 {
							h.ExpectStatus = append(h.ExpectStatus, code)
						}
					}
					if n.Kind == yaml.ScalarNode {
						one(n, path)
						return
					}
					d.list(n, path, "HTTP status codes", func(_ int, n *yaml.Node, path string) { one(n, path) })
				}},
			})
		}},
		{name: "port", decode: setInt(d, &c.Port, 1, 65535)},
		{name: "interval", decode: setDuration(d, &c.Interval, 10*time.Millisecond, time.Hour, 0)},
		{name: "timeout", decode: setDuration(d, &c.Timeout, time.Millisecond, time.Hour, 0)},
		{name: "fall", decode: setInt(d, &c.Fall, 1, 100)},
		{name: "rise", decode: setInt(d, &c.Rise, 1, 100)},
	})
	if !ok {
		return
	}
	if kinds > 1 {
		d.errorf(n, path, "tcp and http exclude each other: give one")
	}
	if t := vals["timeout"]; t != nil && c.Timeout >= c.Interval {
		d.errorf(t, path+".timeout", "%s must be shorter than the interval (%s)", fmtDuration(c.Timeout), fmtDuration(c.Interval))
		c.Timeout = 0
	}
}

// reducedWeights is the size of a virtual server's map in the kernel: the
// weights divided by their greatest common divisor, added up.
func reducedWeights(rs []RealServer) int {
	g := 0
	for _, r := range rs {
		a, b := g, r.Weight
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	if g == 0 {
		return 0
	}
	total := 0
	for _, r := range rs {
		total += r.Weight / g
	}
	return total
}

// trackVirtualServers decodes an instance's track_virtual_servers.
func (d *decoder) trackVirtualServers(n *yaml.Node, path string, in *Instance) {
	d.tracking(n, path, "virtual_server", checkVSName, func(name string, w int, n *yaml.Node, path string) {
		in.TrackVirtualServers = append(in.TrackVirtualServers, TrackVirtualServer{VirtualServer: name, Weight: w})
		d.lb.tracked = append(d.lb.tracked, trackedAt{name: name, node: n, path: path + ".virtual_server"})
	})
}

// checkVirtualServers checks what spans virtual servers and instances:
// tracked names exist, and a virtual server's address that is no instance's VIP is worth a
// warning.
func (d *decoder) checkVirtualServers(c *Config) {
	defined := map[string]bool{}
	var all []string
	for _, v := range c.VirtualServers {
		if v.Name != "" {
			defined[v.Name] = true
			all = append(all, v.Name)
		}
	}
	for _, t := range d.lb.tracked {
		switch {
		case defined[t.name]:
		case len(all) == 0:
			d.errorf(t.node, t.path, "unknown virtual server %q: no virtual servers are defined (add them under virtual_servers:)", t.name)
		default:
			d.errorf(t.node, t.path, "unknown virtual server %q (defined: %s)", t.name, strings.Join(all, ", "))
		}
	}
	vips := map[netip.Addr]bool{}
	for _, in := range c.Instances {
		for _, p := range in.VIPs {
			vips[p.Addr()] = true
		}
	}
	for i, v := range c.VirtualServers {
		if v.Address.IsValid() && !vips[v.Address] {
			src := d.lb.vss[i]
			d.warnf(src.vals["address"], src.path+".address", "%s is no instance's VIP: it is balanced wherever traffic to it arrives, whichever node is Master", v.Address)
		}
	}
}
