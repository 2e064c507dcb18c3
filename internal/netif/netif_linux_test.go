package netif

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/sys/unix"
)

// dummy creates a namespace with an up veth interface d0 (its peer p0, also
// up, in the same namespace) holding addrs (in order) and returns the
// namespace and d0's Link as seen from inside it.
func dummy(t *testing.T, addrs ...string) (string, Link) {
	t.Helper()
	testenv.Privileged(t)
	ns := testenv.Netns(t, "netif")
	testenv.IP(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "p0")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "address", "02:00:00:00:00:01", "up")
	testenv.WaitLink(t, ns, "d0", "UP")
	for _, a := range addrs {
		testenv.IP(t, append([]string{"-n", ns, "addr", "add"}, append(strings.Fields(a), "dev", "d0")...)...)
	}
	var (
		l   Link
		err error
	)
	testenv.Do(t, ns, func() { l, err = LinkByName("d0") })
	if err != nil {
		t.Fatal(err)
	}
	return ns, l
}

func TestLinkByName(t *testing.T) {
	ns, l := dummy(t)
	if l.Name != "d0" || l.Index <= 1 || l.HardwareAddr.String() != "02:00:00:00:00:01" || !l.Up {
		t.Errorf("LinkByName(d0) = %+v, want d0, index > 1, 02:00:00:00:00:01, up", l)
	}
	var err error
	// Administratively up but without carrier (the veth peer is down) is
	// not up.
	testenv.IP(t, "-n", ns, "link", "set", "p0", "down")
	testenv.WaitLink(t, ns, "d0", "LOWERLAYERDOWN")
	testenv.Do(t, ns, func() { l, err = LinkByName("d0") })
	if err != nil || l.Up {
		t.Errorf("peer down: LinkByName(d0) = %+v, %v; want Up false", l, err)
	}
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.WaitLink(t, ns, "d0", "UP")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "down")
	testenv.WaitLink(t, ns, "d0", "DOWN")
	testenv.Do(t, ns, func() { l, err = LinkByName("d0") })
	if err != nil || l.Up {
		t.Errorf("link down: LinkByName(d0) = %+v, %v; want Up false", l, err)
	}
	testenv.Do(t, ns, func() { _, err = LinkByName("nosuch0") })
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("LinkByName(nosuch0) error = %v, want one naming nosuch0", err)
	}
}

// ipAddr is the part of `ip -j addr show` the tests look at.
type ipAddr struct {
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Secondary bool   `json:"secondary"`
	Dynamic   bool   `json:"dynamic"`
	ValidLft  uint32 `json:"valid_life_time"`
}

func ipAddrs(t *testing.T, ns string) []ipAddr {
	t.Helper()
	var links []struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}
	out := testenv.IP(t, "-n", ns, "-j", "-4", "addr", "show", "dev", "d0")
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j addr show: %v: %s", err, out)
	}
	return links[0].AddrInfo
}

func TestAddrsAddRemoveIdempotent(t *testing.T) {
	ns, l := dummy(t, "192.0.2.1/24")
	var (
		a   *Addrs
		err error
	)
	// Opened inside the namespace, used from outside it: the netlink socket
	// stays in the namespace it was opened in.
	testenv.Do(t, ns, func() { a, err = NewAddrs() })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	vip := netip.MustParsePrefix("192.0.2.50/24")
	has := func(p netip.Prefix, want bool) {
		t.Helper()
		got, err := a.Has(l.Index, p)
		if err != nil || got != want {
			t.Fatalf("Has(%v) = %v, %v; want %v", p, got, err, want)
		}
	}
	has(vip, false)
	for i := range 2 {
		if err := a.Add(l.Index, vip); err != nil {
			t.Fatalf("Add #%d: %v", i+1, err)
		}
	}
	has(vip, true)
	has(netip.MustParsePrefix("192.0.2.50/32"), false) // prefix length counts
	has(netip.MustParsePrefix("192.0.2.51/24"), false)

	var found bool
	for _, x := range ipAddrs(t, ns) {
		if x.Local != "192.0.2.50" {
			continue
		}
		found = true
		if x.PrefixLen != 24 || x.Scope != "global" || x.Dynamic || x.ValidLft != 0xffffffff || !x.Secondary {
			t.Errorf("VIP as ip(8) shows it: %+v; want /24, scope global, permanent (valid forever), secondary", x)
		}
	}
	if !found {
		t.Fatalf("ip addr show lacks the VIP: %+v", ipAddrs(t, ns))
	}

	for i := range 2 {
		if err := a.Remove(l.Index, vip); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	has(vip, false)
	has(netip.MustParsePrefix("192.0.2.1/24"), true) // the configured address survives
}

func TestAddrsAddSameAddressOtherLength(t *testing.T) {
	ns, l := dummy(t, "192.0.2.1/24")
	var (
		a   *Addrs
		err error
	)
	testenv.Do(t, ns, func() { a, err = NewAddrs() })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// IPv4 keeps 192.0.2.50/32 and /24 as two addresses; each is its own VIP.
	p24, p32 := netip.MustParsePrefix("192.0.2.50/24"), netip.MustParsePrefix("192.0.2.50/32")
	for _, p := range []netip.Prefix{p24, p32} {
		if err := a.Add(l.Index, p); err != nil {
			t.Fatalf("Add(%v): %v", p, err)
		}
	}
	if err := a.Remove(l.Index, p32); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Has(l.Index, p24); err != nil || !ok {
		t.Errorf("after removing %v: Has(%v) = %v, %v; want true", p32, p24, ok, err)
	}
}

func TestPrimaryIPv4(t *testing.T) {
	vips := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.50/24"),
		netip.MustParsePrefix("198.51.100.50/24"),
	}
	tests := []struct {
		name    string
		addrs   []string // in the order they are added
		exclude []netip.Prefix
		want    string // "" for an error
	}{
		{
			name:    "same-subnet VIP after the configured address",
			addrs:   []string{"192.0.2.1/24", "192.0.2.50/24"},
			exclude: vips,
			want:    "192.0.2.1",
		},
		{
			name:    "VIP in its own subnet is a primary, excluded",
			addrs:   []string{"198.51.100.50/24", "192.0.2.1/24"},
			exclude: vips,
			want:    "192.0.2.1",
		},
		{
			name:  "without exclude the VIP in its own subnet counts",
			addrs: []string{"198.51.100.50/24", "192.0.2.1/24"},
			want:  "198.51.100.50",
		},
		{
			name:    "scope global preferred over scope link",
			addrs:   []string{"198.51.100.7/24 scope link", "192.0.2.1/24"},
			exclude: vips,
			want:    "192.0.2.1",
		},
		{
			name:    "scope link when nothing else",
			addrs:   []string{"198.51.100.7/24 scope link"},
			exclude: vips,
			want:    "198.51.100.7",
		},
		{
			name:    "VIP added first made the configured address secondary",
			addrs:   []string{"192.0.2.50/24", "192.0.2.1/24"},
			exclude: vips,
			want:    "192.0.2.1",
		},
		{
			name:    "secondary loses to a primary",
			addrs:   []string{"192.0.2.50/24", "192.0.2.1/24", "198.51.100.9/24"},
			exclude: vips,
			want:    "198.51.100.9",
		},
		{
			name:    "only VIPs",
			addrs:   []string{"192.0.2.50/24", "198.51.100.50/24"},
			exclude: vips,
		},
		{
			name: "no address at all",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, l := dummy(t, tt.addrs...)
			var (
				got netip.Addr
				err error
			)
			testenv.Do(t, ns, func() { got, err = PrimaryIPv4(l.Index, tt.exclude) })
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "d0") {
					t.Fatalf("PrimaryIPv4 = %v, %v; want an error naming d0", got, err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("PrimaryIPv4 = %v, %v; want %s (addresses %+v)", got, err, tt.want, ipAddrs(t, ns))
			}
		})
	}
}

func TestPrimaryIPv4AfterAdd(t *testing.T) {
	ns, l := dummy(t, "192.0.2.1/24")
	vip := netip.MustParsePrefix("192.0.2.50/24")
	testenv.Do(t, ns, func() {
		a, err := NewAddrs()
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		if err := a.Add(l.Index, vip); err != nil {
			t.Error(err)
			return
		}
		for _, exclude := range [][]netip.Prefix{nil, {vip}} {
			got, err := PrimaryIPv4(l.Index, exclude)
			if err != nil || got != netip.MustParseAddr("192.0.2.1") {
				t.Errorf("PrimaryIPv4(exclude %v) = %v, %v; want 192.0.2.1", exclude, got, err)
			}
		}
	})
}

func TestVIPForm(t *testing.T) {
	for _, tt := range []struct {
		p     string
		flags int
		mask  string
	}{
		{"192.0.2.50/24", unix.IFA_F_PERMANENT, "ffffff00"},
		{"192.0.2.50/32", unix.IFA_F_PERMANENT, "ffffffff"},
		// IPv6 VIPs skip duplicate address detection.
		{"2001:db8::50/64", unix.IFA_F_PERMANENT | unix.IFA_F_NODAD, "ffffffffffffffff0000000000000000"},
	} {
		a, err := vip(7, netip.MustParsePrefix(tt.p))
		if err != nil {
			t.Fatalf("vip(%s): %v", tt.p, err)
		}
		if a.Flags != tt.flags || a.Scope != unix.RT_SCOPE_UNIVERSE || a.LinkIndex != 7 || a.Mask.String() != tt.mask || a.Label != "" {
			t.Errorf("vip(%s) = %+v; want flags %#x, scope global, index 7, mask %s", tt.p, a, tt.flags, tt.mask)
		}
	}
	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:192.0.2.1/128")} {
		if _, err := vip(7, bad); err == nil {
			t.Errorf("vip(%v) succeeded, want an error", bad)
		}
	}
}

// A VIP left by a crashed run before the host's own address came up is the
// primary of its subnet; removing it must not take the host's address along.
func TestPromoteSecondariesKeepsHostAddress(t *testing.T) {
	ns, l := dummy(t, "192.0.2.50/24", "192.0.2.11/24")
	var a *Addrs
	var err error
	testenv.Do(t, ns, func() {
		if err = PromoteSecondaries("d0"); err != nil {
			return
		}
		if a, err = NewAddrs(); err != nil {
			return
		}
		defer a.Close()
		err = a.Remove(l.Index, netip.MustParsePrefix("192.0.2.50/24"))
	})
	if err != nil {
		t.Fatal(err)
	}
	out := testenv.IP(t, "-n", ns, "-4", "-br", "addr", "show", "dev", "d0")
	if !strings.Contains(out, "192.0.2.11/24") || strings.Contains(out, "192.0.2.50") {
		t.Fatalf("after removing the primary VIP: %q; want 192.0.2.11/24 alone", out)
	}
	if err := PromoteSecondaries("../x"); err == nil {
		t.Error("PromoteSecondaries accepted a path as an interface name")
	}
}
