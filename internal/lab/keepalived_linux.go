package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// keepalivedStatsFile is where keepalived writes its statistics, whichever
// namespace it runs in: one file for every keepalived on the machine.
const keepalivedStatsFile = "/tmp/keepalived.stats"

// keepalivedStatsMu lets one Node.KeepalivedStats at a time use that file.
var keepalivedStatsMu sync.Mutex

// KeepalivedStats asks the node's keepalived for its statistics (SIGUSR2,
// which its parent passes on to the VRRP child) and returns them, one per
// instance of its configuration, and when it asked. It waits until every
// instance is in the file, at most 10s.
func (n *Node) KeepalivedStats(ctx context.Context) ([]KeepalivedStats, time.Time, error) {
	p := n.current()
	pid, err := n.PID()
	if err != nil {
		return nil, time.Time{}, err
	}
	if p.kind != "keepalived" {
		return nil, time.Time{}, fmt.Errorf("%s: runs %s, not keepalived", n.Name, p.kind)
	}
	conf, err := os.ReadFile(n.keepalivedBase() + ".conf")
	if err != nil {
		return nil, time.Time{}, err
	}
	want := bytes.Count(append([]byte("\n"), conf...), []byte("\nvrrp_instance "))

	keepalivedStatsMu.Lock()
	defer keepalivedStatsMu.Unlock()
	if err := os.Remove(keepalivedStatsFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, err
	}
	defer os.Remove(keepalivedStatsFile)
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return nil, at, fmt.Errorf("%s: SIGUSR2 to keepalived: %w", n.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var got int
		f, err := os.Open(keepalivedStatsFile)
		if err == nil {
			var stats []KeepalivedStats
			stats, got, err = ParseKeepalivedStats(f)
			f.Close()
			if err == nil && got == want {
				return stats, at, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, at, fmt.Errorf("%s: keepalived's statistics: %d of %d instances (%v): %w", n.Name, got, want, err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
