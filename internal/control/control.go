package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is the protocol version that this package speaks.
const Version = 1

// Instance is what the daemon reports about one virtual router.
type Instance struct {
	Name               string    `json:"name"`
	Interface          string    `json:"interface"`
	VRID               uint8     `json:"vrid"`
	Family             string    `json:"family"`   // "ipv4" or "ipv6"
	State              string    `json:"state"`    // "init", "backup", "master" or "fault"
	Priority           uint8     `json:"priority"` // effective, after health checks
	ConfiguredPriority uint8     `json:"configured_priority"`
	Master             string    `json:"master,omitempty"` // the current master's address, as far as this host knows
	Since              time.Time `json:"since"`            // last state transition
	FailingChecks      []string  `json:"failing_checks,omitempty"`
	VIPs               []string  `json:"vips"`
	// Auth is the instance's auth_hmac mode and signing key, such as
	// "enforce, signing with key 2"; empty without auth_hmac.
	Auth string `json:"auth,omitempty"`
	// SyncGroup names the instance's sync group; empty for none.
	SyncGroup string `json:"sync_group,omitempty"`
}

// Backend is the running daemon as the control socket sees it.
type Backend interface {
	// Status reports every instance. It may be called concurrently.
	Status() []Instance
	// Reload parses, validates and applies the config file. An error means
	// that the reload was refused and the old config is still running. Its
	// text goes to the client verbatim. The Server never runs two Reloads
	// at once.
	Reload() error
}

// DaemonError is an error that the daemon sent back, such as a refused
// reload. Its text is the daemon's text, verbatim.
type DaemonError struct {
	Msg string
}

func (e *DaemonError) Error() string { return e.Msg }

type request struct {
	Version int    `json:"version"`
	Command string `json:"command"`
}

type response struct {
	Version   int        `json:"version"`
	OK        bool       `json:"ok"`
	Error     string     `json:"error,omitempty"`
	Instances []Instance `json:"instances,omitzero"` // omitzero keeps an empty, non-nil list as []
	// VirtualServers is left out for a daemon without any.
	VirtualServers []VirtualServer `json:"virtual_servers,omitempty"`
	// BGP is left out for a daemon without a bgp section.
	BGP *BGP `json:"bgp,omitempty"`
}

var (
	errTooLong = errors.New("line too long")
	errNoLine  = errors.New("connection closed before a line was sent")
)

// readLine reads one line of at most limit bytes, not counting the newline.
// A final line that has no newline counts as a line. This allows a peer
// to half-close instead of sending "\n".
func readLine(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, int64(limit)+1))
	line, err := br.ReadBytes('\n')
	switch {
	case err == nil:
		return line[:len(line)-1], nil
	case err != io.EOF:
		return nil, err
	case len(line) > limit:
		return nil, errTooLong
	case len(line) == 0:
		return nil, errNoLine
	}
	return line, nil
}

// aLongTimeAgo is a deadline that is already past. Setting it unblocks
// reads and writes in progress.
var aLongTimeAgo = time.Unix(1, 0)

func sizeString(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}
