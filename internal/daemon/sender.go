package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/transport"
)

// sender carries out the Adver_Timer (RFC 9568 §6.4.3) of every Master on a
// plane: one goroutine sends their periodic advertisements, those due
// together in one system call. 255 Masters at 100 ms thus cost the process
// a few wakeups and sendmmsg calls per interval instead of 255 goroutine
// wakeups, timer resets and sendmsg calls, and a Master's driver goroutine
// sleeps while nothing happens.
//
// An advertisement may leave up to sendEarly(interval) before it is due,
// never after: Backups only ever see the Master's adverts as often as
// configured or more often, and Masters that came up at nearly the same
// moment end up sharing their wakeups.
//
// The driver of each instance keeps its entry current (set) while it is
// Master and takes it out (remove) before anything else once it is not, so
// that no periodic advert follows its last one (priority 0 or a farewell).
type sender struct {
	conn PacketConn
	wake chan struct{}

	mu      sync.Mutex
	entries map[*instance]*advertEntry

	// Reused by fire, which only the sender's goroutine runs.
	batch  []transport.Outgoing
	owners []*advertEntry
}

// advertEntry is one Master's periodic advertisement.
type advertEntry struct {
	in       *instance
	due      time.Time
	interval time.Duration
	// pkts are the advertisement for each destination (the group, or each
	// unicast peer), at the priority the Master advertises now.
	pkts []transport.Outgoing
	// failed is the error of the latest send, nil if it went out.
	failed error
}

// sendEarly is how much earlier than due a periodic advertisement may be
// sent so that it shares a wakeup and a system call with others: a quarter
// interval, so that Masters of one interval soon share one wakeup per
// interval (each of Go's wakeups costs the process tens of microseconds
// here, in the scheduler and its monitor thread). Backups then hear a
// Master every 0.75 to 1 interval, never less often than configured.
func sendEarly(interval time.Duration) time.Duration { return interval / 4 }

func newSender(conn PacketConn) *sender {
	return &sender{conn: conn, wake: make(chan struct{}, 1), entries: map[*instance]*advertEntry{}}
}

// set makes the sender advertise pkts for in every interval. A zero due
// keeps the time of the next advertisement of an existing entry (a new
// priority goes out when the old one would have).
func (s *sender) set(in *instance, pkts []transport.Outgoing, interval time.Duration, due time.Time) {
	s.mu.Lock()
	e := s.entries[in]
	if e == nil {
		e = &advertEntry{in: in, due: time.Now()}
		s.entries[in] = e
	}
	if !due.IsZero() {
		e.due = due
	}
	e.pkts, e.interval = pkts, interval
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// remove stops in's periodic advertisements. Once it returns, none is sent,
// not even one of a batch under way.
func (s *sender) remove(in *instance) {
	s.mu.Lock()
	delete(s.entries, in)
	s.mu.Unlock()
}

// next returns when the earliest advertisement is due, or the zero time.
func (s *sender) next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, e := range s.entries {
		if next.IsZero() || e.due.Before(next) {
			next = e.due
		}
	}
	return next
}

// run sends the advertisements until ctx is done.
func (s *sender) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		if next := s.next(); !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			continue
		case <-timer.C:
		}
		s.fire(time.Now())
	}
}

// fire sends every advertisement due by now (or within its sendEarly) in
// one batch and schedules each entry's next one.
func (s *sender) fire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch, s.owners = s.batch[:0], s.owners[:0]
	for _, e := range s.entries {
		if e.due.After(now.Add(sendEarly(e.interval))) {
			continue
		}
		e.due = e.due.Add(e.interval)
		if e.due.Before(now) {
			// Far behind (the process was stopped): start afresh rather
			// than catch up in a burst.
			e.due = now.Add(e.interval)
		}
		e.failed = nil
		for _, p := range e.pkts {
			s.batch = append(s.batch, p)
			s.owners = append(s.owners, e)
		}
	}
	if len(s.batch) == 0 {
		return
	}
	for sent := 0; sent < len(s.batch); {
		n, err := s.conn.WriteBatch(s.batch[sent:])
		sent += n
		if err != nil {
			// One message failed (a unicast peer without a route, say):
			// its instance hears of it, the rest still go.
			s.owners[sent].failed = err
			sent++
		}
	}
	for i, e := range s.owners {
		if i > 0 && s.owners[i-1] == e {
			continue
		}
		e.in.sendResult(e.failed)
	}
}
