package health

// Tracker is the rise/fall state of one check: it turns a stream of run
// results into up/down. It is pure — no clock, no goroutines, no locks — so
// its owner (a Checker's run loop) must not share it.
type Tracker struct {
	rise, fall int
	up         bool
	// streak counts the consecutive results that disagree with up.
	streak int
}

// NewTracker returns the tracker of s, up when s.InitialUp. Rise and Fall
// below 1 count as 1.
func NewTracker(s Spec) *Tracker {
	return &Tracker{rise: max(s.Rise, 1), fall: max(s.Fall, 1), up: s.InitialUp}
}

// Observe records one result and returns the state after it and whether it
// changed. An up check goes down after Fall failures in a row, a down check
// comes up after Rise successes in a row; any result that agrees with the
// current state restarts the count.
func (t *Tracker) Observe(ok bool) (up, changed bool) {
	if ok == t.up {
		t.streak = 0
		return t.up, false
	}
	t.streak++
	need := t.rise
	if t.up {
		need = t.fall
	}
	if t.streak < need {
		return t.up, false
	}
	t.up, t.streak = ok, 0
	return t.up, true
}

// Up reports the current state.
func (t *Tracker) Up() bool { return t.up }
