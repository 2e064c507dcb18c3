package router

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	groupMaster = Event{Kind: GroupMaster}
	groupBackup = Event{Kind: GroupBackup}
)

// gstep is a step of a grouped router, with what it tells its group.
type gstep struct {
	step
	ready, following bool
	holding          bool
}

func TestStepGrouped(t *testing.T) {
	base := Config{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: self, AnnounceRounds: 1, Grouped: true}
	started := step{at: 0, ev: startup, want: []Action{tr(Init, Backup, ReasonStartup)}, state: Backup, deadline: mdi100}
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []gstep
	}{
		{
			name: "Master_Down_Timer makes it Ready, not Master; GroupMaster makes it Master and it announces",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100 + time.Second, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100 + 2*time.Second, ev: groupMaster, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonGroup)},
					state: Master, deadline: mdi100 + 3*time.Second}, holding: true},
			},
		},
		{
			name: "GroupMaster does nothing to a Backup that is not Ready, nor to a Master",
			steps: []gstep{
				{step: started},
				{step: step{at: time.Second, ev: groupMaster, state: Backup, deadline: mdi100}},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100, ev: groupMaster, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonGroup)},
					state: Master, deadline: mdi100 + time.Second}, holding: true},
				{step: step{at: mdi100 + 10*time.Millisecond, ev: groupMaster, state: Master, deadline: mdi100 + time.Second}, holding: true},
			},
		},
		{
			name: "a Ready router that hears a Master it accepts follows it and is no longer Ready",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: 4 * time.Second, ev: adv(upper, 150, time.Second), state: Backup, deadline: 4*time.Second + mdi100}, following: true},
				{step: step{at: 4*time.Second + 10*time.Millisecond, ev: groupMaster, state: Backup, deadline: 4*time.Second + mdi100}, following: true},
			},
		},
		{
			name: "a Ready router that hears a lower Master stays Ready: it would preempt it",
			steps: []gstep{
				{step: started},
				{step: step{at: time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: mdi100}},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: 4 * time.Second, ev: adv(lower, 50, time.Second), state: Backup, deadline: -1}, ready: true},
			},
		},
		{
			name: "priority 0 while following: Ready at Skew_Time, and not following meanwhile",
			steps: []gstep{
				{step: started},
				{step: step{at: time.Second, ev: adv(upper, 150, time.Second), state: Backup, deadline: time.Second + mdi100}, following: true},
				{step: step{at: 2 * time.Second, ev: adv(upper, 0, time.Second), state: Backup, deadline: 2*time.Second + skew100}},
				{step: step{at: 2*time.Second + skew100, ev: timeout, state: Backup, deadline: -1}, ready: true},
			},
		},
		{
			name: "GroupBackup: a Master sends priority 0, goes to Backup and keeps its VIPs until the new Master is heard",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100, ev: groupMaster, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonGroup)},
					state: Master, deadline: mdi100 + time.Second}, holding: true},
				{step: step{at: 5 * time.Second, ev: groupBackup, want: []Action{send(0), tr(Master, Backup, ReasonGroup)},
					state: Backup, deadline: 5*time.Second + mdi100}, holding: true},
				{step: step{at: 5*time.Second + 300*time.Millisecond, ev: adv(upper, 150, time.Second), want: []Action{removeVIPs},
					state: Backup, deadline: 5*time.Second + 300*time.Millisecond + mdi100}, following: true},
			},
		},
		{
			name: "GroupBackup with no successor heard: the VIPs go after the handover bound",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100, ev: groupMaster, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonGroup)},
					state: Master, deadline: mdi100 + time.Second}, holding: true},
				{step: step{at: 5 * time.Second, ev: groupBackup, want: []Action{send(0), tr(Master, Backup, ReasonGroup)},
					state: Backup, deadline: 5*time.Second + mdi100}, holding: true},
				{step: step{at: 5*time.Second + 649*time.Millisecond, ev: timeout, state: Backup, deadline: 5*time.Second + mdi100}, holding: true},
				{step: step{at: 5*time.Second + handoverMax, ev: timeout, want: []Action{removeVIPs}, state: Backup, deadline: 5*time.Second + mdi100}},
			},
		},
		{
			name: "GroupBackup to a Backup does nothing",
			steps: []gstep{
				{step: started},
				{step: step{at: time.Second, ev: groupBackup, state: Backup, deadline: mdi100}},
			},
		},
		{
			name: "back to Master during the handover keeps the VIPs",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: mdi100, ev: groupMaster, want: []Action{addVIPs, announce, send(100), tr(Backup, Master, ReasonGroup)},
					state: Master, deadline: mdi100 + time.Second}, holding: true},
				{step: step{at: 5 * time.Second, ev: groupBackup, want: []Action{send(0), tr(Master, Backup, ReasonGroup)},
					state: Backup, deadline: 5*time.Second + mdi100}, holding: true},
				{step: step{at: 5*time.Second + 100*time.Millisecond, ev: adv(upper, 0, time.Second), state: Backup, deadline: 5*time.Second + 100*time.Millisecond + skew100}, holding: true},
				{step: step{at: 5*time.Second + 100*time.Millisecond + skew100, ev: timeout, want: []Action{removeVIPs}, state: Backup, deadline: -1}, ready: true},
			},
		},
		{
			name: "FAULT clears Ready",
			steps: []gstep{
				{step: started},
				{step: step{at: mdi100, ev: timeout, state: Backup, deadline: -1}, ready: true},
				{step: step{at: 4 * time.Second, ev: Event{Kind: FaultOn, Reason: ReasonGroupFault}, want: []Action{tr(Backup, Fault, ReasonGroupFault)}, state: Fault, deadline: -1}},
				{step: step{at: 5 * time.Second, ev: Event{Kind: FaultOff}, want: []Action{tr(Fault, Backup, ReasonRecovered)}, state: Backup, deadline: 5*time.Second + mdi100}},
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
				if r.Ready() != s.ready || r.Following() != s.following || r.Holding() != s.holding {
					t.Fatalf("step %d: ready %v following %v holding %v, want %v %v %v", i, r.Ready(), r.Following(), r.Holding(), s.ready, s.following, s.holding)
				}
			}
		})
	}
}

// TestSetConfigUngrouped: a Ready router taken out of its group becomes
// Master at its next step, its Master_Down_Timer having fired.
func TestSetConfigUngrouped(t *testing.T) {
	r := New(Config{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: self, AnnounceRounds: 1, Grouped: true})
	r.Step(t0, startup, nil)
	r.Step(t0.Add(mdi100), timeout, nil)
	if !r.Ready() {
		t.Fatal("not Ready after Master_Down_Timer")
	}
	c := r.Config()
	c.Grouped = false
	r.SetConfig(c)
	if at, _ := r.Next(); !at.Equal(t0.Add(mdi100)) {
		t.Fatalf("Next = %v, want the fired Master_Down_Timer %v", at.Sub(t0), mdi100)
	}
	got := r.Step(t0.Add(5*time.Second), timeout, nil)
	if diff := cmp.Diff(becomeMaster(100), got, addrs); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
}

func TestDecide(t *testing.T) {
	var (
		master    = Member{State: Master}
		backup    = Member{State: Backup}
		ready     = Member{State: Backup, Ready: true}
		following = Member{State: Backup, Following: true}
		ownFault  = Member{State: Fault, Fault: true}
		grpFault  = Member{State: Fault}
		initial   = Member{State: Init}
	)
	none := Order{}
	tests := []struct {
		name  string
		ms    []Member
		want  []Order
		state State
	}{
		{"all waiting", []Member{backup, backup}, []Order{none, none}, Backup},
		{"one Ready waits for the other", []Member{ready, backup}, []Order{none, none}, Backup},
		{"one Ready, the other follows a Master", []Member{ready, following}, []Order{none, none}, Backup},
		{"all Ready: all become Master", []Member{ready, ready}, []Order{{Master: true}, {Master: true}}, Backup},
		{"Ready beside a Master becomes Master", []Member{master, ready}, []Order{none, {Master: true}}, Backup},
		{"Ready beside one that is not started waits", []Member{ready, initial}, []Order{none, none}, Backup},
		{"all Master", []Member{master, master}, []Order{none, none}, Master},
		{"a Master beside one that follows steps down", []Member{master, following, master}, []Order{{Backup: true}, none, {Backup: true}}, Backup},
		{"a Master beside one that waits stays", []Member{master, backup}, []Order{none, none}, Backup},
		{"own FAULT puts the others in FAULT", []Member{ownFault, master, ready}, []Order{none, {Fault: true}, {Fault: true}}, Fault},
		{"the others' FAULT is the group's, not their own", []Member{ownFault, grpFault}, []Order{none, {Fault: true}}, Fault},
		{"two own FAULTs keep each other in FAULT", []Member{ownFault, ownFault}, []Order{{Fault: true}, {Fault: true}}, Fault},
		{"FAULT over: no orders", []Member{grpFault, grpFault}, []Order{none, none}, Fault},
		{"stopped", []Member{initial, initial}, []Order{none, none}, Init},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decide(tt.ms, nil)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
			if got := GroupState(tt.ms); got != tt.state {
				t.Errorf("GroupState = %v, want %v", got, tt.state)
			}
		})
	}
}
