package transport

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSender sends batches of messages with sendmmsg(2), issued as a raw
// system call on its own non-blocking socket (openSender), and reuses from
// call to call the
// control message of every source and the socket address of every
// destination seen (a handful: the interface's addresses and the unicast
// peers).
//
// Why raw: Go's ordinary system call entry wakes the runtime's monitor
// thread when it sleeps, which then polls every 20 µs for a while; for a
// daemon that wakes only to send a few adverts, that costs several times
// the send itself (measured here: a goroutine sending one packet every 10 ms
// uses 25 ms of CPU per second the ordinary way, 18 ms raw). A non-blocking
// sendmmsg does not sleep, so the raw call is safe; should the socket
// buffer be full (EAGAIN), poll(2) waits for room, for at most fullWait.
type batchSender struct {
	fd int
	// sockaddr returns dst as a socket address; control the control
	// message that sends from src.
	sockaddr func(dst netip.Addr) []byte
	control  func(src netip.Addr) []byte

	mu    sync.Mutex
	oob   map[netip.Addr][]byte
	names map[netip.Addr][]byte
	iovs  []unix.Iovec
	hdrs  []mmsghdr
}

// mmsghdr is struct mmsghdr; Go lays it out as C does, padding included.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// send sends ms in order. It stops at the first message that fails and
// returns how many were sent before it, and its error.
func (b *batchSender) send(ms []Outgoing) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cap(b.hdrs) < len(ms) {
		b.hdrs = make([]mmsghdr, len(ms))
		b.iovs = make([]unix.Iovec, len(ms))
	}
	b.hdrs, b.iovs = b.hdrs[:len(ms)], b.iovs[:len(ms)]
	for i, m := range ms {
		b.iovs[i] = unix.Iovec{}
		if len(m.B) > 0 {
			b.iovs[i].Base = &m.B[0]
			b.iovs[i].SetLen(len(m.B))
		}
		h := &b.hdrs[i]
		*h = mmsghdr{}
		name := b.name(m.Dst)
		h.hdr.Name, h.hdr.Namelen = &name[0], uint32(len(name))
		h.hdr.Iov = &b.iovs[i]
		h.hdr.SetIovlen(1)
		if oob := b.oobFor(m.Src); len(oob) > 0 {
			h.hdr.Control = &oob[0]
			h.hdr.SetControllen(len(oob))
		}
	}
	sent := 0
	err := b.sendmmsg(ms, &sent)
	if err != nil && sent < len(ms) {
		return sent, &SendError{Src: ms[sent].Src, Dst: ms[sent].Dst, Err: err}
	}
	return sent, err
}

// fullWait bounds how long a send waits for room in a full send buffer.
const fullWait = time.Second

func (b *batchSender) sendmmsg(ms []Outgoing, sent *int) error {
	for *sent < len(ms) {
		n, e := rawNonblocking(unix.SYS_SENDMMSG, uintptr(b.fd), uintptr(unsafe.Pointer(&b.hdrs[*sent])), uintptr(len(ms)-*sent), unix.MSG_DONTWAIT)
		switch {
		case e == unix.EAGAIN:
			// Wait for room; rare with a 1 MiB buffer.
			fds := []unix.PollFd{{Fd: int32(b.fd), Events: unix.POLLOUT}}
			if k, err := unix.Poll(fds, int(fullWait/time.Millisecond)); err != nil && err != unix.EINTR {
				return os.NewSyscallError("poll", err)
			} else if k == 0 {
				return os.NewSyscallError("sendmmsg", unix.EAGAIN)
			}
		case e != 0:
			return os.NewSyscallError("sendmmsg", e)
		case n == 0:
			return errors.New("sendmmsg sent nothing")
		default:
			*sent += int(n)
		}
	}
	return nil
}

// close closes the send socket, once.
func (b *batchSender) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fd < 0 {
		return nil
	}
	err := unix.Close(b.fd)
	b.fd = -1
	return err
}

func (b *batchSender) name(dst netip.Addr) []byte {
	if n, ok := b.names[dst]; ok {
		return n
	}
	if b.names == nil {
		b.names = map[netip.Addr][]byte{}
	}
	n := b.sockaddr(dst)
	b.names[dst] = n
	return n
}

func (b *batchSender) oobFor(src netip.Addr) []byte {
	if o, ok := b.oob[src]; ok {
		return o
	}
	if b.oob == nil {
		b.oob = map[netip.Addr][]byte{}
	}
	o := b.control(src)
	b.oob[src] = o
	return o
}

// sockaddr4 and sockaddr6 are dst as struct sockaddr_in and sockaddr_in6.
func sockaddr4(dst netip.Addr) []byte {
	sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Unmap().As4()}
	return unsafe.Slice((*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4)
}

func sockaddr6(dst netip.Addr) []byte {
	sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	return unsafe.Slice((*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet6)
}

// SendError is a failed send of one message of a batch.
type SendError struct {
	Src, Dst netip.Addr
	Err      error
}

func (e *SendError) Error() string {
	return "transport: send from " + e.Src.String() + " to " + e.Dst.String() + ": " + e.Err.Error()
}

func (e *SendError) Unwrap() error { return e.Err }
