package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
)

// maxResponse bounds what the client reads. A status response takes a few
// hundred bytes per instance.
const maxResponse = 16 << 20

// Status asks the daemon listening on the socket at path for the state of
// its instances.
func Status(ctx context.Context, path string) ([]Instance, error) {
	resp, err := roundTrip(ctx, path, "status")
	if err != nil {
		return nil, err
	}
	return resp.Instances, nil
}

// Reload asks the daemon listening on the socket at path to reload its config
// file. If the daemon refuses, the error is a *DaemonError with the daemon's
// reasons. For an invalid config these are FILE:LINE: FIELD: MESSAGE lines.
func Reload(ctx context.Context, path string) error {
	_, err := roundTrip(ctx, path, "reload")
	return err
}

func roundTrip(ctx context.Context, path, command string) (*response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, dialError(path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()

	req, err := json.Marshal(request{Version: Version, Command: command})
	if err != nil {
		return nil, err
	}
	_, werr := c.Write(append(req, '\n'))
	// Read even if the write failed: a busy server answers and closes without
	// reading, and that answer explains the failure better than EPIPE.
	line, err := readLine(c, maxResponse)
	if err != nil {
		if werr != nil {
			err = werr
		}
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, errNoLine), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
			err = errors.New("it closed the connection without answering")
		case errors.Is(err, errTooLong):
			err = fmt.Errorf("its answer is longer than %s", sizeString(maxResponse))
		}
		return nil, fmt.Errorf("no answer from vipd on %s: %w", path, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("unreadable answer from vipd on %s: %w", path, err)
	}
	if !resp.OK {
		if resp.Error == "" {
			resp.Error = fmt.Sprintf("vipd on %s refused %s without saying why", path, command)
		}
		return nil, &DaemonError{Msg: resp.Error}
	}
	if v := resp.Version; v != Version && v != 0 {
		return nil, fmt.Errorf("vipd on %s answered in control protocol version %d; this vipd speaks version %d", path, v, Version)
	}
	return &resp, nil
}

// dialError explains a failed connection. The cause is the system call's
// error, such as "connect: no such file or directory", without the path
// repeated in it.
func dialError(path string, err error) error {
	cause := err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op.Err
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("not allowed to connect to vipd on %s (the socket is mode 0600; run as its owner, usually root): %w", path, cause)
	}
	return fmt.Errorf("no vipd answering on %s (is it running? is --socket right?): %w", path, cause)
}
