package control

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientNothingListening(t *testing.T) {
	missing := socketPath(t)

	stale := socketPath(t)
	os.MkdirAll(filepath.Dir(stale), 0o755)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	for _, tt := range []struct{ path, cause string }{
		{missing, "connect: no such file or directory"},
		{stale, "connect: connection refused"},
	} {
		_, err := Status(ctxT(t), tt.path)
		want := "no vipd answering on " + tt.path + " (is it running? is --socket right?): " + tt.cause
		if err == nil || err.Error() != want {
			t.Errorf("Status error:\n%v\nwant:\n%s", err, want)
		}
		if err := Reload(ctxT(t), tt.path); err == nil || err.Error() != want {
			t.Errorf("Reload error:\n%v\nwant:\n%s", err, want)
		}
	}
	if _, err := Status(ctxT(t), missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

// fakeDaemon listens on a socket and treats each connection with handle.
func fakeDaemon(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	path := socketPath(t)
	os.MkdirAll(filepath.Dir(path), 0o755)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return path
}

func TestClientBadDaemons(t *testing.T) {
	answer := func(line string) func(net.Conn) {
		return func(c net.Conn) {
			readLine(c, maxRequest)
			io.WriteString(c, line)
		}
	}
	for _, tt := range []struct {
		name   string
		handle func(net.Conn)
		want   string
	}{
		{"hangs up", func(net.Conn) {}, "it closed the connection without answering"},
		{"garbage", answer("<html>\n"), "unreadable answer from vipd on "},
		{"newer protocol", answer(`{"version":2,"ok":true}` + "\n"), "answered in control protocol version 2; this vipd speaks version 1"},
		{"error without text", answer(`{"version":1,"ok":false}` + "\n"), "refused status without saying why"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := fakeDaemon(t, tt.handle)
			_, err := Status(ctxT(t), path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Status error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	path := fakeDaemon(t, func(net.Conn) { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Status(ctx, path)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "no answer from vipd on "+path) {
		t.Errorf("Status error = %v, want no answer: deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Status took %v", d)
	}
}
