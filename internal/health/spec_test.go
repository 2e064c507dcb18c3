package health_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
)

func TestValidate(t *testing.T) {
	valid := func() health.Spec {
		return health.Spec{Name: "c", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
			TCP: &health.TCPSpec{Address: "127.0.0.1:80"}}
	}
	tests := []struct {
		name   string
		modify func(*health.Spec)
		want   string // "" valid
	}{
		{"valid", func(*health.Spec) {}, ""},
		{"no name", func(s *health.Spec) { s.Name = "" }, "no name"},
		{"no interval", func(s *health.Spec) { s.Interval = 0 }, "interval"},
		{"no timeout", func(s *health.Spec) { s.Timeout = 0 }, "timeout"},
		{"timeout = interval", func(s *health.Spec) { s.Timeout = s.Interval }, "less than interval"},
		{"fall 0", func(s *health.Spec) { s.Fall = 0 }, "fall"},
		{"rise 0", func(s *health.Spec) { s.Rise = 0 }, "rise"},
		{"no probe", func(s *health.Spec) { s.TCP = nil }, "exactly one"},
		{"two probes", func(s *health.Spec) { s.Exec = &health.ExecSpec{Command: []string{"true"}} }, "exactly one"},
		{"tcp without port", func(s *health.Spec) { s.TCP.Address = "127.0.0.1" }, "tcp.address"},
		{"tcp empty port", func(s *health.Spec) { s.TCP.Address = "127.0.0.1:" }, "tcp.address"},
		{"exec empty", func(s *health.Spec) { s.TCP, s.Exec = nil, &health.ExecSpec{} }, "exec.command"},
		{"exec bad env", func(s *health.Spec) {
			s.TCP, s.Exec = nil, &health.ExecSpec{Command: []string{"true"}, Env: []string{"NOVALUE"}}
		}, "exec.env[0]"},
		{"http valid", func(s *health.Spec) {
			s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "https://[::1]:8443/healthz", ExpectStatus: []int{200, 301}}
		}, ""},
		{"http scheme", func(s *health.Spec) { s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "ftp://x/"} }, "scheme"},
		{"http no host", func(s *health.Spec) { s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "http:///x"} }, "no host"},
		{"http status", func(s *health.Spec) {
			s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "http://x/", ExpectStatus: []int{200, 700}}
		}, "expect_status[1]"},
		{"http method", func(s *health.Spec) { s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "http://x/", Method: "GE T"} }, "method"},
		{"http cert without key", func(s *health.Spec) {
			s.TCP, s.HTTP = nil, &health.HTTPSpec{URL: "https://x/", CertFile: "c.pem"}
		}, "key_file"},
	}
	for _, tt := range tests {
		s := valid()
		tt.modify(&s)
		err := s.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
		if _, perr := health.NewProbe(s); perr == nil {
			t.Errorf("%s: NewProbe accepted an invalid spec", tt.name)
		}
	}
}
