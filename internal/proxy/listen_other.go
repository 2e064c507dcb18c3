//go:build !linux

package proxy

import "net"

// listenConfig is Go's default: elsewhere the address must be the host's.
func listenConfig() net.ListenConfig { return net.ListenConfig{} }
