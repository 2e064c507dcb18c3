package transport

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawNonblocking issues a system call that does not block (MSG_DONTWAIT)
// as a raw one, again while it is interrupted. Raw, because Go's ordinary
// entry wakes the runtime's monitor thread (see batchSender).
func rawNonblocking(trap, a1, a2, a3, a4 uintptr) (uintptr, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
		if e != unix.EINTR {
			return n, e
		}
	}
}

// readDone is the result of a raw read run by syscall.RawConn.Read: false
// to wait for the socket to become readable; else n is what the call
// returned, or rerr its error.
func readDone(r uintptr, e unix.Errno, n *int, rerr *error) bool {
	switch e {
	case 0:
		*n = int(r)
	case unix.EAGAIN:
		return false
	default:
		*rerr = e
	}
	return true
}

// eachControl calls f with the level, type and data of every control
// message in b. x/net's parser allocates a slice of messages at every call;
// this is the receive path of every advert.
func eachControl(b []byte, f func(level, typ int32, data []byte)) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofCmsghdr {
			return errors.New("truncated header")
		}
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			return fmt.Errorf("length %d of %d bytes", l, len(b))
		}
		f(h.Level, h.Type, b[unix.CmsgLen(0):l])
		b = b[min(unix.CmsgSpace(l-unix.SizeofCmsghdr), len(b)):]
	}
	return nil
}
