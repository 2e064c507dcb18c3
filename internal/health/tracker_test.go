package health_test

import (
	"testing"

	"github.com/vipd/vipd/internal/health"
)

// TestTracker feeds results ('+' ok, '-' failure) and compares the state
// after each ('U' up, 'd' down) and the changes ('^' up, 'v' down, '.' none).
func TestTracker(t *testing.T) {
	tests := []struct {
		name        string
		rise, fall  int
		initialUp   bool
		in          string
		wantState   string
		wantChanges string
	}{
		{"starts down, rises after rise successes", 2, 3, false, "++++", "dUUU", ".^.."},
		{"starts up, falls after fall failures", 2, 3, true, "---+", "UUdd", "..v."},
		{"down: a failure restarts the rise count", 3, 1, false, "++-+++", "dddddU", ".....^"},
		{"up: a success restarts the fall count", 1, 3, true, "--+---", "UUUUUd", ".....v"},
		{"flapping never rises with rise 2", 2, 2, false, "+-+-+-+-", "dddddddd", "........"},
		{"flapping never falls with fall 2", 2, 2, true, "-+-+-+-+", "UUUUUUUU", "........"},
		{"flapping follows every result with rise and fall 1", 1, 1, false, "+-+-", "UdUd", "^v^v"},
		{"full cycle", 2, 3, true, "---++---", "UUddUUUd", "..v.^..v"},
		{"rise and fall below 1 count as 1", 0, -1, false, "+-", "Ud", "^v"},
		{"failures while down change nothing", 2, 3, false, "----", "dddd", "...."},
		{"successes while up change nothing", 2, 3, true, "++++", "UUUU", "...."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := health.NewTracker(health.Spec{Rise: tt.rise, Fall: tt.fall, InitialUp: tt.initialUp})
			if tr.Up() != tt.initialUp {
				t.Fatalf("initial Up() = %v, want %v", tr.Up(), tt.initialUp)
			}
			var state, changes []byte
			for _, r := range []byte(tt.in) {
				up, changed := tr.Observe(r == '+')
				if up != tr.Up() {
					t.Fatalf("Observe returned up=%v but Up() = %v", up, tr.Up())
				}
				state = append(state, map[bool]byte{true: 'U', false: 'd'}[up])
				c := byte('.')
				if changed {
					c = map[bool]byte{true: '^', false: 'v'}[up]
				}
				changes = append(changes, c)
			}
			if string(state) != tt.wantState || string(changes) != tt.wantChanges {
				t.Errorf("input %s: states %s changes %s, want %s %s",
					tt.in, state, changes, tt.wantState, tt.wantChanges)
			}
		})
	}
}
