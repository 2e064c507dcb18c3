package health_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

func httpSpec(h health.HTTPSpec) health.Spec {
	return health.Spec{Name: "http", Interval: time.Minute, Timeout: wait, Rise: 1, Fall: 1, HTTP: &h}
}

func newHTTPProbe(t *testing.T, h health.HTTPSpec) health.Probe {
	t.Helper()
	p, err := health.NewProbe(httpSpec(h))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// statusServer answers /<code> with that status.
func statusServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(strings.Repeat("body ", 1000)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPStatus(t *testing.T) {
	srv := statusServer(t)
	tests := []struct {
		path   string
		expect []int
		ok     bool
	}{
		{"/200", nil, true},
		{"/204", nil, true},
		{"/299", nil, true},
		{"/300", nil, false},
		{"/404", nil, false},
		{"/503", nil, false},
		{"/503", []int{200, 503}, true},
		{"/200", []int{204}, false},
		{"/418", []int{418}, true},
	}
	for _, tt := range tests {
		err := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL + tt.path, ExpectStatus: tt.expect}).Probe(context.Background())
		if tt.ok {
			if err != nil {
				t.Errorf("%s expect %v: err = %v, want nil", tt.path, tt.expect, err)
			}
			continue
		}
		var se *health.StatusError
		if !errors.As(err, &se) || strconv.Itoa(se.Code) != tt.path[1:] {
			t.Errorf("%s expect %v: err = %v, want a *StatusError with the code", tt.path, tt.expect, err)
		}
	}
}

func TestHTTPMethodAndHost(t *testing.T) {
	var method, host, agent atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method.Store(r.Method)
		host.Store(r.Host)
		agent.Store(r.UserAgent())
	}))
	defer srv.Close()

	if err := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL}).Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if method.Load() != http.MethodGet || host.Load() != srv.Listener.Addr().String() {
		t.Errorf("default request: %v Host %v, want GET to %s", method.Load(), host.Load(), srv.Listener.Addr())
	}
	p := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL, Method: http.MethodHead, Host: "www.example.org"})
	if err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if method.Load() != http.MethodHead || host.Load() != "www.example.org" || agent.Load() != "vipd-health-check" {
		t.Errorf("request: %v Host %v User-Agent %v, want HEAD Host www.example.org", method.Load(), host.Load(), agent.Load())
	}
}

func TestHTTPRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { followed.Store(true) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	err := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL + "/check"}).Probe(context.Background())
	var se *health.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Errorf("err = %v, want status 302 judged as a failure", err)
	}
	if err := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL + "/check", ExpectStatus: []int{302}}).Probe(context.Background()); err != nil {
		t.Errorf("expecting 302: err = %v", err)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler

	for _, via := range []string{"context", "spec timeout"} {
		s := httpSpec(health.HTTPSpec{URL: srv.URL})
		ctx := context.Background()
		if via == "context" {
			var cancel context.CancelCauseFunc
			ctx, cancel = context.WithCancelCause(ctx)
			time.AfterFunc(50*time.Millisecond, func() { cancel(health.ErrTimeout) })
		} else {
			s.Interval, s.Timeout = time.Second, 50*time.Millisecond
		}
		p, err := health.NewProbe(s)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Probe(ctx) }()
		select {
		case err := <-errc:
			if err == nil {
				t.Errorf("%s: a hanging server passed", via)
			}
			if via == "context" && !errors.Is(err, health.ErrTimeout) {
				t.Errorf("%s: err = %v, want it to wrap the cause ErrTimeout", via, err)
			}
		case <-time.After(wait):
			t.Fatalf("%s: Probe did not return", via)
		}
	}
}

// writePEM writes blocks of type typ to a new file in dir.
func writePEM(t *testing.T, dir, name, typ string, der ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range der {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsServer starts an HTTPS server with httptest's certificate (valid for
// example.com and 127.0.0.1) that does not log handshake errors.
func tlsServer(t *testing.T, conf *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = conf
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// selfSigned returns a new self-signed certificate for usage and its key.
func selfSigned(t *testing.T, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vipd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestHTTPS(t *testing.T) {
	srv := tlsServer(t, nil)
	dir := t.TempDir()
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	other, _ := selfSigned(t, x509.ExtKeyUsageServerAuth)
	otherCA := writePEM(t, dir, "other.pem", "CERTIFICATE", other.Raw)

	tests := []struct {
		name string
		spec health.HTTPSpec
		ok   bool
	}{
		{"system roots do not know the server", health.HTTPSpec{URL: srv.URL}, false},
		{"ca_file", health.HTTPSpec{URL: srv.URL, CAFile: ca}, true},
		{"ca_file of another CA", health.HTTPSpec{URL: srv.URL, CAFile: otherCA}, false},
		{"insecure_skip_verify", health.HTTPSpec{URL: srv.URL, InsecureSkipVerify: true}, true},
		{"host names the server", health.HTTPSpec{URL: srv.URL, CAFile: ca, Host: "example.com"}, true},
		{"host the certificate does not cover", health.HTTPSpec{URL: srv.URL, CAFile: ca, Host: "example.org"}, false},
	}
	for _, tt := range tests {
		err := newHTTPProbe(t, tt.spec).Probe(context.Background())
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestHTTPSClientCertificate(t *testing.T) {
	cert, key := selfSigned(t, x509.ExtKeyUsageClientAuth)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile := writePEM(t, dir, "client.pem", "CERTIFICATE", cert.Raw)
	keyFile := writePEM(t, dir, "client.key", "PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := tlsServer(t, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)

	if err := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL, CAFile: ca}).Probe(context.Background()); err == nil {
		t.Error("passed without a client certificate")
	}
	p := newHTTPProbe(t, health.HTTPSpec{URL: srv.URL, CAFile: ca, CertFile: certFile, KeyFile: keyFile})
	if err := p.Probe(context.Background()); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
}

func TestHTTPBadFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec health.HTTPSpec
		want string
	}{
		{"missing ca_file", health.HTTPSpec{CAFile: filepath.Join(dir, "nope.pem")}, "ca_file"},
		{"ca_file without certificates", health.HTTPSpec{CAFile: junk}, "ca_file"},
		{"bad client pair", health.HTTPSpec{CertFile: junk, KeyFile: junk}, "cert_file"},
	}
	for _, tt := range tests {
		tt.spec.URL = "https://127.0.0.1:1/"
		_, err := health.NewProbe(httpSpec(tt.spec))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}
