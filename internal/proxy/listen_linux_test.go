package proxy

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestListenFreebind: the proxy listens on an address the host does not
// have, without privileges.
func TestListenFreebind(t *testing.T) {
	for _, a := range []string{"192.0.2.250:18443", "[2001:db8::250]:18443"} {
		p, err := Listen(Config{Addr: netip.MustParseAddrPort(a)})
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.Close(ctx)
		cancel()
	}
}
