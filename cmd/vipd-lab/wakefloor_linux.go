package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeFloorPayload is as long as the VRRP part of an IPv4 advert with
// one VIP.
const wakeFloorPayload = 12

// wakeFloor is the least a Go program can do at a daemon's wake rate: wake
// on a timer and send one datagram with a raw system call on a socket the
// runtime's poller does not watch, on one P, as vipd's loop does for a
// Master's advert. What it costs is Go's floor at that rate.
func wakeFloor(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd-lab "+wakeFloorCmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", 10*time.Millisecond, "wake and send every `interval`")
	to := fs.String("to", "", "send to `addr:port` (UDP)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dst, err := netip.ParseAddrPort(*to)
	if err != nil || !dst.Addr().Is4() || *interval <= 0 {
		fmt.Fprintf(stderr, "vipd-lab %s: -to must be an IPv4 addr:port and -interval positive\n", wakeFloorCmd)
		return 2
	}
	runtime.GOMAXPROCS(1)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	buf := make([]byte, wakeFloorPayload)
	t := time.NewTimer(*interval)
	for range t.C {
		// The peer is a lab node with nothing listening on the port: an
		// ICMP error may come back and fail a later send, which is fine.
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		t.Reset(*interval)
	}
	return 0
}
