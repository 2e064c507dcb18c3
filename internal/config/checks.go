package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of a health check.
const (
	DefaultCheckInterval = time.Second
	DefaultCheckFall     = 3
	DefaultCheckRise     = 2
	DefaultNotifyTimeout = 10 * time.Second
)

// Check is a health check, defined once at the top level and tracked by
// instances. Exactly one of Exec, HTTP and TCP is set.
type Check struct {
	Name     string
	Interval time.Duration // between the starts of two runs
	Timeout  time.Duration // bounds one run; shorter than Interval
	Fall     int           // consecutive failures before an up check is down
	Rise     int           // consecutive successes before a down check is up
	// InitialUp starts the check up instead of down.
	InitialUp bool

	Exec *ExecCheck
	HTTP *HTTPCheck
	TCP  *TCPCheck
}

// ExecCheck runs a command without a shell; exit status 0 is healthy.
type ExecCheck struct {
	Command []string
}

// HTTPCheck requests a URL; a status in ExpectStatus is healthy.
type HTTPCheck struct {
	URL                string
	Method             string
	Host               string
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
	ExpectStatus       []int // empty: 200..299
}

// TCPCheck connects to Address; an established connection is healthy.
type TCPCheck struct {
	Address string
}

// TrackCheck ties an instance to a check. While the check is down, a
// non-zero Weight is added to the instance's priority; Weight 0 (or none
// given) puts the instance in FAULT instead. A positive weight is added
// while the check is up.
type TrackCheck struct {
	Check  string
	Weight int
}

// TrackInterface ties an instance to another interface's link state, like
// TrackCheck. The instance's own interface is always tracked, in FAULT mode.
type TrackInterface struct {
	Interface string
	Weight    int
}

// Notify is the commands run on the instance's state changes, one at a
// time, in order, each bounded by Timeout. Command gets keepalived's
// arguments: INSTANCE, the name, the new state in capitals and the
// effective priority; the per-state commands get none.
type Notify struct {
	Command []string
	Master  []string
	Backup  []string
	Fault   []string
	Stop    []string
	Timeout time.Duration
}

// checks decodes the top-level check list.
func (d *decoder) checks(n *yaml.Node, path string) ([]Check, map[string]int) {
	var cs []Check
	lines := map[string]int{}
	d.list(n, path, "checks", func(_ int, n *yaml.Node, path string) {
		c, ok := d.check(n, path)
		if !ok {
			return
		}
		if first, dup := lines[c.Name]; dup {
			d.errorf(n, path+".name", "check name %q is already used (line %d)", c.Name, first)
			return
		}
		lines[c.Name] = n.Line
		cs = append(cs, c)
	})
	return cs, lines
}

func (d *decoder) check(n *yaml.Node, path string) (Check, bool) {
	c := Check{Interval: DefaultCheckInterval, Fall: DefaultCheckFall, Rise: DefaultCheckRise}
	errs := len(d.errs)
	initial := ""
	vals, ok := d.mapping(n, path, []field{
		{name: "name", required: true, decode: setString(d, &c.Name, checkName)},
		{name: "interval", decode: setDuration(d, &c.Interval, 10*time.Millisecond, time.Hour, 0)},
		{name: "timeout", decode: setDuration(d, &c.Timeout, time.Millisecond, time.Hour, 0)},
		{name: "fall", decode: setInt(d, &c.Fall, 1, 100)},
		{name: "rise", decode: setInt(d, &c.Rise, 1, 100)},
		{name: "initial_state", decode: setString(d, &initial, func(s string) error {
			if s != "up" && s != "down" {
				return fmt.Errorf("%q is not up or down", short(s))
			}
			return nil
		})},
		{name: "exec", decode: func(n *yaml.Node, path string) {
			c.Exec = &ExecCheck{}
			d.mapping(n, path, []field{
				{name: "command", required: true, decode: d.command(&c.Exec.Command)},
			})
		}},
		{name: "http", decode: func(n *yaml.Node, path string) {
			h := &HTTPCheck{Method: "GET"}
			c.HTTP = h
			d.mapping(n, path, []field{
				{name: "url", required: true, decode: setString(d, &h.URL, checkURL)},
				{name: "method", decode: setString(d, &h.Method, checkMethod)},
				{name: "host", decode: setString(d, &h.Host, nil)},
				{name: "ca_file", decode: setString(d, &h.CAFile, checkFile)},
				{name: "cert_file", decode: setString(d, &h.CertFile, checkFile)},
				{name: "key_file", decode: setString(d, &h.KeyFile, checkFile)},
				{name: "insecure_skip_verify", decode: setBool(d, &h.InsecureSkipVerify)},
				{name: "expect_status", decode: func(n *yaml.Node, path string) {
					d.list(n, path, "HTTP status codes", func(_ int, n *yaml.Node, path string) {
						var code int
						setInt(d, &code, 100, 599)(n, path)
						if code != 0 {
							h.ExpectStatus = append(h.ExpectStatus, code)
						}
					})
				}},
			})
			if (h.CertFile == "") != (h.KeyFile == "") {
				d.errorf(n, path, "cert_file and key_file go together")
			}
		}},
		{name: "tcp", decode: func(n *yaml.Node, path string) {
			c.TCP = &TCPCheck{}
			d.mapping(n, path, []field{
				{name: "address", required: true, decode: setString(d, &c.TCP.Address, checkHostPort)},
			})
		}},
	})
	if !ok {
		return c, false
	}
	kinds := 0
	for _, k := range []bool{c.Exec != nil, c.HTTP != nil, c.TCP != nil} {
		if k {
			kinds++
		}
	}
	if kinds != 1 {
		d.errorf(n, path, "exactly one of exec, http and tcp is required, got %d", kinds)
	}
	c.InitialUp = initial == "up"
	if c.Timeout == 0 {
		c.Timeout = c.Interval / 2
	} else if c.Timeout >= c.Interval {
		d.errorf(vals["timeout"], path+".timeout", "%s must be shorter than the interval (%s)", fmtDuration(c.Timeout), fmtDuration(c.Interval))
	}
	return c, len(d.errs) == errs
}

// command decodes a non-empty argv list of non-empty strings.
func (d *decoder) command(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		var argv []string
		if !d.list(n, path, "strings (the program and its arguments)", func(_ int, n *yaml.Node, path string) {
			var s string
			setString(d, &s, func(s string) error {
				if s == "" {
					return fmt.Errorf("empty string")
				}
				return nil
			})(n, path)
			argv = append(argv, s)
		}) {
			return
		}
		if len(argv) == 0 {
			d.errorf(n, path, "the command is empty: give the program and its arguments, e.g. [/usr/local/bin/check, --quick]")
			return
		}
		*dst = argv
	}
}

// tracking decodes track_checks or track_interfaces: a list of mappings
// with a key field (check or interface) and an optional weight.
func (d *decoder) tracking(n *yaml.Node, path, key string, check func(string) error, add func(name string, weight int, n *yaml.Node, path string)) {
	seen := map[string]int{}
	d.list(n, path, "mappings", func(_ int, n *yaml.Node, path string) {
		var name string
		var weight int
		d.mapping(n, path, []field{
			{name: key, required: true, decode: setString(d, &name, check)},
			{name: "weight", decode: setInt(d, &weight, -253, 253)},
		})
		if name == "" {
			return
		}
		if first, dup := seen[name]; dup {
			d.errorf(n, path, "%s %q is tracked twice (first at line %d)", strings.ReplaceAll(key, "_", " "), name, first)
			return
		}
		seen[name] = n.Line
		add(name, weight, n, path)
	})
}

func (d *decoder) notify(n *yaml.Node, path string, dst *Notify) {
	d.mapping(n, path, []field{
		{name: "command", decode: d.command(&dst.Command)},
		{name: "master", decode: d.command(&dst.Master)},
		{name: "backup", decode: d.command(&dst.Backup)},
		{name: "fault", decode: d.command(&dst.Fault)},
		{name: "stop", decode: d.command(&dst.Stop)},
		{name: "timeout", decode: setDuration(d, &dst.Timeout, 10*time.Millisecond, time.Hour, 0)},
	})
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", short(s))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", short(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", short(s))
	}
	return nil
}

func checkMethod(s string) error {
	switch s {
	case "GET", "HEAD", "POST", "OPTIONS":
		return nil
	}
	return fmt.Errorf("%q is not one of GET, HEAD, POST, OPTIONS", short(s))
}

func checkFile(s string) error {
	if s == "" {
		return fmt.Errorf("empty path")
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:6443)", short(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", short(port))
	}
	return nil
}

// checkTracked reports track_checks entries that name no defined check.
func (d *decoder) checkTracked(cfg *Config) {
	for _, t := range d.tracked {
		if _, ok := d.checkLines[t.name]; ok {
			continue
		}
		var defined []string
		for _, c := range cfg.Checks {
			defined = append(defined, c.Name)
		}
		if len(defined) == 0 {
			d.errorf(t.node, t.path, "unknown check %q: no checks are defined (add them under checks:)", t.name)
			continue
		}
		d.errorf(t.node, t.path, "unknown check %q (defined: %s)", t.name, strings.Join(defined, ", "))
	}
}
