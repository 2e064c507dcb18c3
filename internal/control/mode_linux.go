package control

import "syscall"

// presetMode sets the socket's mode before bind. Linux gives the socket file
// the mode of the socket inode, minus the umask. So the file is never
// reachable with a looser mode, not even between bind and chmod.
func presetMode(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = syscall.Fchmod(int(fd), socketMode) }); cerr != nil {
		return cerr
	}
	return err
}
