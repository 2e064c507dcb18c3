//go:build !linux

package lb

import (
	"errors"

	"github.com/vishvananda/netns"
)

var errLinux = errors.New("lb: load balancing needs Linux's nftables")

// Options tune Build.
type Options struct{ Mark uint32 }

// Ruleset is the content of vipd's table; there is none but on Linux.
type Ruleset struct{}

// Build fails: the table is Linux's.
func Build([]VirtualServer, Options) (*Ruleset, error) { return nil, errLinux }

// Linux is the kernel's nftables and conntrack tables; there are none but
// on Linux.
type Linux struct{}

// NewLinux fails.
func NewLinux() (*Linux, error) { return nil, errLinux }

// NewLinuxAt fails.
func NewLinuxAt(netns.NsHandle) (*Linux, error) { return nil, errLinux }

// Close does nothing.
func (*Linux) Close() error { return nil }

// Apply fails.
func (*Linux) Apply(*Ruleset) error { return errLinux }

// Remove fails.
func (*Linux) Remove() error { return errLinux }

// Preflight fails.
func (*Linux) Preflight() error { return errLinux }

// Connections fails.
func (*Linux) Connections() ([]Connections, error) { return nil, errLinux }

// FlushConntrack fails.
func (*Linux) FlushConntrack(VirtualServer, Backend) (uint, error) { return 0, errLinux }

// CheckForwarding fails.
func CheckForwarding([]VirtualServer) error { return errLinux }
