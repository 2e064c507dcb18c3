package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

const (
	socketMode = 0o600
	dirMode    = 0o755

	// Server limits; see the package documentation.
	maxRequest  = 64 << 10
	connTimeout = 5 * time.Second
	maxConns    = 16

	// probeTimeout bounds the check for a live daemon on an existing socket.
	probeTimeout = time.Second
)

// Server answers requests on the control socket.
type Server struct {
	path string
	b    Backend
	log  *slog.Logger
	ln   *net.UnixListener
	file os.FileInfo // the socket file as created, so that only ours is removed

	// Limits. Tests make them smaller.
	maxRequest int
	timeout    time.Duration
	slots      chan struct{} // one per connection being served

	reloadMu sync.Mutex // serializes Backend.Reload

	mu      sync.Mutex
	active  map[net.Conn]struct{}
	closing bool

	closeOnce sync.Once
	closeErr  error
}

// Listen creates the control socket at path with mode 0600. If the parent
// directory is missing, Listen creates it with mode 0755. A socket file left
// by a crashed run is replaced only if nothing answers on it. A live socket
// is an error ("another vipd is running on PATH"), and so is any other kind
// of file at path. log may be nil.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := removeStale(path, log); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: presetMode}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln := l.(*net.UnixListener)
	// Serve removes the file itself, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// presetMode already did this on Linux. Other systems get it here, just
	// after bind.
	if err := os.Chmod(path, socketMode); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	log.Info("control socket listening", "path", path)
	return &Server{
		path:       path,
		b:          b,
		log:        log,
		ln:         ln,
		file:       fi,
		maxRequest: maxRequest,
		timeout:    connTimeout,
		slots:      make(chan struct{}, maxConns),
		active:     make(map[net.Conn]struct{}),
	}, nil
}

// makeDir creates dir with mode 0755 (not subject to the umask) if it is
// missing, and its own missing parents too.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	return os.Chmod(dir, dirMode)
}

// removeStale clears the way for a new socket at path. It removes a socket
// that nothing listens on, which is what a crashed run leaves behind.
// Anything else at path is left alone and reported as an error.
func removeStale(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket: %s exists and is not a socket; not replacing it", path)
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("another vipd is running on %s", path)
	}
	// Only "connection refused" proves that nobody listens. A timeout or a
	// permission error does not.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket: %s exists and cannot be probed: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket: removing stale socket: %w", err)
	}
	log.Info("removed stale control socket", "path", path)
	return nil
}

// Serve answers requests until ctx is done or Close is called. Then it
// closes the listener, interrupts connections still open, waits for their
// handlers and removes the socket file. It returns an error only if that
// removal fails. Call Serve at most once.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var wg sync.WaitGroup
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() {
				break
			}
			// Every other accept error on a Unix listener is transient,
			// such as running out of file descriptors. Back off as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("control socket accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case s.slots <- struct{}{}:
		default:
			s.refuse(c, fmt.Sprintf("busy: already serving %d control connections", cap(s.slots)))
			continue
		}
		if !s.track(c) {
			c.Close()
			<-s.slots
			break
		}
		wg.Go(func() {
			defer func() { <-s.slots }()
			defer s.untrack(c)
			s.handle(c)
		})
	}
	wg.Wait()
	return s.Close()
}

// Close stops the server and removes the socket file if it is still the one
// that Listen created. It is for a Server whose Serve never runs; Serve calls
// Close itself when it returns.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		for c := range s.active {
			c.SetDeadline(aLongTimeAgo)
		}
		s.mu.Unlock()
		s.ln.Close()
		s.closeErr = s.removeSocket()
	})
	return s.closeErr
}

func (s *Server) removeSocket() error {
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if !os.SameFile(fi, s.file) {
		// Something else replaced it, maybe a newer vipd. Leave it.
		s.log.Warn("control socket file was replaced; leaving it", "path", s.path)
		return nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers c so that Close can interrupt it. It returns false
// if the server is closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, c)
}

// setDeadline arms the deadline that f sets on c, unless Close has already
// interrupted c. Close's past deadline must stay in place.
func (s *Server) setDeadline(f func(time.Time) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		f(time.Now().Add(s.timeout))
	}
}

// refuse answers c with an error without reading its request. It is used when
// the server is at its connection limit.
func (s *Server) refuse(c net.Conn, msg string) {
	s.log.Warn("control connection refused", "reason", msg)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	s.write(c, failure(msg))
	c.Close()
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	s.setDeadline(c.SetReadDeadline)
	resp, ok := s.respond(c)
	if !ok {
		return
	}
	s.setDeadline(c.SetWriteDeadline)
	s.write(c, resp)
}

// respond reads the request on c and computes the response. It returns
// false if there is nobody to answer: the client closed without sending
// anything, as the liveness probe of another vipd's Listen does.
func (s *Server) respond(c net.Conn) (response, bool) {
	line, err := readLine(c, s.maxRequest)
	switch {
	case errors.Is(err, errNoLine):
		return response{}, false
	case errors.Is(err, errTooLong):
		s.log.Debug("bad control request", "reason", "too long")
		return failure(fmt.Sprintf("request too long: the limit is %s", sizeString(s.maxRequest))), true
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Debug("bad control request", "reason", "timeout")
		return failure(fmt.Sprintf("no request within %v", s.timeout)), true
	case err != nil:
		s.log.Debug("control connection failed", "err", err)
		return response{}, false
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		s.log.Debug("bad control request", "reason", "malformed", "err", err)
		return failure("malformed request: " + err.Error()), true
	}
	if req.Version < 0 || req.Version > Version {
		return failure(fmt.Sprintf("unsupported control protocol version %d; this vipd speaks version %d", req.Version, Version)), true
	}
	s.log.Debug("control request", "command", req.Command)
	switch req.Command {
	case "status":
		return s.call(req.Command, s.status), true
	case "reload":
		return s.call(req.Command, s.reload), true
	case "":
		return failure(`malformed request: no "command"`), true
	}
	return failure(fmt.Sprintf("unknown command %q; the commands are status and reload", req.Command)), true
}

// call runs a command against the Backend. A panic there is turned into an
// error response. It would be wrong for a bug on the control path to take
// the whole daemon down, with its VIPs.
func (s *Server) call(cmd string, f func() response) (resp response) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control command panicked", "command", cmd, "panic", r, "stack", string(debug.Stack()))
			resp = failure(fmt.Sprintf("internal error in %s; see the daemon's log", cmd))
		}
	}()
	return f()
}

func (s *Server) status() response {
	insts := append([]Instance{}, s.b.Status()...)
	for i := range insts {
		if insts[i].VIPs == nil {
			insts[i].VIPs = []string{}
		}
	}
	resp := response{Version: Version, OK: true, Instances: insts}
	if vb, ok := s.b.(VirtualServerBackend); ok {
		resp.VirtualServers = vb.VirtualServers()
		for i := range resp.VirtualServers {
			if resp.VirtualServers[i].RealServers == nil {
				resp.VirtualServers[i].RealServers = []RealServer{}
			}
		}
	}
	if bb, ok := s.b.(BGPBackend); ok {
		resp.BGP = bb.BGP()
	}
	return resp
}

func (s *Server) reload() response {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	// The Backend logs the outcome. This says where the request came from.
	s.log.Info("reload requested on the control socket")
	if err := s.b.Reload(); err != nil {
		return failure(err.Error())
	}
	return response{Version: Version, OK: true}
}

func failure(msg string) response {
	return response{Version: Version, Error: msg}
}

func (s *Server) write(c net.Conn, resp response) {
	b, err := json.Marshal(resp)
	if err != nil {
		// Only a Backend value that cannot be encoded gets here.
		b, _ = json.Marshal(failure("encoding the response: " + err.Error()))
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.log.Debug("control response not delivered", "err", err)
	}
}
