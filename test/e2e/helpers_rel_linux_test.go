package e2e

// Helpers of the reliability tests (hostile packets, partitions, crashes,
// packet loss) that the lab does not offer: metrics metrics from inside a
// namespace, a daemon's pid and resident memory, a sampler of the VIP's
// holders and nftables rules that drop a share of VRRP.

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// metricsListen is where every node's vipd serves its metrics: each node has
// its own network namespace, so one address serves them all.
const metricsListen = "127.0.0.1:9405"

// startVipdMetrics starts vipd on n with the instances and a metrics
// listener on metricsListen.
func startVipdMetrics(t *testing.T, l *lab.Lab, n *lab.Node, ins ...lab.Instance) {
	t.Helper()
	cfg := fmt.Sprintf("metrics: {listen: %q}\n", metricsListen) +
		lab.VipdConfig(filepath.Join(l.Dir, n.Name+".sock"), ins...)
	if err := n.StartVipd(vipdBin, cfg); err != nil {
		t.Fatal(err)
	}
}

// promSeries is one sample of the Prometheus text format.
type promSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSamples is a scrape of /metrics.
type metricSamples []promSeries

// sum adds the values of the series called name whose labels include every
// key=value pair of want (given as alternating keys and values).
func (m metricSamples) sum(name string, want ...string) float64 {
	var total float64
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// byLabel returns the series called name by the value of label.
func (m metricSamples) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}

// scrapeNode fetches http://metricsListen/metrics from inside n's
// namespace (lab.Node.Metrics).
func scrapeNode(ctx context.Context, n *lab.Node) (metricSamples, error) {
	body, err := n.Metrics(ctx, metricsListen)
	if err != nil {
		return nil, err
	}
	return parseMetrics([]byte(body))
}

// scrapeMetrics is scrapeNode for a test: it retries for a while (the listener may
// still be starting) and fails t if it never succeeds.
func scrapeMetrics(t *testing.T, n *lab.Node) metricSamples {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		m, err := scrapeNode(ctx, n)
		if err == nil {
			return m
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metrics of %s: %v", n.Name, last)
	return nil
}

// parseMetrics reads a Prometheus text exposition (lab.Samples, expfmt).
func parseMetrics(b []byte) (metricSamples, error) {
	ss, err := lab.Samples(b)
	if err != nil {
		return nil, err
	}
	out := make(metricSamples, len(ss))
	for i, s := range ss {
		out[i] = promSeries{name: s.Name, labels: s.Labels, value: s.Value}
	}
	return out, nil
}

// rssKiB reads VmRSS (procfs, lab.ReadUsage), in KiB.
func rssKiB(pid int) (int, error) {
	u, err := lab.ReadUsage(pid)
	if err != nil {
		return 0, err
	}
	return int(u.RSS / 1024), nil
}

// stateChangesTo returns n's vipd state changes into state to ("" for any)
// logged at or after since.
func stateChangesTo(t *testing.T, n *lab.Node, to string, since time.Time) []lab.StateChange {
	t.Helper()
	all, err := n.StateChanges()
	if err != nil {
		t.Fatalf("%s: state changes: %v", n.Name, err)
	}
	var out []lab.StateChange
	for _, c := range all {
		if (to == "" || c.To == to) && !c.Time.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// holderSample is who held the VIP at one moment.
type holderSample struct {
	at      time.Time
	holders []*lab.Node
}

// holderSampler records the VIP's holders every few milliseconds.
type holderSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []holderSample
	err     error
}

// sampleHolders samples the holders of lab.VIP every interval until stop,
// for at most limit.
func sampleHolders(l *lab.Lab, every, limit time.Duration) *holderSampler {
	return sampleHoldersOf(l, lab.VIP, every, limit)
}

// sampleHoldersOf is sampleHolders for vip.
func sampleHoldersOf(l *lab.Lab, vip netip.Prefix, every, limit time.Duration) *holderSampler {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	s := &holderSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			h, err := l.Holders(vip)
			now := time.Now()
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.samples = append(s.samples, holderSample{at: now, holders: h})
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the samples.
func (s *holderSampler) stop(t *testing.T) []holderSample {
	t.Helper()
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("sampling the VIP's holders: %v", s.err)
	}
	return s.samples
}

// longestRun returns the longest stretch of consecutive samples for which
// cond held, from its first to its last sample, and when it began; zero if
// cond never held. A stretch of one sample counts as one sampling period
// when period is given, so that a short overlap is not reported as nothing.
func longestRun(samples []holderSample, period time.Duration, cond func([]*lab.Node) bool) (time.Duration, time.Time, int) {
	var best time.Duration
	var bestAt time.Time
	count := 0
	for i := 0; i < len(samples); {
		if !cond(samples[i].holders) {
			i++
			continue
		}
		j := i
		for j+1 < len(samples) && cond(samples[j+1].holders) {
			j++
		}
		count++
		d := samples[j].at.Sub(samples[i].at) + period
		if d > best {
			best, bestAt = d, samples[i].at
		}
		i = j + 1
	}
	return best, bestAt, count
}

// dropVRRP makes the switch drop pct percent of VRRP packets until t ends
// (lab.DropVRRP).
func dropVRRP(t *testing.T, l *lab.Lab, pct int) {
	t.Helper()
	switchTable(t, l, lab.LossTable, l.DropVRRP(pct))
}

// stopDroppingVRRP removes dropVRRP's table; it reports whether there was one.
func stopDroppingVRRP(l *lab.Lab) bool { return deleteBridgeTable(l, lab.LossTable) }

// healFirst is lab.HealFirst until t ends.
func healFirst(t *testing.T, l *lab.Lab, first string) {
	t.Helper()
	switchTable(t, l, lab.HealTable, l.HealFirst(first))
}

// switchTable fails t if loading a switch table failed (err), and deletes
// the table when t ends.
func switchTable(t *testing.T, l *lab.Lab, table string, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteBridgeTable(l, table) })
}

// deleteBridgeTable removes a switch table; it reports whether there was one.
func deleteBridgeTable(l *lab.Lab, table string) bool { return l.DeleteSwitchTable(table) == nil }
