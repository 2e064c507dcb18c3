//go:build nobgp

package daemon

import (
	"log/slog"

	"github.com/vipd/vipd/internal/config"
)

// newSpeaker is never called in a build without GoBGP: config.Load
// refuses a bgp section there (config.BGPLinked), and without one the
// daemon starts no speaker.
func newSpeaker(config.BGP, *slog.Logger) RouteAnnouncer {
	panic("vipd was built with -tags nobgp, yet a bgp section got past config.Load")
}
