package watch

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/pkg/vrrp"
)

// waitUp polls ns's dev for up to 5s until it is up with a qdisc attached:
// the kernel does both asynchronously after "ip link set up", and drops what
// is sent before.
func waitUp(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ls []struct {
			Qdisc     string `json:"qdisc"`
			OperState string `json:"operstate"`
		}
		out := testenv.IP(t, "-n", ns, "-j", "link", "show", "dev", dev)
		if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
			t.Fatalf("ip -j link show: %v: %s", err, out)
		}
		if ls[0].OperState == "UP" && ls[0].Qdisc != "noop" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s: operstate %s, qdisc %s after 5s", dev, ns, ls[0].OperState, ls[0].Qdisc)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen opens transport's VRRP socket on dev in ns, closed when the test
// ends.
func listen(t *testing.T, ns, dev string) *transport.IPv4Conn {
	t.Helper()
	var (
		c   *transport.IPv4Conn
		err error
	)
	testenv.Do(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(dev); err == nil {
			c, err = transport.ListenIPv4(ifi.Index)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSegmentVeth runs testSegment over a real link: ns1 (192.0.2.1 and the
// secondary 192.0.2.3) sends the two routers' adverts, a monitor reads them
// on a transport socket in ns2 (192.0.2.2).
func TestSegmentVeth(t *testing.T) {
	testenv.Privileged(t)
	ns1, ns2 := testenv.Netns(t, "watch1"), testenv.Netns(t, "watch2")
	testenv.IP(t, "link", "add", "v1", "netns", ns1, "type", "veth", "peer", "name", "v2", "netns", ns2)
	testenv.IP(t, "-n", ns1, "addr", "add", "192.0.2.1/24", "dev", "v1")
	testenv.IP(t, "-n", ns1, "addr", "add", "192.0.2.3/24", "dev", "v1")
	testenv.IP(t, "-n", ns2, "addr", "add", "192.0.2.2/24", "dev", "v2")
	testenv.IP(t, "-n", ns1, "link", "set", "v1", "up")
	testenv.IP(t, "-n", ns2, "link", "set", "v2", "up")
	waitUp(t, ns1, "v1")
	waitUp(t, ns2, "v2")

	sender := listen(t, ns1, "v1")
	clk := &fakeClock{now: t0}
	m := NewMonitor("v2", Config{}, clk.Now)
	runFeed(t, m, listen(t, ns2, "v2"))

	testSegment(t, segment{mon: m, clk: clk, send: func(b []byte, src netip.Addr) error {
		return sender.WriteTo(b, src, vrrp.IPv4Group)
	}})

	var text bytes.Buffer
	if err := WriteText(&text, m.Report()); err != nil {
		t.Fatal(err)
	}
	t.Logf("vipd watch --interface v2:\n%s", text.String())
}
