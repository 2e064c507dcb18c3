package netif

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
)

// TestSubscribeAddrsBurst adds 1,000 addresses at once (a node taking 1,000
// VIPs) while the subscriber is busy: every one is reported, and the
// subscription does not overflow (ENOBUFS) and fail.
func TestSubscribeAddrsBurst(t *testing.T) {
	ns, _ := dummy(t)
	const n = 1000
	var batch strings.Builder
	want := map[netip.Prefix]bool{}
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)}), 32)
		want[p] = true
		fmt.Fprintf(&batch, "addr add %s dev d0\n", p)
	}
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	busy := make(chan struct{})
	var hold atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan AddrUpdate, 2*n)
	done := make(chan error, 1)
	started := make(chan struct{})
	go testenv.Do(t, ns, func() {
		close(started)
		done <- SubscribeAddrs(ctx, func(u AddrUpdate) {
			if hold.Load() {
				<-busy // the reader is held up until the whole burst is queued
			}
			updates <- u
		})
	})
	<-started
	// A first address, seen, says the socket is joined; then the reader
	// is held up while the burst is queued.
	sentinel := netip.MustParsePrefix("198.51.100.1/32")
	testenv.IP(t, "-n", ns, "addr", "add", sentinel.String(), "dev", "d0")
	await(t, updates, "the first address", func(u AddrUpdate) bool { return u.New && u.Prefix == sentinel })
	hold.Store(true)
	testenv.IP(t, "-n", ns, "-batch", file)
	close(busy)

	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case u := <-updates:
			if u.New {
				delete(want, u.Prefix)
			}
		case err := <-done:
			t.Fatalf("the subscription ended with %d of %d addresses unreported: %v", len(want), n, err)
		case <-deadline:
			t.Fatalf("%d of %d addresses unreported after 10s", len(want), n)
		}
	}
}
