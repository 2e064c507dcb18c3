package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestNotifyHooks drives n1 through every state a notify hook can report —
// Backup, Master, Backup at a lowered effective priority, Fault, Stop — and
// checks that the generic command got keepalived's arguments and that each
// per-state command ran right after it, in the order of the transitions.
func TestNotifyHooks(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	dir := t.TempDir()
	logFile := filepath.Join(dir, "hooks.log")
	notify := svcWriteScript(t, dir, "notify.sh", fmt.Sprintf("printf '%%s\\n' \"$*\" >> %s\n", logFile))
	state := svcWriteScript(t, dir, "state.sh", fmt.Sprintf("printf '%%s\\n' \"$1\" >> %s\n", logFile))
	web := svcStartHealthHTTP(t, n1.NS, "127.0.0.1:8081")
	disk := svcStartHealthHTTP(t, n1.NS, "127.0.0.1:8082")
	in := svcInst(150, true)
	in.TrackChecks = []svcTrack{{Name: "web", Weight: -60}, {Name: "disk"}}
	in.Notify = &svcNotify{
		Command: []string{notify},
		Master:  []string{state, "master"},
		Backup:  []string{state, "backup"},
		Fault:   []string{state, "fault"},
		Stop:    []string{state, "stop"},
	}
	startSvc(t, l, n1, svcConfig{
		Checks: []svcCheck{
			{Name: "web", HTTP: web.URL, InitialUp: true},
			{Name: "disk", HTTP: disk.URL, InitialUp: true},
		},
		Instances: []svcInstance{in},
	})

	log := svcExpectLines(t, logFile)
	expect := log.expect
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	expect("n1's hooks report backup, then master",
		"INSTANCE api BACKUP 150", "backup", "INSTANCE api MASTER 150", "master")
	startSvc(t, l, n2, svcConfig{Instances: []svcInstance{svcInst(100, true)}})
	svcWaitState(t, svcSocket(l, n2), "api", "backup")

	web.set(svcHealthFail) // 150 - 60 = 90 < 100: n2 preempts
	waitHolders(t, l, "n2 preempts n1 at 90", lab.Only(n2))
	expect("n1's hooks report backup at its effective priority", "INSTANCE api BACKUP 90", "backup")
	web.set(svcHealthOK)
	waitHolders(t, l, "n1 preempts back at 150", lab.Only(n1))
	expect("n1's hooks report master again", "INSTANCE api MASTER 150", "master")
	disk.set(svcHealthFail) // fault-tracked
	waitHolders(t, l, "n2 takes over from n1 in FAULT", lab.Only(n2))
	expect("n1's hooks report fault", "INSTANCE api FAULT 150", "fault")
	disk.set(svcHealthOK)
	waitHolders(t, l, "n1 recovers and preempts", lab.Only(n1))
	expect("n1's hooks report backup then master", "INSTANCE api BACKUP 150", "backup", "INSTANCE api MASTER 150", "master")
	if _, err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	// The hooks queued at shutdown run before vipd exits.
	if got, w := svcReadLines(t, logFile), append(log.want, "INSTANCE api STOP 150", "stop"); !slices.Equal(got, w) {
		t.Errorf("hook log after n1 stopped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
}

// TestHangingHookDoesNotDelayFailover gives n2 a notify command that hangs on
// BACKUP and STOP. While the BACKUP hook hangs, n1 stops and n2 must take
// over within Skew_Time as if it had no hook; the hung hook is killed, with
// its children, at the notify timeout and the queued MASTER hook runs next;
// at shutdown the hanging STOP hook does not hold vipd up.
func TestHangingHookDoesNotDelayFailover(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	dir := t.TempDir()
	logFile := filepath.Join(dir, "hooks.log")
	const hookTimeout = 2 * time.Second
	hang := svcWriteScript(t, dir, "hang.sh", fmt.Sprintf(`printf '%%s\n' "$*" >> %[1]s
case "$3" in
BACKUP|STOP)
	sleep 30 &
	echo $! > %[2]s/"$3".pid
	wait
	;;
esac
`, logFile, dir))
	startSvc(t, l, n1, svcConfig{Instances: []svcInstance{svcInst(150, true)}})
	waitHolders(t, l, "n1 alone holds the VIP", lab.Only(n1))
	in := svcInst(100, true)
	in.Notify = &svcNotify{Command: []string{hang}, Timeout: hookTimeout}
	startSvc(t, l, n2, svcConfig{Instances: []svcInstance{in}})

	// hungPID waits for the hook's pid file of state and returns the
	// pid of its sleep.
	hungPID := func(state string) int {
		t.Helper()
		var pid int
		svcWaitFor(t, "the "+state+" hook hangs", patience, func() (bool, string) {
			b, err := os.ReadFile(filepath.Join(dir, state+".pid"))
			if err != nil {
				return false, err.Error()
			}
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil, fmt.Sprintf("pid file %q: %v", b, err)
		})
		return pid
	}
	backupPID := hungPID("BACKUP")
	hungSince := time.Now()
	time.Sleep(3 * interval) // n2 hears n1
	if !svcAlive(backupPID) {
		t.Fatalf("the hanging BACKUP hook's sleep (pid %d) is not running", backupPID)
	}

	taken := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := l.WaitHolders(ctx, lab.VIP, includes(n2)); err != nil {
			close(taken)
			return
		}
		taken <- time.Now()
	}()
	sigterm := time.Now()
	if _, err := n1.Stop(); err != nil {
		t.Errorf("stopping n1: %v", err)
	}
	at, ok := <-taken
	if !ok {
		t.Fatal("n2 did not take the VIP after n1 stopped")
	}
	handover := at.Sub(sigterm)
	t.Logf("n2 held the VIP %v after n1's SIGTERM, its BACKUP hook hanging for %v", handover.Round(time.Millisecond), at.Sub(hungSince).Round(time.Millisecond))
	if bound := lab.SkewTime(100, interval) + 500*time.Millisecond; handover > bound {
		t.Errorf("n2 took over %v after n1's SIGTERM, want within %v: the hanging hook delayed it", handover.Round(time.Millisecond), bound)
	}
	if at.Sub(hungSince) < hookTimeout && !svcAlive(backupPID) {
		t.Errorf("the BACKUP hook was gone before its timeout")
	}

	svcWaitFor(t, "the MASTER hook runs after the hung one is killed", hookTimeout+patience, func() (bool, string) {
		got := svcReadLines(t, logFile)
		return slices.Contains(got, "INSTANCE api MASTER 100"), fmt.Sprintf("hook log %q", got)
	})
	if since := time.Since(hungSince); since < hookTimeout-200*time.Millisecond {
		t.Errorf("the MASTER hook ran %v after the BACKUP hook started hanging, want after the %v timeout", since.Round(time.Millisecond), hookTimeout)
	}
	svcWaitFor(t, "the hung hook's sleep is killed with its group", 5*time.Second, func() (bool, string) {
		return !svcAlive(backupPID), fmt.Sprintf("pid %d still alive", backupPID)
	})
	var failed bool
	for _, r := range svcLogRecords(t, n2, "notify hook failed") {
		if c, _ := r["command"].(string); strings.Contains(c, "BACKUP") {
			failed = true
		}
	}
	if !failed {
		t.Errorf("n2 logged no \"notify hook failed\" for the hung BACKUP hook")
	}

	exit, err := n2.Stop()
	if err != nil {
		t.Errorf("stopping n2: %v", err)
	}
	t.Logf("n2 exited %v after SIGTERM with its STOP hook hanging", exit.Round(time.Millisecond))
	if exit > 1500*time.Millisecond {
		t.Errorf("n2 took %v to exit with a hanging STOP hook, want about the 300ms drain", exit.Round(time.Millisecond))
	}
	got := svcReadLines(t, logFile)
	if want := []string{"INSTANCE api BACKUP 100", "INSTANCE api MASTER 100", "INSTANCE api STOP 100"}; !slices.Equal(got, want) {
		t.Errorf("hook log %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "STOP.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && svcAlive(pid) {
			t.Errorf("the STOP hook's sleep (pid %d) outlived vipd", pid)
		}
	}
}
