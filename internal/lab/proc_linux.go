package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Usage is what a process has used so far, as /proc tells.
type Usage struct {
	// At is when it was read.
	At time.Time
	// Ticks is utime + stime of the whole process, threads that exited
	// included, in steps of USER_HZ (10ms).
	Ticks time.Duration
	// RSS is VmRSS, and Anon RssAnon: the private part of it, without the
	// file pages of the binary and its libraries. Bytes.
	RSS, Anon uint64

	// threads is each live thread's time on a CPU, to the nanosecond
	// (/proc/PID/task/TID/schedstat).
	threads map[int]time.Duration
}

// ReadUsage reads pid's CPU time and memory.
func ReadUsage(pid int) (Usage, error) {
	u := Usage{At: time.Now()}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return u, err
	}
	st, err := p.Stat()
	if err != nil {
		return u, err
	}
	u.Ticks = time.Duration(st.CPUTime() * float64(time.Second))
	status, err := p.NewStatus()
	if err != nil {
		return u, err
	}
	u.RSS, u.Anon = status.VmRSS, status.RssAnon
	threads, err := procfs.AllThreads(pid)
	if err != nil {
		return u, err
	}
	u.threads = make(map[int]time.Duration, len(threads))
	for _, t := range threads {
		// A thread that exits meanwhile is missing in the next reading
		// too, and CPUTime then falls back to the ticks.
		if s, err := t.Schedstat(); err == nil {
			u.threads[t.PID] = time.Duration(s.RunningNanoseconds)
		}
	}
	return u, nil
}

// CPUTime is the CPU time a process used from reading a to reading b: to the
// nanosecond from its threads' schedstat when every thread of a still ran at
// b, else (a thread exited, taking its time with it, or the kernel keeps no
// schedstat) from the 10ms ticks.
func CPUTime(a, b Usage) time.Duration {
	var run time.Duration
	for tid, t := range b.threads {
		run += t - a.threads[tid] // a thread born since a counts whole
	}
	exited := false
	for tid := range a.threads {
		if _, ok := b.threads[tid]; !ok {
			exited = true
		}
	}
	if exited || len(b.threads) == 0 || (run == 0 && b.Ticks > a.Ticks) {
		return b.Ticks - a.Ticks
	}
	return run
}

// Process is one process of a node's daemon.
type Process struct {
	// Role is "vipd", or keepalived's "parent" and "vrrp" (its VRRP
	// child).
	Role string
	PID  int
}

// Processes returns the processes of the node's running daemon: vipd's one,
// or keepalived's parent and VRRP child (from the pid file StartKeepalived
// gave it, waiting up to 5s for the child to write it).
func (n *Node) Processes() ([]Process, error) {
	p := n.current()
	pid, err := n.PID()
	if err != nil {
		return nil, err
	}
	if p.kind != "keepalived" {
		return []Process{{p.kind, pid}}, nil
	}
	child, err := readPIDFile(n.keepalivedBase()+"-vrrp.pid", pid)
	if err != nil {
		return nil, fmt.Errorf("%s: keepalived's VRRP child: %w", n.Name, err)
	}
	return []Process{{"parent", pid}, {"vrrp", child}}, nil
}

// keepalivedBase is where StartKeepalived puts the configuration and pid
// files, less their suffixes.
func (n *Node) keepalivedBase() string { return filepath.Join(n.lab.Dir, n.Name+"-keepalived") }

// readPIDFile reads a pid file, waiting up to 5s for it to name a child of
// parent: a file left by an earlier run names none.
func readPIDFile(file string, parent int) (int, error) {
	var last error
	for range 50 {
		pid, err := childOf(file, parent)
		if err == nil {
			return pid, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return 0, last
}

func childOf(file string, parent int) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	if st.PPID != parent {
		return 0, fmt.Errorf("pid %d of %s is not a child of %d", pid, file, parent)
	}
	return pid, nil
}

// RawSockets counts the raw sockets for IP protocol proto (112 for VRRP) in
// pid's network namespace, IPv4 and IPv6, and the packets the kernel
// dropped on them, receive queue full among the reasons
// (/proc/PID/net/raw's "drops"): what a daemon was sent but never read.
func RawSockets(pid, proto int) (sockets, drops int, err error) {
	for _, f := range []string{"raw", "raw6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return 0, 0, err
		}
		s, d, err := parseNetRaw(b, proto)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/net/%s: %w", pid, f, err)
		}
		sockets, drops = sockets+s, drops+d
	}
	return sockets, drops, nil
}

// parseNetRaw reads /proc/net/raw or raw6: a header line, then a line per
// socket whose local address ends in ":PROTO" (hex) and whose last field is
// its drops.
func parseNetRaw(b []byte, proto int) (sockets, drops int, err error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			return 0, 0, fmt.Errorf("%d fields in %q", len(f), line)
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			return 0, 0, fmt.Errorf("local address %q", f[1])
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return 0, 0, fmt.Errorf("local address %q: %w", f[1], err)
		}
		if int(p) != proto {
			continue
		}
		d, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			return 0, 0, fmt.Errorf("drops %q: %w", f[len(f)-1], err)
		}
		sockets++
		drops += d
	}
	return sockets, drops, nil
}
