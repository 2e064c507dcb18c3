package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

// setProcs gives the protocol loops one P, a proxy-mode virtual server the
// runtime's default, back and forth across reloads; GOMAXPROCS in the
// environment wins over both.
func TestSetProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nat := &config.Config{VirtualServers: []config.VirtualServer{{Name: "a", Mode: "nat"}}}
	proxy := &config.Config{VirtualServers: []config.VirtualServer{{Name: "a", Mode: "nat"}, {Name: "b", Mode: "proxy"}}}
	for i, c := range []struct {
		cfg  *config.Config
		want int
	}{
		{&config.Config{}, 1},
		{proxy, def},
		{nat, 1},
		{proxy, def},
	} {
		setProcs(log, c.cfg)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("step %d: GOMAXPROCS %d, want %d", i, got, c.want)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	setProcs(log, nat)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("with GOMAXPROCS=3 in the environment: %d", got)
	}
}
