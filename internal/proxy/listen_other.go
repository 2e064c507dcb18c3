//go:build !linux

package proxy

import "syscall"

// freebind does nothing: elsewhere the address must be the host's.
func freebind(string, string, syscall.RawConn) error { return nil }
