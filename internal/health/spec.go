package health

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Spec describes one health check. Exactly one of Exec, HTTP and TCP is set.
type Spec struct {
	Name string
	// Interval is the time between the starts of two runs.
	Interval time.Duration
	// Timeout bounds each run; it is less than Interval.
	Timeout time.Duration
	// Fall is the number of consecutive failures after which a check that
	// is up counts as down; Rise the number of consecutive successes after
	// which a check that is down counts as up. The config supplies the
	// defaults (3 and 2); values below 1 count as 1.
	Fall int
	Rise int
	// InitialUp starts the check up instead of down; a check that starts
	// down must pass Rise times before it counts as up.
	InitialUp bool

	Exec *ExecSpec
	HTTP *HTTPSpec
	TCP  *TCPSpec
}

// ExecSpec runs a command without a shell; exit status 0 is healthy.
type ExecSpec struct {
	// Command is the argv; Command[0] is looked up in PATH when it has no
	// slash.
	Command []string
	// Env is added to the daemon's environment ("KEY=value"); a key given
	// here overrides the inherited one.
	Env []string
}

// HTTPSpec requests a URL; the check is healthy when the response status is
// expected. Redirects are not followed: a 3xx status is judged like any
// other.
type HTTPSpec struct {
	URL string // http or https
	// Method defaults to GET.
	Method string
	// Host, when set, is sent as the Host header and used as the TLS server
	// name, so a check can reach a virtual host by address.
	Host string
	// ExpectStatus lists the healthy status codes; empty means 200-299.
	ExpectStatus []int

	// CAFile is a PEM bundle that replaces the system roots. CertFile and
	// KeyFile are a client certificate, both or neither.
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// TCPSpec is healthy when a TCP connection to Address ("host:port") is
// established.
type TCPSpec struct {
	Address string
}

// Validate reports the first problem with s, naming the field.
func (s Spec) Validate() error {
	if s.Name == "" {
		return errors.New("health: check has no name")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("health check %q: "+format, append([]any{s.Name}, args...)...)
	}
	switch {
	case s.Interval <= 0:
		return fail("interval must be positive, got %v", s.Interval)
	case s.Timeout <= 0:
		return fail("timeout must be positive, got %v", s.Timeout)
	case s.Timeout >= s.Interval:
		return fail("timeout %v must be less than interval %v", s.Timeout, s.Interval)
	case s.Fall < 1:
		return fail("fall must be at least 1, got %d", s.Fall)
	case s.Rise < 1:
		return fail("rise must be at least 1, got %d", s.Rise)
	}
	n := 0
	for _, set := range []bool{s.Exec != nil, s.HTTP != nil, s.TCP != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fail("exactly one of exec, http and tcp must be set, got %d", n)
	}
	var err error
	switch {
	case s.Exec != nil:
		err = s.Exec.validate()
	case s.HTTP != nil:
		err = s.HTTP.validate()
	case s.TCP != nil:
		err = s.TCP.validate()
	}
	if err != nil {
		return fail("%w", err)
	}
	return nil
}

func (e *ExecSpec) validate() error {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return errors.New("exec.command is empty")
	}
	for i, kv := range e.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("exec.env[%d] %q is not KEY=value", i, kv)
		}
	}
	return nil
}

func (h *HTTPSpec) validate() error {
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("http.url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("http.url %q: scheme must be http or https", h.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("http.url %q has no host", h.URL)
	}
	if h.Method != "" && strings.ContainsAny(h.Method, " \t\r\n/:") {
		return fmt.Errorf("http.method %q is not a method", h.Method)
	}
	if strings.ContainsAny(h.Host, " \t\r\n/") {
		return fmt.Errorf("http.host %q is not a host", h.Host)
	}
	for i, c := range h.ExpectStatus {
		if c < 100 || c > 599 {
			return fmt.Errorf("http.expect_status[%d]: %d is not an HTTP status", i, c)
		}
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		return errors.New("http.cert_file and http.key_file go together")
	}
	return nil
}

func (t *TCPSpec) validate() error {
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return fmt.Errorf("tcp.address: %w", err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("tcp.address %q needs a host and a port", t.Address)
	}
	return nil
}
