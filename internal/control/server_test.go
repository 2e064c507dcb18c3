package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBackend is a Backend with canned answers.
type fakeBackend struct {
	insts     []Instance
	reloadErr error
	panicMsg  string // Status and Reload panic with it when set

	reloads  atomic.Int32
	inReload atomic.Int32
	overlap  atomic.Bool // two Reloads ran at once
}

func (f *fakeBackend) Status() []Instance {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.insts
}

func (f *fakeBackend) Reload() error {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	if f.inReload.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inReload.Add(-1)
	time.Sleep(time.Millisecond)
	f.reloads.Add(1)
	return f.reloadErr
}

var testInstances = []Instance{
	{
		Name: "api", Interface: "eth0", VRID: 51, Family: "ipv4", State: "master",
		Priority: 150, ConfiguredPriority: 150, Master: "192.0.2.11",
		Since: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		VIPs:  []string{"192.0.2.50/24"},
	},
	{
		Name: "db", Interface: "eth1", VRID: 52, Family: "ipv4", State: "backup",
		Priority: 90, ConfiguredPriority: 150, Master: "192.0.2.12",
		Since:         time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC),
		FailingChecks: []string{"pg", "disk"},
		VIPs:          []string{"192.0.2.60/24", "192.0.2.61/24"},
	},
}

// socketPath returns a path for a socket in a fresh directory that does not
// exist yet. It does not use t.TempDir: long test names can push the path
// over the 107 bytes that a Unix socket path is allowed.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vipd-control")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "vipd.sock")
}

// serve runs a Server for b on a new socket until the test ends, with tune
// applied before Serve starts, and returns the socket's path.
func serve(t *testing.T, b Backend, tune func(*Server)) (path string, s *Server) {
	t.Helper()
	path = socketPath(t)
	s, err := Listen(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file still there after Serve returned: %v", err)
		}
	})
	return path, s
}

// exchange sends raw on a new connection, half-closes it and returns the
// decoded response.
func exchange(t *testing.T, path, raw string) response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Write in the background: a server that stops reading early must not
	// block the test.
	go func() {
		io.WriteString(c, raw)
		c.(*net.UnixConn).CloseWrite()
	}()
	return readResponse(t, c)
}

func readResponse(t *testing.T, c net.Conn) response {
	t.Helper()
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading response: %v (got %q)", err, line)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q: %v", line, err)
	}
	return resp
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func equalInstances(t *testing.T, got, want []Instance) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d instances, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Since.Equal(w.Since) {
			t.Errorf("instance %d: Since = %v, want %v", i, g.Since, w.Since)
		}
		g.Since, w.Since = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("instance %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestStatus(t *testing.T) {
	path, _ := serve(t, &fakeBackend{insts: testInstances}, nil)
	got, err := Status(ctxT(t), path)
	if err != nil {
		t.Fatal(err)
	}
	equalInstances(t, got, testInstances)
}

func TestStatusNoInstances(t *testing.T) {
	path, _ := serve(t, &fakeBackend{}, nil)
	got, err := Status(ctxT(t), path)
	if err != nil || len(got) != 0 {
		t.Fatalf("Status = %v, %v; want no instances", got, err)
	}
	// Scripts see an empty list, not a missing field.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"command":"status"}`+"\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if want := `{"version":1,"ok":true,"instances":[]}` + "\n"; line != want {
		t.Errorf("response = %q, want %q", line, want)
	}
}

func TestStatusNilVIPsAreEmptyList(t *testing.T) {
	path, _ := serve(t, &fakeBackend{insts: []Instance{{Name: "a"}}}, nil)
	resp := exchange(t, path, `{"command":"status"}`+"\n")
	if len(resp.Instances) != 1 || resp.Instances[0].VIPs == nil {
		t.Errorf("VIPs = %#v, want an empty list", resp.Instances)
	}
}

func TestReload(t *testing.T) {
	b := &fakeBackend{}
	path, _ := serve(t, b, nil)
	if err := Reload(ctxT(t), path); err != nil {
		t.Fatal(err)
	}
	if n := b.reloads.Load(); n != 1 {
		t.Errorf("Backend.Reload called %d times, want 1", n)
	}
}

func TestReloadRefused(t *testing.T) {
	// The daemon's validation errors arrive verbatim, one per line.
	text := "/etc/vipd/vipd.yaml:7: instances[0].vrid: 300 is out of range 1..255\n" +
		"/etc/vipd/vipd.yaml:9: instances[0].vips[0]: \"192.0.2.300\" is not an IPv4 address"
	path, _ := serve(t, &fakeBackend{reloadErr: errors.New(text)}, nil)
	err := Reload(ctxT(t), path)
	var de *DaemonError
	if !errors.As(err, &de) {
		t.Fatalf("Reload error = %v (%T), want a *DaemonError", err, err)
	}
	if de.Error() != text {
		t.Errorf("error text:\n%s\nwant:\n%s", de.Error(), text)
	}
}

func TestReloadsDoNotOverlap(t *testing.T) {
	b := &fakeBackend{}
	path, _ := serve(t, b, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := Reload(ctxT(t), path); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b.overlap.Load() {
		t.Error("Backend.Reload ran concurrently with itself")
	}
	if n := b.reloads.Load(); n != 8 {
		t.Errorf("Backend.Reload called %d times, want 8", n)
	}
}

func TestSocketModes(t *testing.T) {
	path, _ := serve(t, &fakeBackend{}, nil)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o755 {
		t.Errorf("created directory mode = %v, want 0755", di.Mode().Perm())
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := socketPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// What a crashed run leaves: a socket file that nothing listens on.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	s, err := Listen(path, &fakeBackend{insts: testInstances}, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := Status(ctxT(t), path); err != nil {
		t.Error(err)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	path, _ := serve(t, &fakeBackend{insts: testInstances}, nil)
	_, err := Listen(path, &fakeBackend{}, nil)
	if want := "another vipd is running on " + path; err == nil || err.Error() != want {
		t.Fatalf("second Listen: %v, want %q", err, want)
	}
	// The first server is untouched and still answers.
	if _, err := Status(ctxT(t), path); err != nil {
		t.Error(err)
	}
}

func TestOtherFileNotReplaced(t *testing.T) {
	path := socketPath(t)
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, &fakeBackend{}, nil); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a regular file: %v, want an error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("file changed to %q", b)
	}
}

func TestBadRequests(t *testing.T) {
	path, _ := serve(t, &fakeBackend{insts: testInstances}, func(s *Server) { s.maxRequest = 1024 })
	for _, tt := range []struct {
		name, raw, want string
	}{
		{"not json", "hello\n", "malformed request: "},
		{"empty line", "\n", "malformed request: "},
		{"array", "[1,2]\n", "malformed request: "},
		{"trailing garbage", `{"command":"status"} x` + "\n", "malformed request: "},
		{"wrong type", `{"command":7}` + "\n", "malformed request: "},
		{"no command", `{"version":1}` + "\n", `malformed request: no "command"`},
		{"unknown command", `{"command":"dance"}` + "\n", `unknown command "dance"; the commands are status and reload`},
		{"future version", `{"version":2,"command":"status"}` + "\n", "unsupported control protocol version 2; this vipd speaks version 1"},
		{"negative version", `{"version":-1,"command":"status"}` + "\n", "unsupported control protocol version -1"},
		{"too long", strings.Repeat("x", 4096) + "\n", "request too long: the limit is 1 KiB"},
		{"too long without newline", strings.Repeat("x", 4096), "request too long: the limit is 1 KiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, path, tt.raw)
			if resp.OK || !strings.HasPrefix(resp.Error, tt.want) || resp.Version != Version {
				t.Errorf("response = %+v, want an error starting %q", resp, tt.want)
			}
		})
	}
	// The server is still serving.
	if _, err := Status(ctxT(t), path); err != nil {
		t.Errorf("after bad requests: %v", err)
	}
}

func TestLenientRequests(t *testing.T) {
	path, _ := serve(t, &fakeBackend{insts: testInstances}, nil)
	for _, raw := range []string{
		`{"command":"status"}` + "\n",                            // no version: version 1
		`{"version":1,"command":"status"}`,                       // half-close instead of a newline
		`{"version":1,"command":"status","verbose":true}` + "\n", // a field from the future
		`  {"command":"status"}  ` + "\r\n",                      // whitespace, CRLF from a terminal
	} {
		if resp := exchange(t, path, raw); !resp.OK || len(resp.Instances) != 2 {
			t.Errorf("%q: response %+v, want ok with 2 instances", raw, resp)
		}
	}
}

func TestPanicIsAnError(t *testing.T) {
	path, _ := serve(t, &fakeBackend{panicMsg: "boom"}, nil)
	for _, cmd := range []string{"status", "reload"} {
		resp := exchange(t, path, fmt.Sprintf(`{"command":%q}`+"\n", cmd))
		if want := "internal error in " + cmd; resp.OK || !strings.HasPrefix(resp.Error, want) {
			t.Errorf("%s: response %+v, want an error starting %q", cmd, resp, want)
		}
	}
}

func TestIdleClientTimesOut(t *testing.T) {
	path, _ := serve(t, &fakeBackend{}, func(s *Server) { s.timeout = 50 * time.Millisecond })
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp := readResponse(t, c)
	if want := "no request within 50ms"; resp.OK || resp.Error != want {
		t.Errorf("response = %+v, want error %q", resp, want)
	}
}

func TestConnectionLimit(t *testing.T) {
	path, s := serve(t, &fakeBackend{insts: testInstances}, func(s *Server) { s.slots = make(chan struct{}, 1) })
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the idle connection holds the only slot.
	for deadline := time.Now().Add(5 * time.Second); len(s.slots) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("idle connection never accepted")
		}
	}
	_, err = Status(ctxT(t), path)
	var de *DaemonError
	if !errors.As(err, &de) || !strings.HasPrefix(de.Msg, "busy: ") {
		t.Errorf("Status at the limit: %v, want a busy error", err)
	}
	idle.Close()
	for deadline := time.Now().Add(5 * time.Second); len(s.slots) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("slot never released")
		}
	}
	if _, err := Status(ctxT(t), path); err != nil {
		t.Errorf("Status after the idle connection closed: %v", err)
	}
}

func TestServeStopsPromptly(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	// A client that connects and sends nothing must not hold up shutdown.
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
}

func TestReplacedSocketLeftAlone(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed our socket and put another file there.
	os.Remove(path)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the other file was removed: %v", err)
	}
}

func TestCloseWithoutServe(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
	// Serve after Close returns at once.
	if err := s.Serve(context.Background()); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}
