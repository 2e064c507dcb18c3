//go:build !linux

package daemon

import "errors"

// NewSystem fails: vipd's sockets, netlink and sysctls are Linux's.
func NewSystem() (System, func() error, error) {
	return nil, nil, errors.New("vipd runs on Linux only")
}
