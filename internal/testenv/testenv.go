package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Privileged skips t when the process is not root and CI is unset. In CI
// (CI=true) a non-root run is a failure: privileged tests must never be
// skipped silently there.
func Privileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatalf("privileged test needs iproute2's ip: %v", err)
		}
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("privileged test needs root; CI=%q, euid=%d", os.Getenv("CI"), os.Geteuid())
	}
	t.Skip("needs root and network namespaces (run as root, or set CI=true to make this a failure)")
}

// Name returns a short unique name with the given prefix, usable for
// network namespaces and interface names (at most 15 bytes when prefix is at
// most 6 bytes).
func Name(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// Netns creates a network namespace with a unique name derived from prefix,
// brings its loopback up and deletes it when the test ends.
func Netns(t testing.TB, prefix string) string {
	t.Helper()
	name := Name(prefix)
	IP(t, "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	IP(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// IP runs ip(8) with args and fails the test on error.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on a locked OS thread inside namespace ns. Sockets opened by fn
// stay in ns after Do returns.
func Do(t testing.TB, ns string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	var ferr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is left locked on purpose if switching back fails, so
		// the runtime discards it instead of reusing it in the wrong netns.
		orig, err := netns.Get()
		if err != nil {
			ferr = err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			ferr = err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ferr = err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			ferr = err
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	if ferr != nil {
		t.Fatalf("netns %s: %v", ns, ferr)
	}
}

// WaitLink polls ns's dev for up to 5s until its operstate is want and, when
// want is UP, its qdisc is attached. The kernel's linkwatch work sets both
// asynchronously after "ip link set up" (later still while other namespaces
// are being torn down), and until then what is sent is silently dropped.
func WaitLink(t testing.TB, ns, dev, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ls []struct {
			Qdisc     string `json:"qdisc"`
			OperState string `json:"operstate"`
		}
		out := IP(t, "-n", ns, "-j", "link", "show", "dev", dev)
		if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
			t.Fatalf("ip -j link show: %v: %s", err, out)
		}
		if ls[0].OperState == want && (want != "UP" || ls[0].Qdisc != "noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s: operstate %s, qdisc %s after 5s; want %s", dev, ns, ls[0].OperState, ls[0].Qdisc, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
