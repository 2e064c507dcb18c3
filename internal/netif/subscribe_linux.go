package netif

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A subscription is a rtnetlink socket joined to multicast groups, read
// through the runtime's poller into a buffer on the heap.
// vishvananda/netlink's subscriptions receive into a 64 KiB array on the
// reading goroutine's stack, which grows it to 128 KiB for the daemon's
// life, and run two goroutines each; a subscription here runs on its
// caller's goroutine.
type subscription struct {
	f    *os.File
	rc   syscall.RawConn
	buf  []byte
	seq  uint32
	stop func() bool // unregisters the close at ctx's end
}

// subscribeBuffer is a subscription socket's receive buffer.
const subscribeBuffer = 4 << 20

// subscribeGroups opens a subscription to the legacy rtnetlink groups in
// mask (unix.RTMGRP_*). It is closed when ctx is done, which ends a
// receive in progress.
func subscribeGroups(ctx context.Context, mask uint32) (*subscription, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Room for a burst: a node that takes 1,000 VIPs at once is sent
	// 1,000 notifications while its reader may be busy, which overflow
	// the default buffer (ENOBUFS: notifications lost, the subscription
	// starts over). As iproute2's monitor does; past rmem_max only with
	// CAP_NET_ADMIN, else as much as rmem_max allows. Memory is taken
	// only while notifications wait in it.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, subscribeBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, subscribeBuffer)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: mask}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &subscription{f: f, rc: rc, buf: make([]byte, 8<<10)}
	s.stop = context.AfterFunc(ctx, func() { f.Close() })
	return s, nil
}

func (s *subscription) close() {
	s.stop()
	s.f.Close()
}

// dump asks the kernel for every object of a kind (unix.RTM_GETLINK,
// unix.RTM_GETADDR), of every family: the replies arrive among the
// notifications, as RTM_NEW* messages, then an NLMSG_DONE.
func (s *subscription) dump(typ uint16) error {
	s.seq++
	// struct nlmsghdr, then struct rtgenmsg (its family: AF_UNSPEC).
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtGenmsg)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:], s.seq)
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	return os.NewSyscallError("sendto", err)
}

// receive returns the messages of the next datagram from the kernel,
// skipping any other sender's. The kernel's ENOBUFS (notifications were
// dropped: the socket's buffer overran) is an error like any other: the
// caller's view is stale.
func (s *subscription) receive() ([]syscall.NetlinkMessage, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := s.rc.Read(func(fd uintptr) bool {
			// The datagram's length first, so that the buffer holds all of it.
			n, _, rerr = unix.Recvfrom(int(fd), s.buf, unix.MSG_PEEK|unix.MSG_TRUNC)
			if rerr == unix.EAGAIN {
				return false
			}
			if rerr != nil {
				return true
			}
			if n > len(s.buf) {
				s.buf = make([]byte, n)
			}
			n, from, rerr = unix.Recvfrom(int(fd), s.buf, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil, err
			}
			return nil, os.NewSyscallError("recvfrom", err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not the kernel's
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parsing netlink messages: %w", err)
		}
		return msgs, nil
	}
}

// follow reads the subscription until ctx is done (nil) or it fails,
// handing each message but a dump's end to each. A dump's error fails it.
func (s *subscription) follow(ctx context.Context, each func(syscall.NetlinkMessage)) error {
	for {
		msgs, err := s.receive()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_NOOP:
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("dump: %w", syscall.Errno(errno))
					}
				}
			default:
				each(m)
			}
		}
	}
}
