package health

import (
	"context"
	"time"
)

// Probe runs one attempt of a check; a nil error means healthy. It returns
// soon after ctx is done.
type Probe interface {
	Probe(ctx context.Context) error
}

// ProbeFunc adapts a function to Probe.
type ProbeFunc func(ctx context.Context) error

// Probe calls f(ctx).
func (f ProbeFunc) Probe(ctx context.Context) error { return f(ctx) }

// Result is the outcome of one run.
type Result struct {
	OK       bool
	Err      error
	Duration time.Duration
	At       time.Time // when the run started
}

// NewProbe validates s and builds its probe. Everything that can be done
// once is done here: an HTTP check's transport and TLS configuration are
// built and its certificate files read, so a bad file is a config error.
func NewProbe(s Spec) (Probe, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch {
	case s.Exec != nil:
		return newExecProbe(s.Exec)
	case s.HTTP != nil:
		return newHTTPProbe(s.HTTP, s.Timeout)
	default:
		return newTCPProbe(s.TCP, s.Timeout), nil
	}
}
