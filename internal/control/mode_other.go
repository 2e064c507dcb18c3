//go:build !linux

package control

import "syscall"

// presetMode does nothing here. Listen chmods the socket file after bind.
func presetMode(_, _ string, _ syscall.RawConn) error { return nil }
