//go:build !linux

package health

import (
	"errors"
	"fmt"
)

// Exec checks need Linux: the process-group handling is Linux-specific.
func newExecProbe(*ExecSpec) (Probe, error) {
	return nil, fmt.Errorf("exec health checks: %w", errors.ErrUnsupported)
}
