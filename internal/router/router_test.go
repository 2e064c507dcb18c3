package router

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	self  = netip.MustParseAddr("192.0.2.12")
	lower = netip.MustParseAddr("192.0.2.11")
	upper = netip.MustParseAddr("192.0.2.13")
)

// addrs compares netip.Addr values in actions.
var addrs = cmpopts.EquateComparable(netip.Addr{})

// step is one event at an offset from t0 and what must follow.
type step struct {
	at       time.Duration
	ev       Event
	want     []Action
	state    State
	deadline time.Duration // offset from t0; -1 for none
}

func adv(from netip.Addr, prio uint8, interval time.Duration) Event {
	return Event{Kind: Advert, From: from, Priority: prio, Interval: interval}
}

var (
	startup  = Event{Kind: Startup}
	shutdown = Event{Kind: Shutdown}
	timeout  = Event{Kind: Timeout}
)

func tr(from, to State, why Reason) Action {
	return Action{Kind: Transition, From: from, To: to, Reason: why}
}

func send(p uint8) Action { return Action{Kind: SendAdvert, Priority: p} }

func round(k, n int) Action { return Action{Kind: Announce, Round: k, Rounds: n} }

func rivalSeen(from netip.Addr) Action { return Action{Kind: RivalSeen, Master: from} }

var (
	addVIPs    = Action{Kind: AddVIPs}
	removeVIPs = Action{Kind: RemoveVIPs}
	announce   = Action{Kind: Announce, Round: 1, Rounds: 1}
	refresh    = Action{Kind: Announce, Round: 1, Rounds: 1, Refresh: true}
	rivalGone  = Action{Kind: RivalGone}
)

// ms is a readable duration literal for the tables.
func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// With priority 100 and a 1 s interval: Skew_Time = 156/256 s = 609.375 ms,
// Master_Down_Interval = 3609.375 ms.
const (
	skew100 = 609375 * time.Microsecond
	mdi100  = 3*time.Second + skew100
)

// becomeMaster is the action list of a Backup whose Master_Down_Timer fired.
func becomeMaster(p uint8) []Action {
	return []Action{addVIPs, announce, send(p), tr(Backup, Master, ReasonMasterDown)}
}

func TestStep(t *testing.T) {
	base := Config{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: self, AnnounceRounds: 1}
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{
			name: "startup goes to Backup with Master_Down_Interval from its own interval",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
			},
		},
		{
			name: "no Master: Master_Down_Timer makes it Master, then adverts every interval",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + time.Second, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 2*time.Second},
			},
		},
		{
			name: "an early or stale timeout is ignored",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100 - time.Millisecond, ev: timeout, state: Backup, deadline: mdi100},
			},
		},
		{
			name: "Backup learns Master_Adver_Interval from the Master and resets Master_Down_Timer",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				// 10 ms from a higher Master: MDI = 30 ms + 156*10/256 ms = 36.09375 ms.
				{at: time.Second, ev: adv(upper, 150, 10*time.Millisecond), state: Backup, deadline: time.Second + ms(36.09375)},
				{at: time.Second + ms(36.09375), ev: timeout, want: becomeMaster(100), state: Master, deadline: time.Second + ms(36.09375) + time.Second},
			},
		},
		{
			name: "priority 0 in Backup: take over after Skew_Time",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: 100 * time.Millisecond, ev: adv(upper, 150, 100*time.Millisecond), state: Backup, deadline: 100*time.Millisecond + MasterDownInterval(100, 100*time.Millisecond)},
				{at: 200 * time.Millisecond, ev: adv(upper, 0, 100*time.Millisecond), state: Backup, deadline: 200*time.Millisecond + ms(60.9375)},
				{at: 200*time.Millisecond + ms(60.9375), ev: timeout, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonPriorityZero)},
					state: Master, deadline: 200*time.Millisecond + ms(60.9375) + time.Second},
			},
		},
		{
			name: "after the Master's priority 0, a lower router taking over first is followed",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(upper, 150, time.Second), state: Backup, deadline: time.Second + mdi100},
				{at: 1500 * time.Millisecond, ev: adv(upper, 0, time.Second), state: Backup, deadline: 1500*time.Millisecond + skew100},
				// A priority-120 router's Skew_Time is shorter than ours.
				{at: 1500*time.Millisecond + 400*time.Millisecond, ev: adv(lower, 120, time.Second), state: Backup, deadline: 1900*time.Millisecond + mdi100},
			},
		},
		{
			name: "preempt: a Backup discards a lower Master's adverts and takes over",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: mdi100},
				{at: 2 * time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
			},
		},
		{
			name: "no preempt: a lower Master keeps its place",
			cfg:  func(c *Config) { c.Preempt = false },
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: time.Second + mdi100},
				{at: mdi100, ev: timeout, state: Backup, deadline: time.Second + mdi100},
			},
		},
		{
			name: "preempt_delay: a lower Master is accepted until it has been seen for the delay",
			cfg:  func(c *Config) { c.PreemptDelay = 2 * time.Second },
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: time.Second + mdi100},
				{at: 2 * time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: 2*time.Second + mdi100},
				// Seen for 2 s now: discarded from here on.
				{at: 3 * time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: 2*time.Second + mdi100},
				{at: 2*time.Second + mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: 3*time.Second + mdi100},
			},
		},
		{
			name: "preempt_delay restarts when a Master of higher priority intervenes",
			cfg:  func(c *Config) { c.PreemptDelay = 2 * time.Second },
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: time.Second + mdi100},
				{at: 2 * time.Second, ev: adv(upper, 150, time.Second), state: Backup, deadline: 2*time.Second + mdi100},
				// Below the live Master we follow: ignored.
				{at: 3 * time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: 2*time.Second + mdi100},
				{at: 5 * time.Second, ev: adv(upper, 150, time.Second), state: Backup, deadline: 5*time.Second + mdi100},
				// The higher Master has been silent for three intervals: the
				// lower one is followed again, its delay starting afresh.
				{at: 8100 * time.Millisecond, ev: adv(lower, 50, time.Second), state: Backup, deadline: 8100*time.Millisecond + mdi100},
				{at: 9100 * time.Millisecond, ev: adv(lower, 50, time.Second), state: Backup, deadline: 9100*time.Millisecond + mdi100},
			},
		},
		{
			name: "a Backup ignores a router below its live Master: the last advert of a Master that stepped down",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				// A Master at 254 with a 1 s interval.
				{at: time.Second, ev: adv(upper, 254, time.Second), state: Backup, deadline: time.Second + mdi100},
				// The previous Master (150, 100 ms adverts) says goodbye: its
				// interval must not be learnt.
				{at: 1001 * time.Millisecond, ev: adv(lower, 150, 100*time.Millisecond), state: Backup, deadline: time.Second + mdi100},
				{at: time.Second + mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: 2*time.Second + mdi100},
			},
		},
		{
			name: "equal priority in Backup is accepted (no preemption on ties)",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(lower, 100, time.Second), state: Backup, deadline: time.Second + mdi100},
			},
		},
		{
			name: "Master steps down for a higher priority and learns its interval",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: adv(lower, 200, 100*time.Millisecond), want: []Action{removeVIPs, send(100), tr(Master, Backup, ReasonHigherPriority)},
					state: Backup, deadline: 4*time.Second + MasterDownInterval(100, 100*time.Millisecond)},
			},
		},
		{
			name: "Master with equal priority steps down for a higher primary address",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: adv(upper, 100, time.Second), want: []Action{removeVIPs, send(100), tr(Master, Backup, ReasonHigherPriority)},
					state: Backup, deadline: 4*time.Second + mdi100},
			},
		},
		{
			name: "Master with equal priority stays for a lower primary address and re-announces",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 500*time.Millisecond, ev: adv(lower, 100, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 900*time.Millisecond, ev: adv(lower, 100, time.Second), want: []Action{rivalSeen(lower)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 1500*time.Millisecond, ev: adv(lower, 100, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
			},
		},
		{
			name: "Master hearing a lower Master (healed partition) re-announces at once, then at most once a second while it lasts",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 2*time.Second, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 2500*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{rivalSeen(lower)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 3100*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				// Silent for more than three intervals: a new episode (another
				// heal) re-announces at once.
				{at: mdi100 + 6200*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{rivalGone, announce}, state: Master, deadline: mdi100 + time.Second},
			},
		},
		{
			name: "Master re-announces for each lower Master of a healed three-way partition",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 100*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 150*time.Millisecond, ev: adv(netip.MustParseAddr("192.0.2.10"), 40, time.Second), want: []Action{announce, rivalSeen(netip.MustParseAddr("192.0.2.10"))}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 200*time.Millisecond, ev: adv(netip.MustParseAddr("192.0.2.10"), 40, time.Second), state: Master, deadline: mdi100 + time.Second},
			},
		},
		{
			name: "Master hearing priority 0 advertises at once",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 300*time.Millisecond, ev: adv(upper, 0, time.Second), want: []Action{send(100)}, state: Master, deadline: mdi100 + 1300*time.Millisecond},
			},
		},
		{
			name: "shutdown of a Master sends priority 0 and releases the VIPs once the new Master is heard",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: shutdown, want: []Action{send(0), tr(Master, Init, ReasonShutdown)}, state: Init, deadline: -1},
				// Another router's priority 0 is no successor.
				{at: 4100 * time.Millisecond, ev: adv(upper, 0, time.Second), state: Init, deadline: -1},
				{at: 4200 * time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{removeVIPs}, state: Init, deadline: -1},
				{at: 5 * time.Second, ev: timeout, state: Init, deadline: -1},
				{at: 6 * time.Second, ev: adv(lower, 50, time.Second), state: Init, deadline: -1},
			},
		},
		{
			name: "shutdown of a Master releases the VIPs after the handover bound if no new Master is heard",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: shutdown, want: []Action{send(0), tr(Master, Init, ReasonShutdown)}, state: Init, deadline: -1},
				{at: 4649 * time.Millisecond, ev: timeout, state: Init, deadline: -1},
				{at: 4650 * time.Millisecond, ev: timeout, want: []Action{removeVIPs}, state: Init, deadline: -1},
			},
		},
		{
			name: "a restart during a handover releases the VIPs first",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: shutdown, want: []Action{send(0), tr(Master, Init, ReasonShutdown)}, state: Init, deadline: -1},
				{at: 4100 * time.Millisecond, ev: startup, want: []Action{removeVIPs, tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: 4100*time.Millisecond + mdi100},
			},
		},
		{
			name: "a Master's advert may leave a quarter interval early, and the next is due an interval after it",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 749*time.Millisecond, ev: timeout, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 750*time.Millisecond, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 1750*time.Millisecond},
			},
		},
		{
			name: "a new Master announces in rounds at the announce interval; stepping down stops them",
			cfg:  func(c *Config) { c.AnnounceRounds, c.AnnounceInterval = 3, 200*time.Millisecond },
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: []Action{addVIPs, round(1, 3), send(100), tr(Backup, Master, ReasonMasterDown)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 199*time.Millisecond, ev: timeout, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 200*time.Millisecond, ev: timeout, want: []Action{round(2, 3)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 400*time.Millisecond, ev: timeout, want: []Action{round(3, 3)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 600*time.Millisecond, ev: timeout, state: Master, deadline: mdi100 + time.Second},
				// Again, cut short by a higher Master.
				{at: mdi100 + 700*time.Millisecond, ev: Event{Kind: Reannounce}, want: []Action{round(1, 3)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 800*time.Millisecond, ev: adv(upper, 200, time.Second), want: []Action{removeVIPs, send(100), tr(Master, Backup, ReasonHigherPriority)},
					state: Backup, deadline: mdi100 + 800*time.Millisecond + mdi100},
				{at: mdi100 + 900*time.Millisecond, ev: timeout, state: Backup, deadline: mdi100 + 800*time.Millisecond + mdi100},
			},
		},
		{
			name: "refresh: one round every AnnounceRefresh after the last announcement, on its own timer; a reannouncement restarts it; none out of Master",
			cfg: func(c *Config) {
				c.AnnounceRounds, c.AnnounceInterval, c.AnnounceRefresh = 2, 200*time.Millisecond, 5*time.Second
			},
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: []Action{addVIPs, round(1, 2), send(100), tr(Backup, Master, ReasonMasterDown)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 200*time.Millisecond, ev: timeout, want: []Action{round(2, 2)}, state: Master, deadline: mdi100 + time.Second},
				// The adverts go on at their interval, the refresh on its own.
				{at: mdi100 + 5199*time.Millisecond, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 6199*time.Millisecond},
				{at: mdi100 + 5200*time.Millisecond, ev: timeout, want: []Action{refresh}, state: Master, deadline: mdi100 + 6199*time.Millisecond},
				{at: mdi100 + 10199*time.Millisecond, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 11199*time.Millisecond},
				{at: mdi100 + 10200*time.Millisecond, ev: timeout, want: []Action{refresh}, state: Master, deadline: mdi100 + 11199*time.Millisecond},
				// A reannouncement (VIPs put back) restarts the period from its last round.
				{at: mdi100 + 11000*time.Millisecond, ev: Event{Kind: Reannounce}, want: []Action{round(1, 2)}, state: Master, deadline: mdi100 + 11199*time.Millisecond},
				{at: mdi100 + 11200*time.Millisecond, ev: timeout, want: []Action{send(100), round(2, 2)}, state: Master, deadline: mdi100 + 12200*time.Millisecond},
				{at: mdi100 + 15200*time.Millisecond, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 16200*time.Millisecond},
				{at: mdi100 + 16200*time.Millisecond, ev: timeout, want: []Action{send(100), refresh}, state: Master, deadline: mdi100 + 17200*time.Millisecond},
				// Out of Master: no refresh.
				{at: mdi100 + 17000*time.Millisecond, ev: adv(upper, 200, time.Second), want: []Action{removeVIPs, send(100), tr(Master, Backup, ReasonHigherPriority)},
					state: Backup, deadline: mdi100 + 17000*time.Millisecond + mdi100},
				{at: mdi100 + 20000*time.Millisecond, ev: timeout, state: Backup, deadline: mdi100 + 17000*time.Millisecond + mdi100},
			},
		},
		{
			name: "split brain: a rival Master's second advert within three intervals is seen; its silence for three intervals ends it",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 100*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 3200*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 4200*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce, rivalSeen(lower)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 7199*time.Millisecond, ev: timeout, want: []Action{send(100)}, state: Master, deadline: mdi100 + 8199*time.Millisecond},
				{at: mdi100 + 7200*time.Millisecond, ev: timeout, want: []Action{rivalGone}, state: Master, deadline: mdi100 + 8199*time.Millisecond},
			},
		},
		{
			name: "split brain ends when the Master steps down or faults",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 100*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 200*time.Millisecond, ev: adv(lower, 50, time.Second), want: []Action{rivalSeen(lower)}, state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 300*time.Millisecond, ev: Event{Kind: FaultOn, Reason: ReasonInterfaceDown},
					want: []Action{send(0), removeVIPs, rivalGone, tr(Master, Fault, ReasonInterfaceDown)}, state: Fault, deadline: -1},
			},
		},
		{
			name: "reannounce: a Master announces again from round 1; others ignore it",
			steps: []step{
				{at: 0, ev: Event{Kind: Reannounce}, state: Init, deadline: -1},
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: 0, ev: Event{Kind: Reannounce}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: mdi100 + 100*time.Millisecond, ev: Event{Kind: Reannounce}, want: []Action{announce}, state: Master, deadline: mdi100 + time.Second},
			},
		},
		{
			name: "shutdown of a Backup sends nothing",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: shutdown, want: []Action{tr(Backup, Init, ReasonShutdown)}, state: Init, deadline: -1},
				{at: 2 * time.Second, ev: adv(upper, 150, time.Second), state: Init, deadline: -1},
			},
		},
		{
			name: "restart after shutdown starts over from its own interval",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: adv(upper, 150, 10*time.Millisecond), state: Backup, deadline: time.Second + ms(36.09375)},
				{at: 2 * time.Second, ev: shutdown, want: []Action{tr(Backup, Init, ReasonShutdown)}, state: Init, deadline: -1},
				{at: 3 * time.Second, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: 3*time.Second + mdi100},
			},
		},
		{
			name: "fault in Master: priority 0 and the VIPs go at once; recovery starts over in Backup",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: mdi100, ev: timeout, want: becomeMaster(100), state: Master, deadline: mdi100 + time.Second},
				{at: 4 * time.Second, ev: Event{Kind: FaultOn, Reason: ReasonCheckFailed},
					want: []Action{send(0), removeVIPs, tr(Master, Fault, ReasonCheckFailed)}, state: Fault, deadline: -1},
				{at: 5 * time.Second, ev: adv(upper, 50, time.Second), state: Fault, deadline: -1},
				{at: 5 * time.Second, ev: timeout, state: Fault, deadline: -1},
				{at: 5 * time.Second, ev: Event{Kind: FaultOn, Reason: ReasonInterfaceDown}, state: Fault, deadline: -1},
				{at: 6 * time.Second, ev: Event{Kind: FaultOff}, want: []Action{tr(Fault, Backup, ReasonRecovered)}, state: Backup, deadline: 6*time.Second + mdi100},
			},
		},
		{
			name: "fault in Backup and before startup",
			steps: []step{
				{at: 0, ev: Event{Kind: FaultOn, Reason: ReasonInterfaceDown}, want: []Action{tr(Init, Fault, ReasonInterfaceDown)}, state: Fault, deadline: -1},
				{at: 0, ev: startup, state: Fault, deadline: -1},
				{at: time.Second, ev: Event{Kind: FaultOff}, want: []Action{tr(Fault, Backup, ReasonRecovered)}, state: Backup, deadline: time.Second + mdi100},
				{at: 2 * time.Second, ev: Event{Kind: FaultOn, Reason: ReasonCheckFailed}, want: []Action{tr(Backup, Fault, ReasonCheckFailed)}, state: Fault, deadline: -1},
				{at: 3 * time.Second, ev: shutdown, want: []Action{tr(Fault, Init, ReasonShutdown)}, state: Init, deadline: -1},
			},
		},
		{
			name: "FaultOff outside Fault is ignored",
			steps: []step{
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Second, ev: Event{Kind: FaultOff}, state: Backup, deadline: mdi100},
			},
		},
		{
			name: "adverts and a second startup before startup/after are ignored",
			steps: []step{
				{at: 0, ev: adv(upper, 150, time.Second), state: Init, deadline: -1},
				{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100},
				{at: time.Millisecond, ev: startup, state: Backup, deadline: mdi100},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			r := New(cfg)
			for i, s := range tt.steps {
				s.run(t, i, r)
			}
		})
	}
}

// run steps r with s and checks the actions, the state and the deadline.
func (s step) run(t *testing.T, i int, r *Router) {
	t.Helper()
	got := r.Step(t0.Add(s.at), s.ev, nil)
	if diff := cmp.Diff(s.want, got, addrs); diff != "" {
		t.Fatalf("step %d (%+v): actions (-want +got):\n%s", i, s.ev, diff)
	}
	if r.State() != s.state {
		t.Fatalf("step %d: state %v, want %v", i, r.State(), s.state)
	}
	var wantDeadline time.Time
	if s.deadline >= 0 {
		wantDeadline = t0.Add(s.deadline)
	}
	if !r.Deadline().Equal(wantDeadline) {
		t.Fatalf("step %d: deadline %v, want %v", i, r.Deadline().Sub(t0), s.deadline)
	}
}

func TestTimers(t *testing.T) {
	tests := []struct {
		p        uint8
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{p: 100, interval: 10 * time.Millisecond, skew: ms(6.09375), mdi: ms(36.09375)},
		{p: 100, interval: 100 * time.Millisecond, skew: ms(60.9375), mdi: ms(360.9375)},
		{p: 50, interval: time.Second, skew: ms(804.6875), mdi: ms(3804.6875)},
		{p: 254, interval: time.Second, skew: ms(7.8125), mdi: ms(3007.8125)},
	}
	for _, tt := range tests {
		if got := SkewTime(tt.p, tt.interval); got != tt.skew {
			t.Errorf("SkewTime(%d, %v) = %v, want %v", tt.p, tt.interval, got, tt.skew)
		}
		if got := MasterDownInterval(tt.p, tt.interval); got != tt.mdi {
			t.Errorf("MasterDownInterval(%d, %v) = %v, want %v", tt.p, tt.interval, got, tt.mdi)
		}
	}
}

// TestElection runs three routers against each other over a perfect
// in-memory segment with a fake clock: exactly one Master, the highest.
func TestElection(t *testing.T) {
	seg := newSegment(t,
		Config{Priority: 150, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: lower},
		Config{Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: self},
		Config{Priority: 50, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: upper},
	)
	seg.run(time.Second)
	seg.wantMasters(t, 0)

	// Master stops gracefully: router 1 takes over after its Skew_Time.
	seg.stop(0)
	seg.run(ms(6.09375) + time.Nanosecond)
	seg.wantMasters(t, 1)

	// It comes back and preempts after its Master_Down_Interval.
	seg.start(0)
	seg.run(MasterDownInterval(150, 10*time.Millisecond) + 10*time.Millisecond)
	seg.wantMasters(t, 0)
}

func TestElectionTieBreak(t *testing.T) {
	seg := newSegment(t,
		Config{Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: lower},
		Config{Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: upper},
		Config{Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, Addr: self},
	)
	// Partitioned, every router becomes Master, as the protocol demands.
	seg.partitioned = true
	seg.run(time.Second)
	for i, r := range seg.routers {
		if r.State() != Master {
			t.Fatalf("partitioned router %d is %v, want master", i, r.State())
		}
	}
	// Healed: on equal priorities the higher primary address stays Master
	// (RFC 9568 §6.4.3) within one advertisement interval.
	seg.partitioned = false
	seg.run(10 * time.Millisecond)
	seg.wantMasters(t, 1)
}

// segment connects routers: every SendAdvert reaches every other running
// router at the same instant.
type segment struct {
	t       *testing.T
	now     time.Time
	routers []*Router
	running []bool
	// partitioned drops every advertisement.
	partitioned bool
}

func newSegment(t *testing.T, cfgs ...Config) *segment {
	s := &segment{t: t, now: t0}
	for i, c := range cfgs {
		s.routers = append(s.routers, New(c))
		s.running = append(s.running, false)
		s.start(i)
	}
	return s
}

func (s *segment) start(i int) { s.running[i] = true; s.apply(i, Event{Kind: Startup}) }
func (s *segment) stop(i int)  { s.apply(i, Event{Kind: Shutdown}); s.running[i] = false }

func (s *segment) apply(i int, ev Event) {
	r := s.routers[i]
	for _, a := range r.Step(s.now, ev, nil) {
		if a.Kind != SendAdvert || s.partitioned {
			continue
		}
		for j := range s.routers {
			if j != i && s.running[j] {
				s.apply(j, Event{Kind: Advert, From: r.cfg.Addr, Priority: a.Priority, Interval: r.cfg.AdvertInterval})
			}
		}
	}
}

// run advances the clock by d, firing deadlines in order.
func (s *segment) run(d time.Duration) {
	end := s.now.Add(d)
	for n := 0; n < 1_000_000; n++ {
		next, who := end, -1
		for i, r := range s.routers {
			if dl, _ := r.Next(); s.running[i] && !dl.IsZero() && !dl.After(next) {
				next, who = dl, i
			}
		}
		s.now = next
		if who < 0 {
			return
		}
		s.apply(who, Event{Kind: Timeout})
	}
	s.t.Fatal("segment did not settle")
}

func (s *segment) wantMasters(t *testing.T, want int) {
	t.Helper()
	for i, r := range s.routers {
		if isMaster := r.State() == Master; isMaster != (i == want) {
			t.Errorf("router %d (%v) state %v; want router %d alone as Master", i, r.cfg.Addr, r.State(), want)
		}
	}
}

func TestSetConfig(t *testing.T) {
	r := New(Config{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: self})
	r.Step(t0, startup, nil)
	r.Step(t0.Add(mdi100), timeout, nil)
	if r.State() != Master {
		t.Fatalf("state %v, want master", r.State())
	}
	// Lower priority and shorter interval: the running Adver_Timer is kept,
	// the next advertisement carries the new priority, then the new interval.
	r.SetConfig(Config{Priority: 40, AdvertInterval: 100 * time.Millisecond, Preempt: true, Addr: self})
	if got := r.Deadline(); !got.Equal(t0.Add(mdi100 + time.Second)) {
		t.Fatalf("deadline moved to %v", got.Sub(t0))
	}
	got := r.Step(t0.Add(mdi100+time.Second), timeout, nil)
	if diff := cmp.Diff([]Action{send(40)}, got, addrs); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	if want := t0.Add(mdi100 + time.Second + 100*time.Millisecond); !r.Deadline().Equal(want) {
		t.Fatalf("deadline %v, want %v", r.Deadline().Sub(t0), want.Sub(t0))
	}
	// Now a priority-100 advertisement wins over the lowered Master.
	got = r.Step(t0.Add(mdi100+1050*time.Millisecond), adv(lower, 100, time.Second), nil)
	if diff := cmp.Diff([]Action{removeVIPs, send(40), tr(Master, Backup, ReasonHigherPriority)}, got, addrs); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
}

// TestNext: when the router must be stepped, and how early a step may act.
func TestNext(t *testing.T) {
	cfg := Config{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: self, AnnounceRounds: 2, AnnounceInterval: 200 * time.Millisecond}
	for _, tt := range []struct {
		name      string
		steps     []step        // only at and ev are used
		at, early time.Duration // offsets from t0; -1 for none
		refresh   time.Duration // AnnounceRefresh
	}{
		{name: "init", at: -1, early: -1},
		{name: "backup: the Master_Down_Timer, never early", steps: []step{{ev: startup}}, at: mdi100, early: mdi100},
		{name: "master: the next announce round before the Adver_Timer", steps: []step{{ev: startup}, {at: mdi100, ev: timeout}},
			at: mdi100 + 200*time.Millisecond, early: mdi100 + 200*time.Millisecond},
		{name: "master: the Adver_Timer, a quarter interval early", steps: []step{{ev: startup}, {at: mdi100, ev: timeout}, {at: mdi100 + 200*time.Millisecond, ev: timeout}},
			at: mdi100 + time.Second, early: mdi100 + 750*time.Millisecond},
		{name: "handing over: the release bound", steps: []step{{ev: startup}, {at: mdi100, ev: timeout}, {at: mdi100 + 200*time.Millisecond, ev: timeout}, {at: mdi100 + 300*time.Millisecond, ev: shutdown}},
			at: mdi100 + 950*time.Millisecond, early: mdi100 + 950*time.Millisecond},
		{name: "fault", steps: []step{{ev: startup}, {ev: Event{Kind: FaultOn, Reason: ReasonCheckFailed}}}, at: -1, early: -1},
		{name: "master with a refresh: the refresh when it comes before the Adver_Timer", refresh: 500 * time.Millisecond,
			steps: []step{{ev: startup}, {at: mdi100, ev: timeout}, {at: mdi100 + 200*time.Millisecond, ev: timeout}},
			at:    mdi100 + 700*time.Millisecond, early: mdi100 + 700*time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.AnnounceRefresh = tt.refresh
			r := New(c)
			for _, s := range tt.steps {
				r.Step(t0.Add(s.at), s.ev, nil)
			}
			off := func(x time.Time) time.Duration {
				if x.IsZero() {
					return -1
				}
				return x.Sub(t0)
			}
			at, early := r.Next()
			if off(at) != tt.at || off(early) != tt.early {
				t.Errorf("Next() = %v, %v; want %v, %v", off(at), off(early), tt.at, tt.early)
			}
			if holding := r.State() == Master || strings.HasPrefix(tt.name, "handing over"); r.Holding() != holding {
				t.Errorf("Holding() = %v, want %v", r.Holding(), holding)
			}
		})
	}
}
