package watch

import (
	"errors"
	"net"
	"time"

	"github.com/vipd/vipd/internal/drop"

	"github.com/vipd/vipd/internal/transport"
)

// Conn is a raw VRRP socket on one interface, as transport opens it.
type Conn interface {
	ReadFrom(b []byte) (int, transport.Meta, error)
}

var (
	_ Conn = (*transport.IPv4Conn)(nil)
	_ Conn = (*transport.IPv6Conn)(nil)
)

const (
	// maxMessage holds the largest VRRP message (8 + 255×16 bytes) with room
	// to spare: a longer packet must not be cut to a valid-looking one.
	maxMessage = 1 << 16
	// readBackoff keeps a socket that keeps failing from spinning.
	readBackoff = 10 * time.Millisecond
)

// Feed reads packets from c into m until c is closed, then returns nil.
// Several Feeds, one per socket, may run on one Monitor. A read error is
// counted as drop.Read and does not stop the loop.
func (m *Monitor) Feed(c Conn) error {
	buf := make([]byte, maxMessage)
	for {
		n, meta, err := c.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			m.drop(drop.Read)
			time.Sleep(readBackoff)
			continue
		}
		m.Handle(buf[:n], meta.Src, meta.Dst, meta.TTL)
	}
}
