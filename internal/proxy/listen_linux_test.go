package proxy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenFreebind: the proxy listens on an address the host does not
// have, without privileges.
func TestListenFreebind(t *testing.T) {
	for _, a := range []string{"192.0.2.250:18443", "[2001:db8::250]:18443"} {
		p, err := Listen(Config{Addr: netip.MustParseAddrPort(a)})
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.Close(ctx)
		cancel()
	}
}

// TestKeepAliveInherited: accepted sockets inherit the listener's
// keepalive, which Go then leaves alone.
func TestKeepAliveInherited(t *testing.T) {
	lc := listenConfig()
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on, idle, cnt int
	var serr error
	rc.Control(func(fd uintptr) {
		if on, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE); serr != nil {
			return
		}
		if idle, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); serr != nil {
			return
		}
		cnt, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	})
	if serr != nil {
		t.Fatal(serr)
	}
	if on != 1 || idle != 15 || cnt != 9 {
		t.Errorf("accepted socket: SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_KEEPCNT %d; want 1, 15, 9", on, idle, cnt)
	}
}
