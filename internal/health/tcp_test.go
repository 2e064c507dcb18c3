package health_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p, err := health.NewProbe(health.Spec{
		Name: "tcp", Interval: time.Minute, Timeout: wait, Rise: 1, Fall: 1,
		TCP: &health.TCPSpec{Address: addr},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The handshake completes in the kernel; nobody needs to Accept.
	if err := p.Probe(context.Background()); err != nil {
		t.Errorf("listener open: err = %v, want nil", err)
	}
	ln.Close()
	if err := p.Probe(context.Background()); err == nil {
		t.Error("listener closed: passed")
	}
}
