package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// isName says whether s is 1 to 64 of A-Z a-z 0-9 _ . -, and, with
// letterFirst, begins with a letter. (A regexp with {1,64} compiles to 64
// copies of its class: 60 KB of heap for the life of the daemon.)
func isName(s string, letterFirst bool) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if i == 0 && letterFirst && !letter {
			return false
		}
		if !letter && !('0' <= c && c <= '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func checkName(s string) error {
	if !isName(s, false) {
		return fmt.Errorf("%q is not a valid instance name: use 1 to 64 of A-Z a-z 0-9 _ . -", short(s))
	}
	return nil
}

// checkInterface applies the kernel's dev_valid_name rules: shorter than
// IFNAMSIZ (16), not "." or "..", and no '/', ':' or white space.
func checkInterface(s string) error {
	const ifNameMax = 15
	bad := func(why string) error {
		return fmt.Errorf("%q is not a valid interface name: %s", short(s), why)
	}
	switch {
	case s == "":
		return errors.New("interface name is empty")
	case len(s) > ifNameMax:
		return bad(fmt.Sprintf("longer than %d bytes", ifNameMax))
	case s == "." || s == "..":
		return bad("reserved")
	}
	for i := 0; i < len(s); i++ {
		// The kernel's isspace also counts 0xa0 (Latin-1 NBSP).
		switch c := s[i]; c {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0:
			return bad(fmt.Sprintf("it contains %q", rune(c)))
		}
	}
	return nil
}

// checkListen accepts "" (no listener) or host:port with a numeric port.
func checkListen(s string) error {
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:9405)", short(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", short(port))
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			return fmt.Errorf("host %q is not an IP address or localhost", short(host))
		}
	}
	return nil
}

func checkSocketPath(s string) error {
	// sun_path is 108 bytes including the terminating NUL.
	const max = 107
	switch {
	case !path.IsAbs(s):
		return fmt.Errorf("%q is not an absolute path", short(s))
	case len(s) > max:
		return fmt.Errorf("path is %d bytes long; a Unix socket path is at most %d", len(s), max)
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("path contains a NUL byte")
	}
	return nil
}

// parseVIP parses "192.0.2.50/24" or "192.0.2.50" (a /32), keeping the host
// address: a VIP is an address to add, not a network.
func parseVIP(s string) (netip.Prefix, error) {
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("expected an address or prefix such as 192.0.2.50/24 or 2001:db8::50/64, got %q", short(s))
	}
	a := p.Addr()
	var why string
	switch {
	case a.Is4In6():
		return netip.Prefix{}, fmt.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address", short(s))
	case a.Zone() != "":
		return netip.Prefix{}, fmt.Errorf("%q has a zone; VIPs are added to the instance's interface", short(s))
	case a.Is6() && a.IsLinkLocalUnicast():
		why = "a link-local address"
	case a.IsUnspecified():
		why = "the unspecified address"
	case a.IsLoopback():
		why = "a loopback address"
	case a.IsMulticast():
		why = "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	case p.Bits() == 0:
		// It would put a route to everything on the interface.
		return netip.Prefix{}, errors.New("prefix length /0 is not allowed")
	default:
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("%s is %s, not usable as a VIP", a, why)
}

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): `)

// syntaxError turns a yaml.v3 parse error into an Error with a line.
// yaml.v3 leaves the line out when the problem is on the first line, and for
// encoding problems, which are found by scanning data here.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if l := badCharLine(data); l > 0 {
			line = l
		}
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// badCharLine returns the line of the first byte sequence that yaml.v3
// rejects as invalid UTF-8 or a control character, or 0 if there is none
// (or the input is UTF-16, which yaml.v3 also reads).
func badCharLine(data []byte) int {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return 0
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size <= 1) || !yamlPrintable(r) {
			return 1 + bytes.Count(data[:i], []byte{'\n'})
		}
		i += size
	}
	return 0
}

// yamlPrintable is the character set YAML 1.2 allows in a stream, as
// yaml.v3's reader checks it.
func yamlPrintable(r rune) bool {
	return r == 0x09 || r == 0x0a || r == 0x0d ||
		(r >= 0x20 && r <= 0x7e) || r == 0x85 ||
		(r >= 0xa0 && r <= 0xd7ff) ||
		(r >= 0xe000 && r <= 0xfffd) ||
		(r >= 0x10000 && r <= 0x10ffff)
}
