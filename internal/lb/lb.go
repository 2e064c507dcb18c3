package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Protocol is a virtual server's transport protocol, by its IANA number.
type Protocol uint8

// Protocols.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("protocol%d", uint8(p))
}

// Scheduler picks the real server for a new connection.
type Scheduler uint8

// Schedulers, named as in the configuration.
const (
	RoundRobin Scheduler = iota // each real server in turn, by weight
	Random                      // uniformly at random, by weight
	SourceHash                  // by a hash of the client address, by weight
	// LeastConn is the proxy's alone (internal/proxy): the kernel's map
	// cannot count live connections.
	LeastConn // the fewest live connections per unit of weight
)

var schedulerNames = [...]string{
	RoundRobin: "round_robin",
	Random:     "random",
	SourceHash: "source_hash",
	LeastConn:  "least_conn",
}

func (s Scheduler) String() string {
	if int(s) < len(schedulerNames) {
		return schedulerNames[s]
	}
	return fmt.Sprintf("scheduler%d", uint8(s))
}

// ParseScheduler returns the scheduler with the configuration name s.
func ParseScheduler(s string) (Scheduler, error) {
	for i, n := range schedulerNames {
		if n == s {
			return Scheduler(i), nil
		}
	}
	return 0, fmt.Errorf("lb: unknown scheduler %q", s)
}

// VirtualServer is an address, port and protocol whose new connections are
// spread over Backends.
type VirtualServer struct {
	Name      string // unique; names the virtual server's chains and sets
	Addr      netip.Addr
	Port      uint16
	Protocol  Protocol
	Scheduler Scheduler
	// Persistence, when positive, sends a client's new connections to the
	// real server it last used for that long after its last connection
	// (client-address affinity).
	Persistence time.Duration
	// Backends are the real servers that are healthy now. None means new
	// connections are refused.
	Backends []Backend
	// Down are the virtual server's other real servers: out of the
	// schedule (failing their check, or the virtual server below its
	// quorum) but still configured, so that they keep their connection
	// counters. Only Addr and Port matter.
	Down []Backend
}

// Backend is a real server of a virtual server.
type Backend struct {
	Addr netip.Addr
	Port uint16
	// Weight is the real server's share of new connections relative to the
	// others'; 0 takes it out of the schedule (its established connections
	// go on).
	Weight int
	// Local says Addr is an address of this host: the real server then
	// sees the client's address, where a remote one sees this host's.
	Local bool
}

// Connections is how many new connections to a virtual server were sent
// to one of its real servers.
type Connections struct {
	VirtualServer string
	Addr          netip.Addr
	Port          uint16
	Total         uint64
}

// MaxWeight bounds the sum of a virtual server's weights after dividing
// them by their greatest common divisor: it is the size of its map.
const MaxWeight = 1024

// Errors of Validate.
var (
	ErrName   = errors.New("lb: a virtual server's name must be a letter followed by at most 63 letters, digits, '_', '.' or '-'")
	ErrFamily = errors.New("lb: a real server's address family differs from its virtual server's")
)

// validName says whether s is a letter followed by at most 63 letters,
// digits, '_', '.' or '-' (by hand: a regexp's {0,63} compiles to 63
// copies of its class, 60 KB of heap for the life of the daemon).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9') && c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// Validate says what in v the table cannot express.
func (v VirtualServer) Validate() error {
	if !validName(v.Name) {
		return fmt.Errorf("%w: %q", ErrName, v.Name)
	}
	if !v.Addr.IsValid() || v.Addr.Zone() != "" || v.Addr.Is4In6() {
		return fmt.Errorf("lb: virtual server %s: bad address %v", v.Name, v.Addr)
	}
	if v.Port == 0 {
		return fmt.Errorf("lb: virtual server %s: port 0", v.Name)
	}
	if v.Protocol != TCP && v.Protocol != UDP {
		return fmt.Errorf("lb: virtual server %s: unsupported protocol %v", v.Name, v.Protocol)
	}
	if int(v.Scheduler) >= len(schedulerNames) || v.Scheduler == LeastConn {
		return fmt.Errorf("lb: virtual server %s: unknown scheduler %v", v.Name, v.Scheduler)
	}
	if v.Persistence < 0 || (v.Persistence > 0 && v.Persistence < time.Second) {
		return fmt.Errorf("lb: virtual server %s: persistence %v is neither 0 nor at least 1s", v.Name, v.Persistence)
	}
	seen := make(map[netip.AddrPort]bool)
	// Down real servers are only counted: their weight does not matter.
	for i, b := range slices.Concat(v.Backends, v.Down) {
		ap := netip.AddrPortFrom(b.Addr, b.Port)
		switch {
		case !b.Addr.IsValid() || b.Addr.Zone() != "" || b.Addr.Is4In6():
			return fmt.Errorf("lb: virtual server %s: bad real server address %v", v.Name, b.Addr)
		case b.Addr.Is4() != v.Addr.Is4():
			return fmt.Errorf("%w: %s: %v", ErrFamily, v.Name, b.Addr)
		case b.Port == 0:
			return fmt.Errorf("lb: virtual server %s: real server %v: port 0", v.Name, b.Addr)
		case b.Weight < 0 && i < len(v.Backends):
			return fmt.Errorf("lb: virtual server %s: real server %v: negative weight", v.Name, ap)
		case seen[ap]:
			return fmt.Errorf("lb: virtual server %s: real server %v twice", v.Name, ap)
		}
		seen[ap] = true
	}
	if _, n := reduce(v.Backends); n > MaxWeight {
		return fmt.Errorf("lb: virtual server %s: weights add up to %d after reduction, more than %d", v.Name, n, MaxWeight)
	}
	return nil
}

// key identifies a virtual server in the kernel: what the services maps
// are keyed by.
type key struct {
	addr  netip.Addr
	proto Protocol
	port  uint16
}

func (v VirtualServer) key() key { return key{v.Addr, v.Protocol, v.Port} }

// reduce returns bs's weights divided by their greatest common divisor
// (0 for non-positive ones) and their sum.
func reduce(bs []Backend) (w []int, total int) { return Reduce(weightsOf(bs)) }

func weightsOf(bs []Backend) []int {
	ws := make([]int, len(bs))
	for i, b := range bs {
		ws[i] = b.Weight
	}
	return ws
}

// Reduce returns the weights ws divided by their greatest common divisor
// (0 for non-positive ones) and their sum.
func Reduce(ws []int) (w []int, total int) {
	g := 0
	for _, x := range ws {
		if x > 0 {
			g = gcd(g, x)
		}
	}
	w = make([]int, len(ws))
	if g == 0 {
		return w, 0
	}
	for i, x := range ws {
		if x > 0 {
			w[i] = x / g
			total += w[i]
		}
	}
	return w, total
}

// Schedule returns the order of a weighted schedule over ws: the index of
// each weight w > 0 w/g times, g the weights' greatest common divisor,
// interleaved smoothly (nginx's weighted round robin), so that weights 2
// and 1 go A, B, A rather than A, A, B. The nat map and the proxy both
// follow it.
func Schedule(ws []int) []int {
	w, total := Reduce(ws)
	cur := make([]int, len(w))
	out := make([]int, 0, total)
	for range total {
		best := -1
		for i := range w {
			if w[i] == 0 {
				continue
			}
			cur[i] += w[i]
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, best)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Validate checks every virtual server and that no two share a name or an
// address, port and protocol.
func Validate(vss []VirtualServer) error {
	names := make(map[string]bool)
	keys := make(map[key]string)
	for _, v := range vss {
		if err := v.Validate(); err != nil {
			return err
		}
		if names[v.Name] {
			return fmt.Errorf("lb: two virtual servers named %s", v.Name)
		}
		names[v.Name] = true
		if other, ok := keys[v.key()]; ok {
			return fmt.Errorf("lb: virtual servers %s and %s are both %v %v port %d", other, v.Name, v.Protocol, v.Addr, v.Port)
		}
		keys[v.key()] = v.Name
	}
	return nil
}
