package netif

import (
	"context"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testenv"
)

func TestSubscribeLinks(t *testing.T) {
	ns, _ := dummy(t)
	updates := make(chan Link, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The subscription's socket is opened in ns, on Do's thread; the loop
	// then runs anywhere.
	started := make(chan struct{})
	go testenv.Do(t, ns, func() {
		close(started)
		done <- SubscribeLinks(ctx, func(l Link) { updates <- l })
	})
	<-started
	want := func(up bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case l := <-updates:
				if l.Name == "d0" && l.Up == up {
					return
				}
			case <-deadline:
				t.Fatalf("no update saying d0 up=%v", up)
			}
		}
	}
	want(true) // the existing link, listed at once
	testenv.IP(t, "-n", ns, "link", "set", "p0", "down")
	want(false) // carrier lost
	testenv.IP(t, "-n", ns, "link", "set", "p0", "up")
	want(true)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SubscribeLinks did not return after cancel")
	}
}
