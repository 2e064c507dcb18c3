package transport

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket adverts leave from has the send invariants of the receiving
// one (the other tests send through it).
func TestSenderSocketOptions(t *testing.T) {
	type opt struct {
		name       string
		level, opt int
		want       int
	}
	a, _ := pair(t)
	c4 := listen(t, a)
	a6, _ := pair6(t)
	c6 := listen6(t, a6)
	for _, tt := range []struct {
		family string
		fd     int
		opts   []opt
	}{
		{"ipv4", c4.batch.fd, []opt{
			{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, a.ifindex},
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 255},
			{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 0xc0},
			{"IP_HDRINCL", unix.IPPROTO_IP, unix.IP_HDRINCL, 0},
			{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * socketBuffer},
		}},
		{"ipv6", c6.batch.fd, []opt{
			{"SO_BINDTOIFINDEX", unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, a6.ifindex},
			{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, a6.ifindex},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0},
			{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * socketBuffer},
		}},
	} {
		for _, o := range tt.opts {
			if got, err := unix.GetsockoptInt(tt.fd, o.level, o.opt); err != nil || got != o.want {
				t.Errorf("%s send socket: getsockopt %s = %d, %v; want %d", tt.family, o.name, got, err, o.want)
			}
		}
	}
}

func TestPktinfoIndex(t *testing.T) {
	pktinfo := func(index int32) []byte {
		b := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)])).Ifindex = index
		return b
	}
	ttl := make([]byte, unix.CmsgSpace(4))
	th := (*unix.Cmsghdr)(unsafe.Pointer(&ttl[0]))
	th.Level, th.Type = unix.IPPROTO_IP, unix.IP_TTL
	th.SetLen(unix.CmsgLen(4))
	for _, tt := range []struct {
		name    string
		b       []byte
		want    int
		wantErr bool
	}{
		{name: "none", b: nil, want: 0},
		{name: "pktinfo", b: pktinfo(7), want: 7},
		{name: "after another message", b: append(append([]byte(nil), ttl...), pktinfo(9)...), want: 9},
		{name: "another message only", b: ttl, want: 0},
		{name: "truncated header", b: pktinfo(7)[:4], wantErr: true},
		{name: "length beyond the buffer", b: pktinfo(7)[:unix.CmsgLen(0)+2], wantErr: true},
	} {
		got, err := pktinfoIndex(tt.b)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: pktinfoIndex = %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = pktinfoIndex(pktinfo(7)) }); n > 1 {
		t.Errorf("pktinfoIndex allocates %v times", n-1)
	}
}
