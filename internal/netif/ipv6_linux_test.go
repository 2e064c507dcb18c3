package netif

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nladdr is a netlink address for the pure pickers' tables.
func nladdr(s string, scope, flags int) netlink.Addr {
	p := netip.MustParsePrefix(s)
	return netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)},
		Scope: scope,
		Flags: flags,
	}
}

const (
	global = unix.RT_SCOPE_UNIVERSE
	link   = unix.RT_SCOPE_LINK
	perm   = unix.IFA_F_PERMANENT
	tent   = unix.IFA_F_TENTATIVE
	failed = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED
	optim  = unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC
)

func TestPickLinkLocal(t *testing.T) {
	tests := []struct {
		name    string
		as      []netlink.Addr
		want    string
		wantErr error
	}{
		{"usable", []netlink.Addr{nladdr("2001:db8::1/64", global, perm), nladdr("fe80::1/64", link, perm)}, "fe80::1", nil},
		{"first usable of several", []netlink.Addr{nladdr("fe80::2/64", link, tent), nladdr("fe80::1/64", link, perm), nladdr("fe80::3/64", link, perm)}, "fe80::1", nil},
		{"optimistic is usable", []netlink.Addr{nladdr("fe80::1/64", link, perm|optim)}, "fe80::1", nil},
		{"tentative", []netlink.Addr{nladdr("fe80::1/64", link, perm|tent)}, "", ErrTentative},
		{"tentative beats dadfailed: it may still work", []netlink.Addr{nladdr("fe80::1/64", link, failed), nladdr("fe80::2/64", link, tent)}, "", ErrTentative},
		{"dadfailed", []netlink.Addr{nladdr("fe80::1/64", link, perm|failed)}, "", ErrNoLinkLocal},
		{"optimistic but dadfailed", []netlink.Addr{nladdr("fe80::1/64", link, optim|unix.IFA_F_DADFAILED)}, "", ErrNoLinkLocal},
		{"global only", []netlink.Addr{nladdr("2001:db8::1/64", global, perm)}, "", ErrNoLinkLocal},
		{"none", nil, "", ErrNoLinkLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickLinkLocal(tt.as)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got.IsValid() {
					t.Fatalf("pickLinkLocal = %v, %v; want an error wrapping %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("pickLinkLocal = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
	// The errors name the address and say what is wrong with it.
	_, err := pickLinkLocal([]netlink.Addr{nladdr("fe80::1/64", link, failed)})
	if err == nil || !strings.Contains(err.Error(), "fe80::1") || !strings.Contains(err.Error(), "duplicate address detection failed") {
		t.Errorf("dadfailed error = %v; want it to name fe80::1 and the failure", err)
	}
}

func TestPickPrimaryIPv6(t *testing.T) {
	vips := []netip.Prefix{netip.MustParsePrefix("2001:db8::50/64")}
	tests := []struct {
		name string
		as   []netlink.Addr // in the kernel's order: newest first
		want string         // "" for none
	}{
		{"oldest wins", []netlink.Addr{nladdr("2001:db8::3/64", global, perm), nladdr("2001:db8::2/64", global, perm), nladdr("fe80::1/64", link, perm)}, "2001:db8::2"},
		{"VIP excluded", []netlink.Addr{nladdr("2001:db8::1/64", global, perm), nladdr("2001:db8::50/64", global, perm|unix.IFA_F_NODAD)}, "2001:db8::1"},
		{"VIP excluded whatever its length", []netlink.Addr{nladdr("2001:db8::50/128", global, perm)}, ""},
		{"tentative skipped", []netlink.Addr{nladdr("2001:db8::1/64", global, perm), nladdr("2001:db8::2/64", global, perm|tent)}, "2001:db8::1"},
		{"optimistic used", []netlink.Addr{nladdr("2001:db8::2/64", global, perm|optim)}, "2001:db8::2"},
		{"dadfailed skipped", []netlink.Addr{nladdr("2001:db8::2/64", global, perm|failed)}, ""},
		{"deprecated skipped", []netlink.Addr{nladdr("2001:db8::1/64", global, 0), nladdr("2001:db8::2/64", global, unix.IFA_F_DEPRECATED)}, "2001:db8::1"},
		{"temporary skipped", []netlink.Addr{nladdr("2001:db8::1/64", global, 0), nladdr("2001:db8::2/64", global, unix.IFA_F_TEMPORARY)}, "2001:db8::1"},
		{"link-local is not global", []netlink.Addr{nladdr("fe80::1/64", link, perm)}, ""},
		{"host scope is not global", []netlink.Addr{nladdr("::1/128", unix.RT_SCOPE_HOST, perm)}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pickPrimaryIPv6(tt.as, vips)
			if tt.want == "" {
				if ok {
					t.Fatalf("pickPrimaryIPv6 = %v; want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("pickPrimaryIPv6 = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

// ip6Addr is the part of `ip -j -6 addr show` the tests look at.
type ip6Addr struct {
	Local      string `json:"local"`
	PrefixLen  int    `json:"prefixlen"`
	Scope      string `json:"scope"`
	Tentative  bool   `json:"tentative"`
	DADFailed  bool   `json:"dadfailed"`
	Optimistic bool   `json:"optimistic"`
	NoDAD      bool   `json:"nodad"`
	Deprecated bool   `json:"deprecated"`
	Dynamic    bool   `json:"dynamic"`
	ValidLft   uint32 `json:"valid_life_time"`
}

func ip6Addrs(t *testing.T, ns, dev string) []ip6Addr {
	t.Helper()
	var links []struct {
		AddrInfo []ip6Addr `json:"addr_info"`
	}
	out := testenv.IP(t, "-n", ns, "-j", "-6", "addr", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j -6 addr show: %v: %s", err, out)
	}
	return links[0].AddrInfo
}

func ip6Addr1(t *testing.T, ns, dev, addr string) (ip6Addr, bool) {
	t.Helper()
	for _, a := range ip6Addrs(t, ns, dev) {
		if a.Local == addr {
			return a, true
		}
	}
	return ip6Addr{}, false
}

func TestAddrsIPv6VIP(t *testing.T) {
	ns, l := dummy(t, "2001:db8::1/64 nodad")
	var (
		a   *Addrs
		err error
	)
	testenv.Do(t, ns, func() { a, err = NewAddrs() })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	vip := netip.MustParsePrefix("2001:db8::50/64")
	has := func(p netip.Prefix, want bool) {
		t.Helper()
		if got, err := a.Has(l.Index, p); err != nil || got != want {
			t.Fatalf("Has(%v) = %v, %v; want %v", p, got, err, want)
		}
	}
	has(vip, false)
	for i := range 2 {
		if err := a.Add(l.Index, vip); err != nil {
			t.Fatalf("Add #%d: %v", i+1, err)
		}
	}
	// Usable at once: a socket can bind to it right after Add, which the
	// kernel refuses for a tentative address (see below).
	testenv.Do(t, ns, func() {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp6", "[2001:db8::50]:0"); err == nil {
			c.Close()
		}
	})
	if err != nil {
		t.Errorf("bind to the VIP right after Add: %v", err)
	}
	got, ok := ip6Addr1(t, ns, "d0", "2001:db8::50")
	if want := (ip6Addr{Local: "2001:db8::50", PrefixLen: 64, Scope: "global", NoDAD: true, ValidLft: 0xffffffff}); !ok || got != want {
		t.Errorf("VIP as ip(8) shows it: %+v (found %v); want %+v", got, ok, want)
	}
	has(vip, true)
	has(netip.MustParsePrefix("2001:db8::50/128"), false)
	// IPv6 keeps one address whatever its length: the same address with
	// another length cannot be a second VIP.
	if err := a.Add(l.Index, netip.MustParsePrefix("2001:db8::50/128")); err == nil || !errors.Is(err, unix.EEXIST) {
		t.Errorf("Add(/128) over /64 = %v; want EEXIST, present with another prefix length", err)
	}
	for i := range 2 {
		if err := a.Remove(l.Index, vip); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	has(vip, false)
	has(netip.MustParsePrefix("2001:db8::1/64"), true)
}

// TestTentativeRefusedAsSource is the contrast for the VIP test above and
// the reason LinkLocalIPv6 skips tentative addresses: an address added with
// DAD cannot be bound to (EADDRNOTAVAIL) until DAD completes.
func TestTentativeRefusedAsSource(t *testing.T) {
	ns, _ := dummy(t)
	// One probe a minute: DAD cannot complete during the test.
	testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.d0.dad_transmits=60")
	testenv.IP(t, "-n", ns, "addr", "add", "2001:db8::7/64", "dev", "d0")
	if a, ok := ip6Addr1(t, ns, "d0", "2001:db8::7"); !ok || !a.Tentative {
		t.Fatalf("address added with DAD: %+v; want tentative", a)
	}
	var err error
	testenv.Do(t, ns, func() {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp6", "[2001:db8::7]:0"); err == nil {
			c.Close()
		}
	})
	if !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("bind to a tentative address: %v; want EADDRNOTAVAIL", err)
	}
}

// freshVeth creates ns's veth d0 (MAC 02:00:00:00:00:01) and its peer p0,
// both down, with DAD at the kernel's defaults, and returns d0's index.
func freshVeth(t *testing.T, ns string) int {
	t.Helper()
	testenv.IP(t, "-n", ns, "link", "add", "d0", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "p0")
	var (
		l   Link
		err error
	)
	testenv.Do(t, ns, func() { l, err = LinkByName("d0") })
	if err != nil {
		t.Fatal(err)
	}
	return l.Index
}

// TestLinkLocalIPv6DAD follows a fresh interface's link-local address
// through duplicate address detection at the kernel's default timers: first
// absent (no carrier yet), then tentative (for at least the one-second
// RetransTimer), then returned.
func TestLinkLocalIPv6DAD(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.Netns(t, "netif")
	ifindex := freshVeth(t, ns)
	var (
		a   *Addrs
		err error
	)
	// Opened inside the namespace, asked from outside it.
	testenv.Do(t, ns, func() { a, err = NewAddrs() })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if _, err := a.LinkLocalIPv6(ifindex); !errors.Is(err, ErrNoLinkLocal) || !strings.Contains(err.Error(), "d0") {
		t.Fatalf("link down: LinkLocalIPv6 error = %v; want ErrNoLinkLocal naming d0", err)
	}
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "up")

	var (
		got        netip.Addr
		sawTent    bool
		tentSince  time.Time
		start      = time.Now()
		lastErr    error
		pollPeriod = 10 * time.Millisecond
	)
	for time.Since(start) < 6*time.Second {
		got, err = a.LinkLocalIPv6(ifindex)
		if err == nil {
			break
		}
		lastErr = err
		switch {
		case errors.Is(err, ErrTentative):
			if !sawTent {
				sawTent, tentSince = true, time.Now()
				// The kernel agrees: the address is tentative.
				if ll := linkLocals(t, ns); len(ll) != 1 || !ll[0].Tentative {
					t.Errorf("LinkLocalIPv6 says tentative, ip(8) shows %+v", ll)
				}
			}
		case errors.Is(err, ErrNoLinkLocal):
			if sawTent {
				t.Fatalf("the link-local vanished after being tentative: %v", err)
			}
		default:
			t.Fatal(err)
		}
		time.Sleep(pollPeriod)
	}
	if err != nil {
		t.Fatalf("no link-local after 6s: %v (last %v)", err, lastErr)
	}
	if !sawTent {
		t.Fatalf("LinkLocalIPv6 returned %v without ever reporting it tentative", got)
	}
	t.Logf("tentative for about %v", time.Since(tentSince).Round(10*time.Millisecond))
	ll := linkLocals(t, ns)
	if len(ll) != 1 || ll[0].Local != got.String() || ll[0].Tentative || ll[0].Scope != "link" {
		t.Errorf("LinkLocalIPv6 = %v; ip(8) shows %+v", got, ll)
	}
	// The package-level function, in the namespace, agrees.
	var got2 netip.Addr
	testenv.Do(t, ns, func() { got2, err = LinkLocalIPv6(ifindex) })
	if err != nil || got2 != got {
		t.Errorf("LinkLocalIPv6 in the namespace = %v, %v; want %v", got2, err, got)
	}
}

func linkLocals(t *testing.T, ns string) []ip6Addr {
	t.Helper()
	var ll []ip6Addr
	for _, a := range ip6Addrs(t, ns, "d0") {
		if strings.HasPrefix(a.Local, "fe80:") {
			ll = append(ll, a)
		}
	}
	return ll
}

// TestLinkLocalIPv6Optimistic: with optimistic DAD (RFC 4429) the address is
// usable while DAD runs, as the kernel lets it be a source.
func TestLinkLocalIPv6Optimistic(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.Netns(t, "netif")
	ifindex := freshVeth(t, ns)
	testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.d0.optimistic_dad=1", "net.ipv6.conf.d0.dad_transmits=60")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "up")
	testenv.WaitLink(t, ns, "d0", "UP")
	var (
		got netip.Addr
		err error
	)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		testenv.Do(t, ns, func() { got, err = LinkLocalIPv6(ifindex) })
		if !errors.Is(err, ErrNoLinkLocal) { // not created yet
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("optimistic link-local: %v", err)
	}
	ll := linkLocals(t, ns)
	if len(ll) != 1 || ll[0].Local != got.String() || !ll[0].Optimistic || !ll[0].Tentative {
		t.Errorf("LinkLocalIPv6 = %v; ip(8) shows %+v, want it optimistic and tentative", got, ll)
	}
}

func TestLinkLocalIPv6Missing(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.Netns(t, "netif")
	ifindex := freshVeth(t, ns)
	testenv.IP(t, "-n", ns, "link", "set", "d0", "addrgenmode", "none")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "up")
	testenv.WaitLink(t, ns, "d0", "UP")
	testenv.IP(t, "-n", ns, "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad")
	var err error
	testenv.Do(t, ns, func() { _, err = LinkLocalIPv6(ifindex) })
	if !errors.Is(err, ErrNoLinkLocal) || errors.Is(err, ErrTentative) || !strings.Contains(err.Error(), "d0") {
		t.Errorf("no link-local: %v; want ErrNoLinkLocal naming d0", err)
	}
}

// TestLinkLocalIPv6DADFailed: p0 already holds fe80::1, so DAD for d0's
// fe80::1 fails; the kernel keeps the address, flagged dadfailed.
func TestLinkLocalIPv6DADFailed(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.Netns(t, "netif")
	ifindex := freshVeth(t, ns)
	testenv.IP(t, "-n", ns, "link", "set", "d0", "addrgenmode", "none")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "up")
	testenv.WaitLink(t, ns, "d0", "UP")
	testenv.WaitLink(t, ns, "p0", "UP")
	testenv.IP(t, "-n", ns, "addr", "add", "fe80::1/64", "dev", "p0", "nodad")
	testenv.IP(t, "-n", ns, "addr", "add", "fe80::1/64", "dev", "d0")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if a, ok := ip6Addr1(t, ns, "d0", "fe80::1"); ok && a.DADFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DAD did not fail within 5s: %+v", ip6Addrs(t, ns, "d0"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var err error
	testenv.Do(t, ns, func() { _, err = LinkLocalIPv6(ifindex) })
	if !errors.Is(err, ErrNoLinkLocal) || !strings.Contains(err.Error(), "duplicate address detection failed") {
		t.Errorf("dadfailed link-local: %v; want ErrNoLinkLocal saying DAD failed", err)
	}
}

func TestPrimaryIPv6(t *testing.T) {
	vips := []netip.Prefix{
		netip.MustParsePrefix("2001:db8::50/64"),
		netip.MustParsePrefix("2001:db8:1::50/64"),
	}
	tests := []struct {
		name    string
		addrs   []string // in the order they are added
		exclude []netip.Prefix
		want    string // "" for an error
	}{
		{"oldest of several", []string{"2001:db8::1/64 nodad", "2001:db8::2/64 nodad", "2001:db8:1::3/64 nodad"}, vips, "2001:db8::1"},
		{"VIP added later excluded", []string{"2001:db8::1/64 nodad", "2001:db8::50/64 nodad"}, vips, "2001:db8::1"},
		{"VIP added first excluded", []string{"2001:db8::50/64 nodad", "2001:db8::1/64 nodad"}, vips, "2001:db8::1"},
		{"without exclude the VIP counts", []string{"2001:db8::50/64 nodad", "2001:db8::1/64 nodad"}, nil, "2001:db8::50"},
		{"deprecated skipped", []string{"2001:db8::7/64 nodad preferred_lft 0", "2001:db8::1/64 nodad"}, vips, "2001:db8::1"},
		{"only deprecated", []string{"2001:db8::7/64 nodad preferred_lft 0"}, vips, ""},
		{"only VIPs", []string{"2001:db8::50/64 nodad", "2001:db8:1::50/64 nodad"}, vips, ""},
		{"link-local only", nil, vips, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, l := dummy(t, tt.addrs...)
			var (
				got netip.Addr
				err error
			)
			testenv.Do(t, ns, func() { got, err = PrimaryIPv6(l.Index, tt.exclude) })
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "d0") {
					t.Fatalf("PrimaryIPv6 = %v, %v; want an error naming d0", got, err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("PrimaryIPv6 = %v, %v; want %s (addresses %+v)", got, err, tt.want, ip6Addrs(t, ns, "d0"))
			}
		})
	}
}

func TestPrimaryIPv6SkipsTentative(t *testing.T) {
	ns, l := dummy(t)
	// One probe a minute: DAD cannot complete during the test.
	testenv.IP(t, "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.d0.dad_transmits=60")
	testenv.IP(t, "-n", ns, "addr", "add", "2001:db8::7/64", "dev", "d0") // the oldest
	testenv.IP(t, "-n", ns, "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad")
	if a, ok := ip6Addr1(t, ns, "d0", "2001:db8::7"); !ok || !a.Tentative {
		t.Fatalf("2001:db8::7: %+v; want tentative", a)
	}
	var (
		got netip.Addr
		err error
	)
	testenv.Do(t, ns, func() { got, err = PrimaryIPv6(l.Index, nil) })
	if err != nil || got != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("PrimaryIPv6 = %v, %v; want 2001:db8::1, not the older but tentative 2001:db8::7", got, err)
	}
}

func TestPrimaryIPv6AfterAdd(t *testing.T) {
	ns, l := dummy(t, "2001:db8::1/64 nodad")
	vip := netip.MustParsePrefix("2001:db8::50/64")
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
			got, err := PrimaryIPv6(l.Index, exclude)
			if err != nil || got != netip.MustParseAddr("2001:db8::1") {
				t.Errorf("PrimaryIPv6(exclude %v) = %v, %v; want 2001:db8::1", exclude, got, err)
			}
		}
	})
}
