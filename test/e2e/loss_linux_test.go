package e2e

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// spuriousEstimate is the number of takeovers RFC 9568's timers predict
// when each Backup loses each advert independently with probability p: a
// Backup declares the Master down when no advert came for
// Master_Down_Interval = 3 × interval + Skew_Time, that is after three lost
// adverts in a row. A run of at least three losses starts after a received
// advert with probability (1−p)·p³, so each Backup sees about
// (runtime/interval)·(1−p)·p³ of them ((runtime/interval)·p³ as a rough
// upper figure).
func spuriousEstimate(runtime, interval time.Duration, p float64, backups int) float64 {
	return float64(backups) * float64(runtime) / float64(interval) * (1 - p) * math.Pow(p, 3)
}

// TestAdvertLoss drops a share of VRRP packets on the switch for a while
// and checks only that vipd survives it: every daemon still running, the
// VIP held by at least one node at the end, and n1 the only holder once the
// loss stops. The spurious takeovers are logged beside the RFC's estimate;
// the benchmark measures them properly.
func TestAdvertLoss(t *testing.T) {
	l := newLab(t, 3)
	n1 := l.Nodes[0]
	startThree(t, l, true)

	const run = 8 * time.Second
	for _, pct := range []int{20, 50} {
		begin := time.Now()
		dropVRRP(t, l, pct)
		time.Sleep(run)
		h, err := l.Holders(lab.VIP)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) == 0 {
			t.Errorf("%d%% loss: nobody holds the VIP after %v", pct, run)
		}
		stopDroppingVRRP(l)
		took := time.Since(begin)
		spurious := 0
		for _, n := range l.Nodes[1:] {
			spurious += len(stateChangesTo(t, n, "master", begin))
		}
		t.Logf("%d%% loss for %v: %d spurious takeovers by n2 and n3 (RFC estimate %.1f; holders at the end: %s)",
			pct, took.Round(100*time.Millisecond), spurious, spuriousEstimate(took, interval, float64(pct)/100, 2), lab.Names(h))
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		_, err = l.WaitHolders(ctx, lab.VIP, lab.Only(n1))
		cancel()
		if err != nil {
			t.Fatalf("%d%% loss stopped: %v", pct, err)
		}
		for _, n := range l.Nodes {
			if !n.Running() {
				t.Fatalf("vipd on %s exited under %d%% loss", n.Name, pct)
			}
		}
	}
}
