package watch

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/vipd/vipd/pkg/vrrp"
)

// sampleReport is a segment with a split brain over a reused VRID, a healthy
// IPv6 group signing with auth_hmac key 1, a silent VRRPv2 router and two bad
// packets.
func sampleReport() Report {
	const s = time.Second
	tab := feed(Config{},
		every("192.0.2.1", 0, 5*s, s, adv(7, 100, 100, "192.0.2.50")),
		every("192.0.2.3", 500*time.Millisecond, 5*s, s, adv(7, 90, 100, "192.0.2.60", "192.0.2.61")),
		every("192.0.2.9", 0, 1*s, s, &vrrp.Packet{Version: 2, Type: 1, VRID: 20, Priority: 255, Interval: 1, Addresses: addrs("192.0.2.200")}),
		every("2001:db8::1", 0, 5*s, 2*s, signed(adv(7, 100, 200, "2001:db8::50"), 1)),
	)
	tab.Drop(drop.Checksum)
	tab.Drop(drop.TTL)
	tab.Drop(drop.Checksum)
	r := tab.Report(at(5*s + 200*time.Millisecond))
	r.Interface = "eth0"
	return r
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	want := `vipd watch on eth0 at 2025-01-02 15:04:10: 4 routers, 2 conflicts, 16 adverts

  VRID  FAMILY  VER  SENDER           PRIO  INTERVAL  STATE     LAST SEEN  ADVERTS  AUTH     ADDRESSES
!    7  ipv4    v3   192.0.2.1         100        1s  master         0.2s        6  -        192.0.2.50
!    7  ipv4    v3   192.0.2.3          90        1s  master         0.7s        5  -        192.0.2.60,192.0.2.61
     7  ipv6    v3   2001:db8::1       100        2s  master         1.2s        3  key 1    2001:db8::50
    20  ipv4    v2   192.0.2.9         255        1s  silent         4.2s        2  -        192.0.2.200

conflicts:
  multiple_masters  VRID 7 (ipv4): 2 senders advertise as Master at once: 192.0.2.1 priority 100, 192.0.2.3 priority 90
  vrid_reuse        VRID 7 (ipv4): unrelated groups share the VRID (disjoint addresses) and so one virtual MAC 00:00:5e:00:01:07: 192.0.2.1 [192.0.2.50], 192.0.2.3 [192.0.2.60 192.0.2.61]

bad packets: ttl 1, checksum 2
`
	if got := b.String(); got != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteTextSigningMismatch: in a group where some sign, the unsigned
// senders are marked and the conflict names how each one signs.
func TestWriteTextSigningMismatch(t *testing.T) {
	const s = time.Second
	p := adv(7, 100, 100, "192.0.2.50")
	tab := feed(Config{},
		every("192.0.2.1", 0, 2*s, s, p),
		every("192.0.2.3", 3*s, 5*s, s, signed(p, 255)),
	)
	r := tab.Report(at(5 * s))
	r.Interface = "eth0"
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `vipd watch on eth0 at 2025-01-02 15:04:10: 2 routers, 1 conflict, 6 adverts

  VRID  FAMILY  VER  SENDER           PRIO  INTERVAL  STATE     LAST SEEN  ADVERTS  AUTH     ADDRESSES
!    7  ipv4    v3   192.0.2.1         100        1s  silent         3.0s        3  -        192.0.2.50
     7  ipv4    v3   192.0.2.3         100        1s  master         0.0s        3  key 255  192.0.2.50

conflicts:
  signing_mismatch  VRID 7 (ipv4): some senders sign with auth_hmac and others do not, so enforcing routers drop the unsigned (auth_missing) and routers without auth_hmac the signed (auth_unexpected): 192.0.2.1 unsigned, 192.0.2.3 key 255

bad packets: none
`
	if got := b.String(); got != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteTextLinkLocal: IPv6 routers send from link-local addresses (RFC
// 9568 §5.1.2.1), shown without a zone (the report is one interface's),
// sorted after the IPv4 ones of their VRID and conflicting only among
// themselves, the SENDER column widened to the longest (an EUI-64 one) and
// the rows still aligned. The JSON sender
// has no zone either.
func TestWriteTextLinkLocal(t *testing.T) {
	const s = time.Second
	tab := NewTable(Config{})
	for _, o := range []obs{
		{0, "fe80::a8c1:abff:fe12:3456%eth0", signed(adv(7, 100, 100, "2001:db8::50"), 2)},
		{0, "fe80::3", adv(7, 90, 100, "2001:db8::50")},
		{0, "192.0.2.1", adv(7, 100, 100, "192.0.2.50")},
	} {
		tab.Observe(at(o.at), netip.MustParseAddr(o.src), o.p)
	}
	r := tab.Report(at(s))
	r.Interface = "eth0"
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `vipd watch on eth0 at 2025-01-02 15:04:06: 3 routers, 1 conflict, 3 adverts

  VRID  FAMILY  VER  SENDER                     PRIO  INTERVAL  STATE     LAST SEEN  ADVERTS  AUTH     ADDRESSES
     7  ipv4    v3   192.0.2.1                   100        1s  master         1.0s        1  -        192.0.2.50
!    7  ipv6    v3   fe80::3                      90        1s  master         1.0s        1  -        2001:db8::50
     7  ipv6    v3   fe80::a8c1:abff:fe12:3456   100        1s  master         1.0s        1  key 2    2001:db8::50

conflicts:
  signing_mismatch  VRID 7 (ipv6): some senders sign with auth_hmac and others do not, so enforcing routers drop the unsigned (auth_missing) and routers without auth_hmac the signed (auth_unexpected): fe80::3 unsigned, fe80::a8c1:abff:fe12:3456 key 2

bad packets: none
`
	if got := b.String(); got != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"sender":"fe80::a8c1:abff:fe12:3456","priority":100`) || strings.Contains(b.String(), "%") {
		t.Errorf("JSON sender of a link-local router: %s", b.String())
	}
}

func TestWriteTextEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, NewTable(Config{}).Report(t0)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"0 routers, 0 conflicts, 0 adverts", "(no VRRP adverts heard yet)", "bad packets: none"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("empty report lacks %q:\n%s", s, b.String())
		}
	}
	if strings.Contains(b.String(), "conflicts:") {
		t.Errorf("empty report has a conflicts section:\n%s", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&b, NewTable(Config{}).Report(t0)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("want two newline-terminated documents, got %q", b.String())
	}
	wantFirst := `{"time":"2025-01-02T15:04:10.2Z","interface":"eth0","routers":[` +
		`{"vrid":7,"family":"ipv4","version":3,"sender":"192.0.2.1","priority":100,"interval_ms":1000,"addresses":["192.0.2.50"],"last_seen_ms":200,"state":"master","adverts":6,"signed":false,"key_id":0,"conflicts":["multiple_masters","vrid_reuse"]},` +
		`{"vrid":7,"family":"ipv4","version":3,"sender":"192.0.2.3","priority":90,"interval_ms":1000,"addresses":["192.0.2.60","192.0.2.61"],"last_seen_ms":700,"state":"master","adverts":5,"signed":false,"key_id":0,"conflicts":["multiple_masters","vrid_reuse"]},` +
		`{"vrid":7,"family":"ipv6","version":3,"sender":"2001:db8::1","priority":100,"interval_ms":2000,"addresses":["2001:db8::50"],"last_seen_ms":1200,"state":"master","adverts":3,"signed":true,"key_id":1,"conflicts":[]},` +
		`{"vrid":20,"family":"ipv4","version":2,"sender":"192.0.2.9","priority":255,"interval_ms":1000,"addresses":["192.0.2.200"],"last_seen_ms":4200,"state":"silent","adverts":2,"signed":false,"key_id":0,"conflicts":[]}],` +
		`"conflicts":[` +
		`{"kind":"multiple_masters","vrid":7,"family":"ipv4","senders":["192.0.2.1","192.0.2.3"],"message":"VRID 7 (ipv4): 2 senders advertise as Master at once: 192.0.2.1 priority 100, 192.0.2.3 priority 90"},` +
		`{"kind":"vrid_reuse","vrid":7,"family":"ipv4","senders":["192.0.2.1","192.0.2.3"],"message":"VRID 7 (ipv4): unrelated groups share the VRID (disjoint addresses) and so one virtual MAC 00:00:5e:00:01:07: 192.0.2.1 [192.0.2.50], 192.0.2.3 [192.0.2.60 192.0.2.61]"}],` +
		`"adverts":16,"bad_packets":{"checksum":2,"ttl":1}}`
	if lines[0] != wantFirst {
		t.Errorf("first document:\n%s\nwant:\n%s", lines[0], wantFirst)
	}
	// Empty lists are [], never null: consumers can iterate without checks.
	want := `{"time":"2025-01-02T15:04:05Z","interface":"","routers":[],"conflicts":[],"adverts":0,"bad_packets":{}}`
	if lines[1] != want {
		t.Errorf("empty document:\n%s\nwant:\n%s", lines[1], want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}
