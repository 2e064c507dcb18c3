package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

type tcpProbe struct {
	dialer net.Dialer
	addr   string
}

func newTCPProbe(s *TCPSpec, timeout time.Duration) Probe {
	return &tcpProbe{dialer: net.Dialer{Timeout: timeout}, addr: s.Address}
}

// Probe is healthy when the TCP handshake completes; the connection is
// closed at once.
func (p *tcpProbe) Probe(ctx context.Context) error {
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return fmt.Errorf("%w (%w)", err, cause)
		}
		return err
	}
	_ = conn.Close() // the handshake was the test
	return nil
}
