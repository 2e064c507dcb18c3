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
	for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], socketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], socketBuffer)
		}
	}
}
