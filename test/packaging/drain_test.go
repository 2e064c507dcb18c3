package packaging

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// TestUnitOutlastsDrain: systemd waits longer at stop than the longest
// drain of a proxy virtual server plus the VRRP hand-over (about a second),
// or it would SIGKILL vipd in the middle of a drain.
func TestUnitOutlastsDrain(t *testing.T) {
	u := parseUnit(t, filepath.Join(moduleRoot(t), unitPath))
	v := u["Service"]["TimeoutStopSec"]
	if len(v) != 1 {
		t.Fatalf("TimeoutStopSec = %q", v)
	}
	d, err := time.ParseDuration(v[0])
	if err != nil {
		t.Fatal(err)
	}
	if d < config.MaxDrainTimeout+5*time.Second {
		t.Errorf("TimeoutStopSec=%s, want at least drain_timeout's maximum %s + 5s", v[0], config.MaxDrainTimeout)
	}
}
