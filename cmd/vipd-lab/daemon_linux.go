package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// metricsListen is where vipd serves metrics inside each node's namespace.
const metricsListen = "127.0.0.1:9405"

// A daemon is the VRRP implementation under test in a lab's nodes, vipd or
// Debian's keepalived, with the same calls for both.
type daemon struct {
	name string // "vipd" or "keepalived"
	lab  *lab.Lab
	// bin is vipd's binary and logLevel its --log-level ("": debug).
	bin, logLevel string
}

func vipdIn(l *lab.Lab, bin string) *daemon { return &daemon{name: "vipd", lab: l, bin: bin} }

func keepalivedIn(l *lab.Lab) *daemon { return &daemon{name: "keepalived", lab: l} }

// bothIn are vipd and keepalived in l, in the order the scenarios run them.
func (env *benchEnv) bothIn(l *lab.Lab) []*daemon {
	return []*daemon{vipdIn(l, env.vipd), keepalivedIn(l)}
}

func needKeepalived() error {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return fmt.Errorf("keepalived not found (apt-get install keepalived): %w", err)
	}
	return nil
}

func (d *daemon) isVipd() bool { return d.name == "vipd" }

// start runs the daemon in n with instances ins; vipd serves metrics on
// metricsListen.
func (d *daemon) start(n *lab.Node, ins ...lab.Instance) error {
	if !d.isVipd() {
		return n.StartKeepalived(lab.KeepalivedConfig(n.Name, ins...))
	}
	f := lab.VipdFile{ControlSocket: filepath.Join(d.lab.Dir, n.Name+".sock"), MetricsListen: metricsListen, Instances: ins}
	return n.StartVipdAt(d.bin, f.YAML(), cmp.Or(d.logLevel, "debug"))
}

// startAll starts the daemon in every node for f's VIP.
func (d *daemon) startAll(f family, interval time.Duration) error {
	for i, n := range d.lab.Nodes {
		if err := d.start(n, instanceOf(f, i, interval)); err != nil {
			return err
		}
	}
	return nil
}

// masters counts n's transitions to master since (vipd, from its log's
// state changes) or logged after offset bytes of its log (keepalived), and
// returns the log's length.
func (d *daemon) masters(n *lab.Node, since time.Time, offset int64) (int, int64, error) {
	if !d.isVipd() {
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			return 0, 0, err
		}
		if offset > int64(len(b)) {
			offset = 0
		}
		return bytes.Count(b[offset:], []byte("Entering MASTER STATE")), int64(len(b)), nil
	}
	cs, err := n.StateChanges()
	if err != nil {
		return 0, 0, err
	}
	count := 0
	for _, c := range cs {
		if c.To == "master" && !c.Time.Before(since) {
			count++
		}
	}
	st, err := os.Stat(n.LogPath())
	if err != nil {
		return 0, 0, err
	}
	return count, st.Size(), nil
}

// vrrpCounts are a node's counters since its daemon started, summed over
// its instances, and when they were read: at ± spread, as the daemon takes
// its snapshot at some moment while it is asked.
type vrrpCounts struct {
	at                          time.Time
	spread                      time.Duration
	sent, received, transitions int
}

// readBetween sets c's time to the middle of [start, end].
func (c *vrrpCounts) readBetween(start, end time.Time) {
	d := end.Sub(start)
	c.at, c.spread = start.Add(d/2), d/2
}

// counts reads n's VRRP counters so far: vipd's metrics, keepalived's
// statistics and log.
func (d *daemon) counts(ctx context.Context, n *lab.Node) (vrrpCounts, error) {
	var c vrrpCounts
	if !d.isVipd() {
		stats, asked, err := n.KeepalivedStats(ctx)
		if err != nil {
			return c, err
		}
		c.readBetween(asked, time.Now())
		for _, s := range stats {
			c.sent += s.AdvertsSent
			c.received += s.AdvertsReceived
		}
		log, err := n.Log()
		if err != nil {
			return c, err
		}
		c.transitions = keepalivedTransitions(log)
		return c, nil
	}
	// promhttp gathers every counter before it writes a byte: the
	// snapshot is taken before the first byte of the answer, however long
	// the rest takes.
	var first atomic.Int64
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first.Store(time.Now().UnixNano()) }}
	start := time.Now()
	text, err := n.Metrics(httptrace.WithClientTrace(ctx, trace), metricsListen)
	if err != nil {
		return c, err
	}
	c.readBetween(start, time.Unix(0, first.Load()))
	// A counter vector has no sample until it first counts: a missing
	// one is 0.
	sent, _ := lab.MetricSum(text, "vipd_adverts_sent_total")
	received, _ := lab.MetricSum(text, "vipd_adverts_received_total")
	transitions, _ := lab.MetricSum(text, "vipd_transitions_total")
	c.sent, c.received, c.transitions = int(sent), int(received), int(transitions)
	return c, nil
}

// keepalivedTransitions counts the state changes keepalived logged since the
// lab last started it ("(s0v1) Entering MASTER STATE", also BACKUP and
// FAULT).
func keepalivedTransitions(log string) int {
	if i := strings.LastIndex(log, " starting keepalived "); i >= 0 { // the lab's line
		log = log[i:]
	}
	count := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ") Entering ") && strings.Contains(line, " STATE") {
			count++
		}
	}
	return count
}

// goroutines reads go_goroutines from vipd's metrics on n, retrying for 5s
// while the listener comes up.
func goroutines(ctx context.Context, n *lab.Node) (int, error) {
	var last error
	for range 20 {
		text, err := n.Metrics(ctx, metricsListen)
		if err == nil {
			if v, ok := lab.MetricValue(text, "go_goroutines"); ok {
				return int(v), nil
			}
			return 0, fmt.Errorf("%s: no go_goroutines in the metrics", n.Name)
		}
		last = err
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, last
}
