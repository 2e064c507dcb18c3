package netif

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/testenv"
)

// AddNonSource keeps a VIP out of the kernel's source address selection:
// a /32 inside the interface's subnet becomes a secondary of that subnet,
// one outside it stays a /32, an IPv6 VIP is deprecated; Remove finds
// each whatever its length; and the host's own traffic keeps its address.
func TestAddNonSource(t *testing.T) {
	ns, l := dummy(t, "192.0.2.11/24", "2001:db8::11/64 nodad")
	testenv.IP(t, "-n", ns, "route", "add", "default", "via", "192.0.2.1")
	var (
		a   *Addrs
		err error
	)
	testenv.Do(t, ns, func() { a, err = NewAddrs() })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	inside, outside := netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("203.0.113.5/32")
	v6 := netip.MustParsePrefix("2001:db8::50/128")
	for _, p := range []netip.Prefix{outside, inside, v6} { // outside first: it must not become inside's subnet
		for i := range 2 {
			if err := a.AddNonSource(l.Index, p); err != nil {
				t.Fatalf("AddNonSource(%v) #%d: %v", p, i+1, err)
			}
		}
	}
	got := map[string]ipAddr{}
	for _, x := range ipAddrs(t, ns) {
		got[x.Local] = x
	}
	if x := got["192.0.2.50"]; x.PrefixLen != 24 || !x.Secondary {
		t.Errorf("192.0.2.50 is %+v, want a /24 secondary", x)
	}
	if x := got["203.0.113.5"]; x.PrefixLen != 32 {
		t.Errorf("203.0.113.5 is %+v, want /32 as configured", x)
	}
	if x, ok := ip6Addr1(t, ns, "d0", "2001:db8::50"); !ok || !x.Deprecated || x.ValidLft != 0xffffffff {
		t.Errorf("2001:db8::50 is %+v, want deprecated and valid forever", x)
	}
	// The host's traffic leaves from its own addresses.
	if out := testenv.IP(t, "-n", ns, "route", "get", "198.51.100.7"); !strings.Contains(out, "src 192.0.2.11") {
		t.Errorf("route get 198.51.100.7: %s; want src 192.0.2.11", out)
	}
	if out := testenv.IP(t, "-n", ns, "-6", "route", "get", "2001:db8::99"); !strings.Contains(out, "src 2001:db8::11") {
		t.Errorf("route get 2001:db8::99: %s; want src 2001:db8::11", out)
	}

	for _, p := range []netip.Prefix{inside, outside, v6} {
		for i := range 2 {
			if err := a.Remove(l.Index, p); err != nil {
				t.Fatalf("Remove(%v) #%d: %v", p, i+1, err)
			}
		}
	}
	for _, x := range ipAddrs(t, ns) {
		if x.Local != "192.0.2.11" {
			t.Errorf("left behind: %+v", x)
		}
	}
	if _, ok := ip6Addr1(t, ns, "d0", "2001:db8::50"); ok {
		t.Error("2001:db8::50 left behind")
	}
}
