package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// maxDrain bounds how much of a response body is read before it is closed.
const maxDrain = 64 << 10

// StatusError is the failure of an HTTP check that got an unexpected status.
type StatusError struct {
	Code int
	Want []int // empty: 200-299
}

func (e *StatusError) Error() string {
	want := "200-299"
	if len(e.Want) > 0 {
		want = strings.Trim(fmt.Sprint(e.Want), "[]")
	}
	return fmt.Sprintf("HTTP status %d %s, want %s", e.Code, http.StatusText(e.Code), want)
}

type httpProbe struct {
	client *http.Client
	method string
	url    string
	host   string
	expect []int
}

// newHTTPProbe builds the check's own client. Keep-alives are off: every run
// opens a new connection, as a new client would, so a server that stopped
// accepting connections fails its check, a connection the server closed
// while idle cannot fail a run, and no connection stays open between runs.
// Proxies from the environment are ignored: a check tests the server itself.
func newHTTPProbe(s *HTTPSpec, timeout time.Duration) (Probe, error) {
	tlsConf, err := tlsConfig(s)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    timeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	method := s.Method
	if method == "" {
		method = http.MethodGet
	}
	return &httpProbe{
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer to judge, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       timeout,
		},
		method: method,
		url:    s.URL,
		host:   s.Host,
		expect: slices.Clone(s.ExpectStatus),
	}, nil
}

func tlsConfig(s *HTTPSpec) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.InsecureSkipVerify}
	if s.Host != "" {
		host, _, err := net.SplitHostPort(s.Host)
		if err != nil {
			host = s.Host
		}
		c.ServerName = host
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.ca_file %s: no PEM certificate found", s.CAFile)
		}
		c.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("http.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func (p *httpProbe) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, p.method, p.url, nil)
	if err != nil {
		return err
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "vipd-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		// Report the cause of a cancellation (ErrTimeout from a Checker).
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return fmt.Errorf("%w (%w)", err, cause)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	if ok := p.expected(resp.StatusCode); !ok {
		return &StatusError{Code: resp.StatusCode, Want: p.expect}
	}
	return nil
}

func (p *httpProbe) expected(code int) bool {
	if len(p.expect) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(p.expect, code)
}
