package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FrameWatch counts the frames with one source MAC that a node sends into
// the switch (its bridge port's ingress), from WatchSourceMAC until Stop.
type FrameWatch struct {
	fd     int
	mac    net.HardwareAddr
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	count int
	last  time.Time
}

// WatchSourceMAC counts what node n sends on its segment-0 cable with
// source MAC mac, as the switch receives it: an AF_PACKET socket on n's
// bridge port that ignores what the bridge sends out of it.
func (n *Node) WatchSourceMAC(ctx context.Context, mac net.HardwareAddr) (*FrameWatch, error) {
	port, err := n.lab.sw.LinkByName(n.port)
	if err != nil {
		return nil, fmt.Errorf("%s: bridge port %s: %w", n.Name, n.port, err)
	}
	var fd int
	err = InNS(n.lab.Switch, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: port.Attrs().Index}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: watching %s on port %s: %w", n.Name, mac, n.port, err)
	}
	ctx, cancel := context.WithTimeout(ctx, MaxProbe)
	w := &FrameWatch{fd: fd, mac: mac, cancel: cancel, done: make(chan struct{})}
	go w.read(ctx)
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *FrameWatch) read(ctx context.Context) {
	defer close(w.done)
	buf := make([]byte, 64)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil || n < 12 {
			continue
		}
		if bytes.Equal(buf[6:12], w.mac) {
			w.mu.Lock()
			w.count++
			w.last = time.Now()
			w.mu.Unlock()
		}
	}
}

// Count returns how many such frames were seen so far, and when the last
// one was.
func (w *FrameWatch) Count() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count, w.last
}

// Stop ends the watch.
func (w *FrameWatch) Stop() {
	w.cancel()
	<-w.done
	unix.Close(w.fd)
}

// FDBNode returns the node whose bridge port (on segment 0) the switch has
// learnt mac on, or nil if it has no such entry.
func (l *Lab) FDBNode(mac net.HardwareAddr) (*Node, error) {
	br, err := l.sw.LinkByName("br0")
	if err != nil {
		return nil, fmt.Errorf("lab: br0: %w", err)
	}
	neighs, err := l.sw.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("lab: bridge fdb: %w", err)
	}
	for _, ne := range neighs {
		if !bytes.Equal(ne.HardwareAddr, mac) || ne.MasterIndex != br.Attrs().Index || ne.State&netlink.NUD_PERMANENT != 0 {
			continue
		}
		for _, n := range l.all() {
			if p, err := l.sw.LinkByName(n.port); err == nil && p.Attrs().Index == ne.LinkIndex {
				return n, nil
			}
		}
	}
	return nil, nil
}
