//go:build !nobgp

package daemon

import (
	"log/slog"

	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/config"
)

var _ RouteAnnouncer = (*bgp.Speaker)(nil)

// newSpeaker is the real RouteAnnouncer: GoBGP's server, which a build
// with -tags nobgp leaves out (speaker_nobgp.go).
func newSpeaker(cfg config.BGP, log *slog.Logger) RouteAnnouncer { return bgp.New(cfg, log, nil) }
