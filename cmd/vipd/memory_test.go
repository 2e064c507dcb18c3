package main

import (
	"context"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

func TestSettleTime(t *testing.T) {
	cfg := &config.Config{Instances: []config.Instance{
		{AdvertInterval: time.Second, Announce: config.Announce{Count: 5, Interval: 200 * time.Millisecond}},
		{AdvertInterval: 2 * time.Second},
		{AdvertInterval: 100 * time.Millisecond},
	}}
	if got, want := settleTime(cfg), 9*time.Second; got != want {
		t.Errorf("settleTime = %v, want %v", got, want)
	}
}

// returnStartupMemory waits for the start and the settling, and gives up
// on either when vipd stops.
func TestReturnStartupMemory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	returnStartupMemory(ctx, make(chan struct{}), time.Hour)

	ctx, cancel = context.WithCancel(context.Background())
	started := make(chan struct{})
	close(started)
	done := make(chan struct{})
	go func() { returnStartupMemory(ctx, started, time.Hour); close(done) }()
	cancel()
	<-done

	started = make(chan struct{})
	close(started)
	returnStartupMemory(context.Background(), started, 0)
}
