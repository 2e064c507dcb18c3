//go:build !linux

package daemon

import (
	"errors"
	"log/slog"
)

// NewSystem fails: vipd's sockets, netlink and sysctls are Linux's.
func NewSystem(*slog.Logger) (System, func() error, error) {
	return nil, nil, errors.New("vipd runs on Linux only")
}
