package proxy

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// keepAlive is the TCP keepalive of both sides of a proxied connection,
// Go's default: a peer that vanished is found within about 2.5 minutes.
const keepAlive = 15 * time.Second

// listenConfig opens the listener with IP_FREEBIND, so that it can bind
// to an address the host does not have (yet): the virtual server listens
// while its VIP is on another node. Keepalive is set on the listener, as
// accepted sockets inherit it, rather than by Go on each accepted
// socket: four system calls fewer per connection.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAlive: -1, Control: listenControl}
}

func listenControl(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		f := int(fd)
		opts := []struct{ level, opt, v int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAlive / time.Second)},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAlive / time.Second)},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
			{unix.SOL_IP, unix.IP_FREEBIND, 1},
		}
		if network == "tcp6" {
			opts[4] = struct{ level, opt, v int }{unix.SOL_IPV6, unix.IPV6_FREEBIND, 1}
		}
		for _, o := range opts {
			if serr = unix.SetsockoptInt(f, o.level, o.opt, o.v); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
