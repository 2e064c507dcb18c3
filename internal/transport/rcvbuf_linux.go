package transport

import "golang.org/x/sys/unix"

// receiveBuffer is the socket receive buffer asked for: room for a burst of
// hundreds of adverts (a peer with hundreds of instances sends them
// together), each taking about a kilobyte of buffer in the kernel.
const receiveBuffer = 1 << 20

// setReceiveBuffer sets the socket's receive buffer to receiveBuffer:
// beyond net.core.rmem_max with CAP_NET_ADMIN (SO_RCVBUFFORCE), else as
// far as rmem_max allows. A smaller buffer still works, so errors are
// ignored.
func setReceiveBuffer(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
	}
}
