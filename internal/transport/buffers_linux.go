package transport

import "golang.org/x/sys/unix"

// socketBuffer is the size asked for both socket buffers: room for a burst
// of hundreds of adverts, each taking about a kilobyte of buffer in the
// kernel. A peer with hundreds of instances sends its adverts together, and
// so does vipd (see WriteBatch): a full send buffer would make the sender
// wait for the interface to drain it.
const socketBuffer = 1 << 20

// setBuffers sets the socket's receive and send buffers to socketBuffer:
// beyond net.core.rmem_max and wmem_max with CAP_NET_ADMIN
// (SO_RCVBUFFORCE, SO_SNDBUFFORCE), else as far as those allow. Smaller
// buffers still work, so errors are ignored.
func setBuffers(fd int) {
	setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF)
	setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)
}

// setBuffer sets one buffer: with force, else with plain.
func setBuffer(fd, force, plain int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, socketBuffer)
	}
}
