package router

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a virtual router's protocol state.
type State uint8

// The states of RFC 9568 §6.4.
const (
	Init State = iota
	Backup
	Master
	// Fault is not in the RFC: the instance is out of the election while a
	// tracked check or interface is down (keepalived's FAULT).
	Fault
)

var stateNames = [...]string{Init: "init", Backup: "backup", Master: "master", Fault: "fault"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Reason says why a transition happened. Its string is a stable label for
// logs and metrics.
type Reason uint8

// Reasons for transitions.
const (
	ReasonNone           Reason = iota
	ReasonStartup               // Initialize → Backup
	ReasonMasterDown            // Master_Down_Timer fired in Backup
	ReasonHigherPriority        // a better advertisement reached a Master
	ReasonPriorityZero          // Skew_Time after the Master sent priority 0
	ReasonCheckFailed           // a fault-tracked check went down
	ReasonInterfaceDown         // a tracked interface went down
	ReasonRecovered             // every fault condition cleared
	ReasonShutdown              // the instance stopped
)

var reasonNames = [...]string{
	ReasonNone:           "none",
	ReasonStartup:        "startup",
	ReasonMasterDown:     "master down timer",
	ReasonHigherPriority: "higher priority seen",
	ReasonPriorityZero:   "priority 0 received",
	ReasonCheckFailed:    "check failed",
	ReasonInterfaceDown:  "interface down",
	ReasonRecovered:      "recovered",
	ReasonShutdown:       "shutdown",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Config is what the state machine needs to know about its instance.
type Config struct {
	// Priority is the local priority, 1..254 (an address owner's 255 is not
	// supported).
	Priority uint8
	// AdvertInterval is the local Advertisement_Interval.
	AdvertInterval time.Duration
	// Preempt is Preempt_Mode.
	Preempt bool
	// PreemptDelay holds off preemption of a lower-priority Master until
	// such a Master has been seen for this long (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// Addr is the local primary address, compared on equal priorities.
	Addr netip.Addr
}

// EventKind says what happened.
type EventKind uint8

// Events.
const (
	// Startup starts the instance (RFC 9568 §6.4.1).
	Startup EventKind = iota + 1
	// Shutdown stops it.
	Shutdown
	// Timeout says the deadline returned by Deadline has passed. A Timeout
	// before the deadline is ignored, so a stale timer is harmless.
	Timeout
	// Advert is a valid ADVERTISEMENT for this virtual router.
	Advert
	// FaultOn takes the instance out of the election (Event.Reason says
	// why): a Master sends priority 0 and releases its VIPs at once.
	FaultOn
	// FaultOff puts it back: it starts over in Backup.
	FaultOff
)

// Event is an input to Step. From, Priority and Interval describe an Advert;
// Reason a FaultOn.
type Event struct {
	Kind     EventKind
	From     netip.Addr    // the advertisement's IP source
	Priority uint8         // its priority
	Interval time.Duration // its Max Advertise Interval
	Reason   Reason
}

// ActionKind says what the caller must do.
type ActionKind uint8

// Actions, in the order the caller must carry them out.
const (
	// SendAdvert sends an ADVERTISEMENT with Action.Priority.
	SendAdvert ActionKind = iota + 1
	// AddVIPs puts the virtual addresses on the interface.
	AddVIPs
	// RemoveVIPs takes them off.
	RemoveVIPs
	// Announce starts a round of gratuitous ARPs / neighbour advertisements.
	Announce
	// Transition reports a state change (From, To, Reason) for logs,
	// metrics and hooks.
	Transition
)

// Action is an output of Step.
type Action struct {
	Kind     ActionKind
	Priority uint8
	From, To State
	Reason   Reason
}

// reannounceEvery limits how often a Master re-announces its VIPs when it
// hears a lower-priority Master (a healed partition).
const reannounceEvery = time.Second

// Router is one virtual router. The zero value is not usable; call New.
type Router struct {
	cfg   Config
	state State

	// masterAdverInterval is Master_Adver_Interval: the interval learned
	// from the current Master (RFC 9568 §6.1).
	masterAdverInterval time.Duration
	// deadline is Adver_Timer in Master and Master_Down_Timer in Backup;
	// zero in Init.
	deadline time.Time
	// master is the address of the last Master heard, or ours;
	// masterPriority its priority and masterSeen when it was last heard
	// (Backup).
	master         netip.Addr
	masterPriority uint8
	masterSeen     time.Time
	// lowerSince is when a lower-priority Master was first heard in a row,
	// for PreemptDelay.
	lowerSince time.Time
	// reannounced is when the VIPs were last re-announced because a
	// lower-priority Master was heard, lowerSeen when one last was.
	reannounced, lowerSeen time.Time
	// lowerFrom is the lower Master heard last: another one (a third
	// router of a healed partition) starts a new episode.
	lowerFrom netip.Addr
	// leaving says the Master_Down_Timer was set to Skew_Time by a
	// priority-0 advertisement.
	leaving bool
}

// New returns a Router in Init.
func New(cfg Config) *Router {
	return &Router{cfg: cfg, masterAdverInterval: cfg.AdvertInterval}
}

// State returns the current state.
func (r *Router) State() State { return r.state }

// Deadline returns when the caller must deliver a Timeout event, or the zero
// time when no timer is armed.
func (r *Router) Deadline() time.Time { return r.deadline }

// Master returns the address of the current Master as far as this router
// knows: its own address in Master, the last advertiser in Backup.
func (r *Router) Master() netip.Addr { return r.master }

// MasterAdverInterval returns the learned Master_Adver_Interval.
func (r *Router) MasterAdverInterval() time.Duration { return r.masterAdverInterval }

// Config returns the configuration in force.
func (r *Router) Config() Config { return r.cfg }

// Routine returns the advertisement that, received now, would change nothing
// but restart the Master_Down_Timer from its arrival and note when the
// Master was last heard: in Backup, the Master followed advertising again at
// the same priority and interval, a priority the router does not preempt.
// Stepping only the latest of a run of such adverts, at its arrival time,
// leaves the router as stepping each of them would, which lets a driver
// take them off its hot path. ok is false when no advert is routine.
func (r *Router) Routine() (ev Event, ok bool) {
	if r.state != Backup || r.leaving || !r.master.IsValid() || r.masterPriority == 0 ||
		!r.lowerSince.IsZero() || (r.masterPriority < r.cfg.Priority && r.cfg.Preempt) {
		return Event{}, false
	}
	return Event{Kind: Advert, From: r.master, Priority: r.masterPriority, Interval: r.masterAdverInterval}, true
}

// SkewTime is RFC 9568 §6.1's Skew_Time for priority p and the Master's
// advertisement interval: ((256 - p) * interval) / 256.
func SkewTime(p uint8, masterInterval time.Duration) time.Duration {
	return time.Duration(256-int64(p)) * masterInterval / 256
}

// MasterDownInterval is RFC 9568 §6.1's Master_Down_Interval:
// 3 * interval + Skew_Time.
func MasterDownInterval(p uint8, masterInterval time.Duration) time.Duration {
	return 3*masterInterval + SkewTime(p, masterInterval)
}

// Step applies ev at time now and appends the resulting actions to out.
func (r *Router) Step(now time.Time, ev Event, out []Action) []Action {
	switch ev.Kind {
	case Startup:
		return r.startup(now, out)
	case Shutdown:
		return r.shutdown(out)
	case Timeout:
		if r.deadline.IsZero() || now.Before(r.deadline) {
			return out
		}
		return r.timeout(now, out)
	case Advert:
		return r.advert(now, ev, out)
	case FaultOn:
		return r.fault(ev.Reason, out)
	case FaultOff:
		if r.state != Fault {
			return out
		}
		return r.backup(now, ReasonRecovered, out)
	}
	return out
}

// fault leaves the election. Like a shutdown, a Master sends priority 0 so
// that a Backup takes over after Skew_Time.
func (r *Router) fault(why Reason, out []Action) []Action {
	switch r.state {
	case Fault:
		return out
	case Master:
		out = append(out, Action{Kind: SendAdvert, Priority: 0}, Action{Kind: RemoveVIPs})
	}
	r.deadline = time.Time{}
	r.master = netip.Addr{}
	return r.become(Fault, why, out)
}

// RFC 9568 §6.4.1: a router that is not the address owner starts in Backup
// with Master_Adver_Interval = Advertisement_Interval.
func (r *Router) startup(now time.Time, out []Action) []Action {
	if r.state != Init {
		return out
	}
	return r.backup(now, ReasonStartup, out)
}

// backup enters Backup afresh, as at startup.
func (r *Router) backup(now time.Time, why Reason, out []Action) []Action {
	r.masterAdverInterval = r.cfg.AdvertInterval
	r.master = netip.Addr{}
	r.lowerSince = time.Time{}
	r.deadline = now.Add(MasterDownInterval(r.cfg.Priority, r.masterAdverInterval))
	return r.become(Backup, why, out)
}

// RFC 9568 §6.4.2 and §6.4.3, on Shutdown. A Master sends priority 0 so
// that a Backup takes over after Skew_Time instead of Master_Down_Interval.
func (r *Router) shutdown(out []Action) []Action {
	switch r.state {
	case Master:
		out = append(out, Action{Kind: SendAdvert, Priority: 0}, Action{Kind: RemoveVIPs})
	case Init:
		return out
	}
	r.deadline = time.Time{}
	return r.become(Init, ReasonShutdown, out)
}

func (r *Router) timeout(now time.Time, out []Action) []Action {
	switch r.state {
	case Backup:
		// RFC 9568 §6.4.2: Master_Down_Timer fired.
		why := ReasonMasterDown
		if r.leaving {
			why = ReasonPriorityZero
		}
		return r.becomeMaster(now, why, out)
	case Master:
		// RFC 9568 §6.4.3: Adver_Timer fired.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		return append(out, Action{Kind: SendAdvert, Priority: r.cfg.Priority})
	}
	return out
}

func (r *Router) becomeMaster(now time.Time, why Reason, out []Action) []Action {
	r.deadline = now.Add(r.cfg.AdvertInterval)
	r.master = r.cfg.Addr
	r.lowerSince = time.Time{}
	r.reannounced, r.lowerSeen, r.lowerFrom = time.Time{}, time.Time{}, netip.Addr{}
	// RFC 9568 §6.4.2 sends the advertisement, then the gratuitous ARPs.
	// The VIPs and their announcement go first here: a Master handing
	// over gracefully keeps the VIPs until it hears this advertisement,
	// so clients must already have been told where the VIPs went.
	out = append(out,
		Action{Kind: AddVIPs},
		Action{Kind: Announce},
		Action{Kind: SendAdvert, Priority: r.cfg.Priority},
	)
	return r.become(Master, why, out)
}

func (r *Router) become(to State, why Reason, out []Action) []Action {
	from := r.state
	r.leaving = false
	r.state = to
	return append(out, Action{Kind: Transition, From: from, To: to, Reason: why})
}

func (r *Router) advert(now time.Time, ev Event, out []Action) []Action {
	switch r.state {
	case Backup:
		return r.advertInBackup(now, ev, out)
	case Master:
		return r.advertInMaster(now, ev, out)
	}
	return out
}

// RFC 9568 §6.4.2, ADVERTISEMENT received in Backup.
func (r *Router) advertInBackup(now time.Time, ev Event, out []Action) []Action {
	if ev.Priority == 0 {
		// The Master is leaving: take over after Skew_Time, unless
		// whoever does first is heard (it may be below the old Master).
		r.deadline = now.Add(SkewTime(r.cfg.Priority, r.masterAdverInterval))
		r.leaving = true
		r.masterSeen = time.Time{}
		return out
	}
	if ev.From != r.master && r.master.IsValid() && ev.Priority < r.masterPriority &&
		now.Sub(r.masterSeen) < 3*r.masterAdverInterval {
		// A router below the Master we follow, while that Master is
		// alive (heard within three of its intervals; a takeover after
		// its death comes later, at Master_Down_Interval): a Master
		// stepping down sends one last advert at its own priority
		// (below), or a stray router. Neither changes whom we follow,
		// nor the interval we learnt from it.
		return out
	}
	if ev.Priority < r.cfg.Priority && r.cfg.Preempt {
		if r.lowerSince.IsZero() {
			r.lowerSince = now
		}
		if now.Sub(r.lowerSince) >= r.cfg.PreemptDelay {
			// Discard: Master_Down_Timer runs out and this router
			// preempts the lower-priority Master.
			return out
		}
	} else {
		r.lowerSince = time.Time{}
	}
	r.master, r.masterPriority, r.masterSeen = ev.From, ev.Priority, now
	r.masterAdverInterval = ev.Interval
	r.deadline = now.Add(MasterDownInterval(r.cfg.Priority, r.masterAdverInterval))
	r.leaving = false
	return out
}

// RFC 9568 §6.4.3, ADVERTISEMENT received in Master.
func (r *Router) advertInMaster(now time.Time, ev Event, out []Action) []Action {
	if ev.Priority == 0 {
		// Another Master is leaving; make sure the Backups hear us now.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		return append(out, Action{Kind: SendAdvert, Priority: r.cfg.Priority})
	}
	if ev.Priority > r.cfg.Priority || (ev.Priority == r.cfg.Priority && ev.From.Compare(r.cfg.Addr) > 0) {
		r.master, r.masterPriority, r.masterSeen = ev.From, ev.Priority, now
		r.masterAdverInterval = ev.Interval
		r.deadline = now.Add(MasterDownInterval(r.cfg.Priority, r.masterAdverInterval))
		// One last advertisement at our own priority, which the RFC does
		// not send: when a partition heals, the winner may never have
		// heard us, and clients that followed us would keep our MAC until
		// their ARP entries expire. Hearing a lower Master makes the
		// winner re-announce the VIPs (below; keepalived does the same
		// with garp_lower_prio_repeat). Backups ignore it: a lower
		// priority than the Master's they already follow.
		out = append(out, Action{Kind: RemoveVIPs}, Action{Kind: SendAdvert, Priority: r.cfg.Priority})
		return r.become(Backup, ReasonHigherPriority, out)
	}
	// A lower Master exists: a partition has healed or a peer cannot hear
	// us. The RFC discards the packet; the other router steps down on our
	// next advertisement. Clients may have followed it — it announced the
	// VIPs too — so re-announce them: at once the first time we hear that
	// router, then at most once per reannounceEvery while it keeps
	// advertising (a peer that cannot hear us), so that it does not cause
	// a storm.
	newEpisode := r.lowerSeen.IsZero() || now.Sub(r.lowerSeen) > 3*r.cfg.AdvertInterval || ev.From != r.lowerFrom
	r.lowerSeen, r.lowerFrom = now, ev.From
	if newEpisode || now.Sub(r.reannounced) >= reannounceEvery {
		r.reannounced = now
		out = append(out, Action{Kind: Announce})
	}
	return out
}

// SetConfig replaces the configuration in force, for a reload or a changed
// effective priority. It takes effect from the next event: a Master
// advertises the new priority at its next Adver_Timer, and a Backup uses it
// for the next advertisement it judges and the next Master_Down_Timer it
// sets. A running timer is left alone, so a reload that changes nothing
// relevant disturbs nothing.
func (r *Router) SetConfig(c Config) {
	if c.Addr != r.cfg.Addr && r.state == Master {
		r.master = c.Addr
	}
	r.cfg = c
}
