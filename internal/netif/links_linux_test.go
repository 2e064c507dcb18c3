package netif

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"golang.org/x/sys/unix"
)

// subscribe runs sub (SubscribeLinks or SubscribeAddrs) with its socket
// opened in ns and returns what it reports. When the test ends the
// subscription is cancelled and must return nil promptly.
func subscribe[T any](t *testing.T, ns string, sub func(context.Context, func(T)) error) <-chan T {
	t.Helper()
	updates := make(chan T, 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The subscription's socket is opened in ns, on Do's thread; the loop
	// then runs anywhere.
	started := make(chan struct{})
	go testenv.Do(t, ns, func() {
		close(started)
		done <- sub(ctx, func(u T) {
			select {
			case updates <- u:
			case <-ctx.Done():
			}
		})
	})
	<-started
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("subscription ended with %v; want nil after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("subscription did not return within 5s of cancel")
		}
	})
	return updates
}

// await reads updates until one satisfies ok, for up to 5s, and returns it.
func await[T any](t *testing.T, updates <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-updates:
			if ok(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("no update within 5s: %s", what)
		}
	}
}

func TestSubscribeLinks(t *testing.T) {
	ns, _ := dummy(t)
	updates := subscribe(t, ns, SubscribeLinks)
	want := func(up bool) {
		t.Helper()
		await(t, updates, "d0 up="+map[bool]string{true: "true", false: "false"}[up], func(l Link) bool {
			return l.Name == "d0" && l.Up == up && !l.Deleted
		})
	}
	want(true) // the existing link, listed at once
	testenv.IP(t, "-n", ns, "link", "set", "p0", "down")
	want(false) // carrier lost
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	want(true)
}

// TestSubscribeLinksDeleted: a deleted link is reported Deleted (and not
// Up); created again under the same name it has a new index, reported as an
// ordinary link that comes up.
func TestSubscribeLinksDeleted(t *testing.T) {
	ns, old := dummy(t)
	updates := subscribe(t, ns, SubscribeLinks)
	await(t, updates, "d0 listed up", func(l Link) bool { return l.Name == "d0" && l.Up })

	testenv.IP(t, "-n", ns, "link", "del", "d0") // takes its peer p0 along
	del := await(t, updates, "d0 deleted", func(l Link) bool { return l.Name == "d0" && l.Deleted })
	if del.Index != old.Index || del.Up {
		t.Errorf("deletion reported as %+v; want index %d, Up false", del, old.Index)
	}

	testenv.IP(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "p0")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "d0", "up")
	again := await(t, updates, "d0 re-created and up", func(l Link) bool { return l.Name == "d0" && l.Up })
	if again.Index == old.Index || again.Deleted {
		t.Errorf("re-created d0 reported as %+v; want a new index (the old was %d), not Deleted", again, old.Index)
	}
	var now Link
	var err error
	testenv.Do(t, ns, func() { now, err = LinkByName("d0") })
	if err != nil || now.Index != again.Index {
		t.Errorf("LinkByName(d0) = %+v, %v; want index %d as reported", now, err, again.Index)
	}
}

// TestSubscribeLinksBridgePortLeaves: a port leaving a bridge makes the
// bridge send an RTM_DELLINK of family AF_BRIDGE for the port, which still
// exists: not a deletion.
func TestSubscribeLinksBridgePortLeaves(t *testing.T) {
	ns, _ := dummy(t)
	testenv.IP(t, "-n", ns, "link", "add", "br0", "type", "bridge")
	testenv.IP(t, "-n", ns, "link", "set", "br0", "up")
	testenv.IP(t, "-n", ns, "link", "set", "p0", "master", "br0")
	testenv.IP(t, "-n", ns, "link", "add", "m0", "type", "veth", "peer", "name", "m1")
	updates := subscribe(t, ns, SubscribeLinks)
	await(t, updates, "m0 listed", func(l Link) bool { return l.Name == "m0" })

	testenv.IP(t, "-n", ns, "link", "set", "p0", "nomaster")
	testenv.IP(t, "-n", ns, "link", "del", "m0") // a marker: everything before it has been reported
	await(t, updates, "p0 reported after leaving br0", func(l Link) bool {
		if l.Name == "p0" && l.Deleted {
			t.Errorf("p0 left the bridge and was reported deleted: %+v", l)
		}
		return l.Name == "m0" && l.Deleted
	})
}

func TestSubscribeAddrs(t *testing.T) {
	ns, l := dummy(t, "192.0.2.1/24")
	updates := subscribe(t, ns, SubscribeAddrs)
	want := func(p string, isNew bool) {
		t.Helper()
		wantU := AddrUpdate{Index: l.Index, Prefix: netip.MustParsePrefix(p), New: isNew}
		u := await(t, updates, "address "+p, func(u AddrUpdate) bool { return u.Prefix == wantU.Prefix && u.New == isNew })
		if u != wantU {
			t.Errorf("update = %+v; want %+v", u, wantU)
		}
		if !u.Prefix.Addr().Is4() && !u.Prefix.Addr().Is6() || u.Prefix.Addr().Is4In6() {
			t.Errorf("update %+v: want a plain IPv4 or IPv6 address", u)
		}
	}
	want("192.0.2.1/24", true) // existing, listed at once
	testenv.IP(t, "-n", ns, "addr", "add", "192.0.2.50/24", "dev", "d0")
	want("192.0.2.50/24", true)
	testenv.IP(t, "-n", ns, "addr", "del", "192.0.2.50/24", "dev", "d0")
	want("192.0.2.50/24", false)
	// The same address with another length is another address.
	testenv.IP(t, "-n", ns, "addr", "add", "192.0.2.50/32", "dev", "d0")
	want("192.0.2.50/32", true)
	testenv.IP(t, "-n", ns, "addr", "add", "2001:db8::50/64", "dev", "d0", "nodad")
	want("2001:db8::50/64", true)
	testenv.IP(t, "-n", ns, "addr", "del", "2001:db8::50/64", "dev", "d0")
	want("2001:db8::50/64", false)
	// Deleting the link deletes its addresses, and says so.
	testenv.IP(t, "-n", ns, "link", "del", "d0")
	want("192.0.2.1/24", false)
	want("192.0.2.50/32", false)
}

func TestAddrUpdateOf(t *testing.T) {
	const (
		v4 = unix.AF_INET
		v6 = unix.AF_INET6
	)
	for _, tt := range []struct {
		name    string
		family  uint8
		bits    uint8
		address string // IFA_ADDRESS, "" for none
		local   string // IFA_LOCAL, "" for none
		added   bool
		want    string // "" for no update
	}{
		{"IPv4", v4, 24, "192.0.2.50", "192.0.2.50", true, "192.0.2.50/24"},
		{"IPv4 deleted", v4, 24, "192.0.2.50", "192.0.2.50", false, "192.0.2.50/24"},
		{"IPv4 point-to-point", v4, 32, "192.0.2.1", "192.0.2.50", true, "192.0.2.50/32"},
		{"IPv6", v6, 64, "2001:db8::50", "", true, "2001:db8::50/64"},
		{"IPv6 with a peer", v6, 128, "2001:db8::1", "2001:db8::50", true, "2001:db8::50/128"},
		{"IPv4-mapped", v6, 120, "::ffff:192.0.2.50", "", true, "192.0.2.50/24"},
		{"IPv4-mapped, short prefix", v6, 64, "::ffff:192.0.2.50", "", true, ""},
		{"no address", v4, 24, "", "", true, ""},
		{"prefix too long", v4, 33, "192.0.2.50", "", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := ifaddrmsg(tt.family, tt.bits, 7, tt.address, tt.local)
			got, ok := addrUpdateOf(b, tt.added)
			if tt.want == "" {
				if ok {
					t.Errorf("addrUpdateOf = %+v; want none", got)
				}
				return
			}
			if want := (AddrUpdate{Index: 7, Prefix: netip.MustParsePrefix(tt.want), New: tt.added}); !ok || got != want {
				t.Errorf("addrUpdateOf = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
	if got, ok := addrUpdateOf([]byte{unix.AF_INET, 24}, true); ok {
		t.Errorf("addrUpdateOf(truncated) = %+v; want none", got)
	}
}

// ifaddrmsg is the body of an address message: struct ifaddrmsg, then
// IFA_ADDRESS and IFA_LOCAL where given.
func ifaddrmsg(family, bits uint8, index uint32, address, local string) []byte {
	b := []byte{family, bits, 0, 0}
	b = binary.NativeEndian.AppendUint32(b, index)
	attr := func(typ uint16, s string) {
		if s == "" {
			return
		}
		ip := netip.MustParseAddr(s).AsSlice()
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(ip)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, ip...)
	}
	attr(unix.IFA_ADDRESS, address)
	attr(unix.IFA_LOCAL, local)
	return b
}
