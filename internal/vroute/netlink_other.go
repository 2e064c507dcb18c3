//go:build !linux

package vroute

import "errors"

// Linux is rtnetlink's routing state; there is none but on Linux.
type Linux struct{ Netlink }

// NewLinux fails: routes and rules are managed on Linux only.
func NewLinux() (*Linux, error) {
	return nil, errors.New("vroute: routes and rules are managed on Linux only")
}

// Close does nothing.
func (*Linux) Close() error { return nil }
