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
	ReasonInterfaceGone         // its interface was deleted, or its socket cannot send
	ReasonGroup                 // its sync group went Master or Backup
	ReasonGroupFault            // another member of its sync group is in FAULT
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
	ReasonInterfaceGone:  "interface gone",
	ReasonGroup:          "sync group",
	ReasonGroupFault:     "sync group member in fault",
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
	// AnnounceRounds is how many rounds of gratuitous ARPs / neighbour
	// advertisements a new Master sends, AnnounceInterval the time between
	// them. Zero rounds means one.
	AnnounceRounds   int
	AnnounceInterval time.Duration
	// AnnounceRefresh, if not zero, has a Master announce its VIPs again,
	// one round, every AnnounceRefresh after its last announcement
	// (keepalived's garp_master_refresh): switches and neighbours that
	// aged the entry out, or never heard it, learn it again. Its own timer:
	// not tied to the advert interval (keepalived #1214).
	AnnounceRefresh time.Duration
	// Grouped says the router is a member of a sync group: when its
	// Master_Down_Timer fires it does not become Master but Ready, and
	// waits for its group's GroupMaster (see Ready).
	Grouped bool
}

// EventKind says what happened.
type EventKind uint8

// Events.
const (
	// Startup starts the instance (RFC 9568 §6.4.1).
	Startup EventKind = iota + 1
	// Shutdown stops it. A Master sends priority 0 and keeps its VIPs until
	// the new Master is heard (see RemoveVIPs).
	Shutdown
	// Timeout says the time returned by Next has come. A Timeout before
	// then does nothing, so a stale timer is harmless.
	Timeout
	// Advert is a valid ADVERTISEMENT for this virtual router.
	Advert
	// FaultOn takes the instance out of the election (Event.Reason says
	// why): a Master sends priority 0 and releases its VIPs at once.
	FaultOn
	// FaultOff puts it back: it starts over in Backup.
	FaultOff
	// Reannounce says the VIPs had to be put back on the interface (someone
	// removed them): a Master announces them again, from round 1.
	Reannounce
	// GroupMaster says every member of the router's sync group is Ready
	// or Master: a Ready router becomes Master. Otherwise it does nothing.
	GroupMaster
	// GroupBackup says another member of the router's sync group follows
	// a better Master: a Master steps down, sending priority 0 so that
	// the other node takes over at Skew_Time, and hands its VIPs over as
	// at Shutdown. Otherwise it does nothing.
	GroupBackup
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
	// Announce sends round Action.Round of Action.Rounds of gratuitous ARPs
	// / unsolicited neighbour advertisements for the VIPs.
	Announce
	// Transition reports a state change (From, To, Reason) for logs,
	// metrics and hooks.
	Transition
	// RivalSeen says that while Master, another router (Action.Master) keeps
	// advertising as Master too: a split brain. RivalGone says it ended.
	RivalSeen
	RivalGone
)

var actionNames = [...]string{
	SendAdvert: "send advert", AddVIPs: "add vips", RemoveVIPs: "remove vips", Announce: "announce",
	Transition: "transition", RivalSeen: "rival seen", RivalGone: "rival gone",
}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", k)
}

// Action is an output of Step.
type Action struct {
	Kind     ActionKind
	Priority uint8
	From, To State
	Reason   Reason
	// Round and Rounds number an Announce, from 1; Refresh says it is a
	// periodic refresh (AnnounceRefresh), not a new Master's.
	Round, Rounds int
	Refresh       bool
	// Master is the rival of a RivalSeen.
	Master netip.Addr
}

const (
	// reannounceEvery limits how often a Master re-announces its VIPs when
	// it hears a lower-priority Master (a healed partition).
	reannounceEvery = time.Second
	// handoverMax bounds how long a Master that shuts down keeps its VIPs
	// waiting for a new Master's first advertisement. It covers the
	// Skew_Time of every Backup up to a 650 ms interval, and of Backups of
	// priority 90 or more at a 1 s interval, while shutdown stays within a
	// second.
	handoverMax = 650 * time.Millisecond
)

// Router is one virtual router. The zero value is not usable; call New.
type Router struct {
	cfg   Config
	state State

	// masterAdverInterval is Master_Adver_Interval: the interval learned
	// from the current Master (RFC 9568 §6.1).
	masterAdverInterval time.Duration
	// deadline is Adver_Timer in Master and Master_Down_Timer in Backup;
	// zero in Init and Fault.
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
	// leaving says the Master_Down_Timer was set to Skew_Time by a
	// priority-0 advertisement.
	leaving bool

	// announceAt is when round announceRound of the announcement is due;
	// zero when no round is left.
	announceAt    time.Time
	announceRound int
	// announced is when a Master last finished announcing its VIPs: the
	// refresh is due AnnounceRefresh later. Zero out of Master.
	announced time.Time

	// releaseAt is set while a Master that shut down keeps its VIPs for the
	// new Master (see shutdown): they go when that Master is heard, or at
	// releaseAt.
	releaseAt time.Time

	// ready says a grouped Backup's Master_Down_Timer fired: it waits for
	// its group, since readySince.
	ready      bool
	readySince time.Time

	// Rival Masters heard while Master (a healed partition, or a peer that
	// cannot hear us): lowerSeen is when one last advertised, lowerFrom
	// which; rivalAdverts counts the adverts of this episode, rival says a
	// split brain is reported (RivalSeen), reannounced is when the VIPs
	// were last re-announced for one.
	lowerSeen, reannounced time.Time
	lowerFrom              netip.Addr
	rivalAdverts           int
	rival                  bool
}

// New returns a Router in Init.
func New(cfg Config) *Router {
	return &Router{cfg: cfg, masterAdverInterval: cfg.AdvertInterval}
}

// State returns the current state.
func (r *Router) State() State { return r.state }

// Deadline returns the protocol timer: Adver_Timer in Master,
// Master_Down_Timer in Backup, the zero time otherwise. Next says when the
// router must be stepped, which also covers its other timers.
func (r *Router) Deadline() time.Time { return r.deadline }

// Next returns when the router must next be stepped with a Timeout (at),
// and the earliest time such a step does something (early, at most at):
// a Master's advertisement may leave up to a quarter interval before its
// Adver_Timer, so that a driver serving many Masters wakes once for all
// whose adverts are nearly due; a Backup then hears its Master every 0.75
// to 1 interval, never less often than configured. at is zero when no
// timer runs.
func (r *Router) Next() (at, early time.Time) {
	for _, t := range [...]time.Time{r.deadline, r.announceAt, r.refreshAt(), r.releaseAt, r.rivalEnd()} {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	early = at
	if r.state == Master && at.Equal(r.deadline) {
		early = at.Add(-r.advertEarly())
	}
	return at, early
}

func (r *Router) advertEarly() time.Duration { return r.cfg.AdvertInterval / 4 }

// rivalEnd is when the split brain reported ends if no rival is heard again.
func (r *Router) rivalEnd() time.Time {
	if !r.rival {
		return time.Time{}
	}
	return r.lowerSeen.Add(r.rivalWindow())
}

// rivalWindow is how long after a rival Master's advert the episode lasts.
func (r *Router) rivalWindow() time.Duration { return 3 * r.cfg.AdvertInterval }

// Ready says the router is a sync group member in Backup whose
// Master_Down_Timer fired: it would be Master, and waits for every other
// member to be able to (GroupMaster). keepalived's wantstate MASTER.
func (r *Router) Ready() bool { return r.ready }

// Following says the router is in Backup behind a Master it heard: a
// member of a sync group that follows another node, so the group must not
// be Master here.
func (r *Router) Following() bool {
	return r.state == Backup && r.master.IsValid() && !r.ready && !r.leaving
}

// Holding says whether the router wants its VIPs on the interface: as
// Master, or while a Master that shut down waits for its successor.
func (r *Router) Holding() bool { return r.state == Master || !r.releaseAt.IsZero() }

// Master returns the address of the current Master as far as this router
// knows: its own address in Master, the last advertiser in Backup.
func (r *Router) Master() netip.Addr { return r.master }

// MasterAdverInterval returns the learned Master_Adver_Interval.
func (r *Router) MasterAdverInterval() time.Duration { return r.masterAdverInterval }

// Config returns the configuration in force.
func (r *Router) Config() Config { return r.cfg }

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
		if r.state != Init {
			return out
		}
		out = r.release(out)
		return r.backup(now, ReasonStartup, out)
	case Shutdown:
		return r.shutdown(now, out)
	case Timeout:
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
	case Reannounce:
		if r.state == Master {
			out = r.announce(now, out)
		}
	case GroupMaster:
		if r.state == Backup && r.ready {
			return r.becomeMaster(now, ReasonGroup, out)
		}
	case GroupBackup:
		if r.state == Master {
			out = append(out, Action{Kind: SendAdvert, Priority: 0})
			r.releaseAt = now.Add(r.handover())
			return r.backup(now, ReasonGroup, out)
		}
	}
	return out
}

// fault leaves the election. Like a shutdown, a Master sends priority 0 so
// that a Backup takes over after Skew_Time; unlike it, it releases the VIPs
// at once: the service behind them is gone.
func (r *Router) fault(why Reason, out []Action) []Action {
	switch r.state {
	case Fault:
		return out
	case Master:
		out = append(out, Action{Kind: SendAdvert, Priority: 0}, Action{Kind: RemoveVIPs})
	}
	out = r.release(out)
	r.deadline = time.Time{}
	r.master = netip.Addr{}
	return r.become(Fault, why, out)
}

// backup enters Backup afresh, as at startup (RFC 9568 §6.4.1: a router that
// is not the address owner starts in Backup with Master_Adver_Interval =
// Advertisement_Interval).
func (r *Router) backup(now time.Time, why Reason, out []Action) []Action {
	r.masterAdverInterval = r.cfg.AdvertInterval
	r.master = netip.Addr{}
	r.lowerSince = time.Time{}
	r.deadline = now.Add(MasterDownInterval(r.cfg.Priority, r.masterAdverInterval))
	return r.become(Backup, why, out)
}

// RFC 9568 §6.4.2 and §6.4.3, on Shutdown. A Master sends priority 0 so
// that a Backup takes over after Skew_Time instead of Master_Down_Interval,
// and removes its VIPs make-before-break: once the new Master's first
// advertisement is heard — it has then added the VIPs and is announcing
// them — or after the longest Skew_Time (one interval, with a margin for
// the new Master's scheduling) if none is. Clients thus never find the VIPs
// on neither host, and two hosts hold them only until the new Master's
// announcement reaches the clients.
func (r *Router) shutdown(now time.Time, out []Action) []Action {
	switch r.state {
	case Master:
		out = append(out, Action{Kind: SendAdvert, Priority: 0})
		r.releaseAt = now.Add(r.handover())
	case Init:
		return out
	}
	r.deadline = time.Time{}
	return r.become(Init, ReasonShutdown, out)
}

// handover is how long a Master that steps down keeps its VIPs for its
// successor.
func (r *Router) handover() time.Duration {
	return min(r.cfg.AdvertInterval+r.cfg.AdvertInterval/4+5*time.Millisecond, handoverMax)
}

// release ends a handover: the VIPs go now.
func (r *Router) release(out []Action) []Action {
	if r.releaseAt.IsZero() {
		return out
	}
	r.releaseAt = time.Time{}
	return append(out, Action{Kind: RemoveVIPs})
}

// timeout fires every timer whose time has come, protocol timer first.
func (r *Router) timeout(now time.Time, out []Action) []Action {
	if !r.releaseAt.IsZero() && !now.Before(r.releaseAt) {
		out = r.release(out)
	}
	switch {
	case r.state == Backup && !r.deadline.IsZero() && !now.Before(r.deadline):
		// RFC 9568 §6.4.2: Master_Down_Timer fired.
		why := ReasonMasterDown
		if r.leaving {
			why = ReasonPriorityZero
		}
		if r.cfg.Grouped {
			// A sync group is Master only where every member can be:
			// wait for the others (GroupMaster), listening still.
			if !r.ready {
				r.ready, r.readySince = true, r.deadline
			}
			r.deadline = time.Time{}
			return out
		}
		return r.becomeMaster(now, why, out)
	case r.state == Master && !r.deadline.IsZero() && !now.Before(r.deadline.Add(-r.advertEarly())):
		// RFC 9568 §6.4.3: Adver_Timer fired (or is about to; see Next).
		r.deadline = now.Add(r.cfg.AdvertInterval)
		out = append(out, Action{Kind: SendAdvert, Priority: r.cfg.Priority})
	}
	if !r.announceAt.IsZero() && !now.Before(r.announceAt) {
		out = r.announceNext(now, out)
	}
	if at := r.refreshAt(); !at.IsZero() && !now.Before(at) {
		r.announced = now
		out = append(out, Action{Kind: Announce, Round: 1, Rounds: 1, Refresh: true})
	}
	if end := r.rivalEnd(); !end.IsZero() && !now.Before(end) {
		out = r.rivalOver(out)
	}
	return out
}

func (r *Router) becomeMaster(now time.Time, why Reason, out []Action) []Action {
	// Back to Master during a handover (GroupBackup): the VIPs stay.
	r.releaseAt = time.Time{}
	r.deadline = now.Add(r.cfg.AdvertInterval)
	r.master = r.cfg.Addr
	r.lowerSince = time.Time{}
	r.reannounced, r.lowerSeen, r.lowerFrom, r.rivalAdverts = time.Time{}, time.Time{}, netip.Addr{}, 0
	// RFC 9568 §6.4.2 sends the advertisement, then the gratuitous ARPs.
	// The VIPs and their announcement go first here: a Master handing
	// over gracefully keeps the VIPs until it hears this advertisement,
	// so clients must already have been told where the VIPs went.
	out = append(out, Action{Kind: AddVIPs})
	out = r.announce(now, out)
	out = append(out, Action{Kind: SendAdvert, Priority: r.cfg.Priority})
	return r.become(Master, why, out)
}

// announce starts the announcement afresh: round 1 now, the others at
// AnnounceInterval.
func (r *Router) announce(now time.Time, out []Action) []Action {
	r.announceRound = 1
	return r.announceNext(now, out)
}

func (r *Router) announceNext(now time.Time, out []Action) []Action {
	rounds := max(r.cfg.AnnounceRounds, 1)
	out = append(out, Action{Kind: Announce, Round: r.announceRound, Rounds: rounds})
	r.announceRound++
	r.announceAt = time.Time{}
	if r.announceRound <= rounds {
		r.announceAt = now.Add(r.cfg.AnnounceInterval)
	} else {
		r.announced = now
	}
	return out
}

// refreshAt is when the periodic refresh is due: zero when off, out of
// Master, and while an announcement is under way.
func (r *Router) refreshAt() time.Time {
	if r.state != Master || r.cfg.AnnounceRefresh <= 0 || !r.announceAt.IsZero() || r.announced.IsZero() {
		return time.Time{}
	}
	return r.announced.Add(r.cfg.AnnounceRefresh)
}

func (r *Router) become(to State, why Reason, out []Action) []Action {
	from := r.state
	r.leaving = false
	r.ready, r.readySince = false, time.Time{}
	r.state = to
	if from == Master {
		r.announceAt, r.announced = time.Time{}, time.Time{}
		out = r.rivalOver(out)
		r.lowerSeen, r.lowerFrom, r.rivalAdverts = time.Time{}, netip.Addr{}, 0
	}
	return append(out, Action{Kind: Transition, From: from, To: to, Reason: why})
}

func (r *Router) rivalOver(out []Action) []Action {
	if !r.rival {
		return out
	}
	r.rival = false
	r.rivalAdverts = 0
	return append(out, Action{Kind: RivalGone})
}

func (r *Router) advert(now time.Time, ev Event, out []Action) []Action {
	if ev.Priority != 0 {
		// A new Master is heard: a handover is complete.
		out = r.release(out)
	}
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
	r.ready, r.readySince = false, time.Time{}
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
	// a storm. One advert is not yet a split brain: a Master that steps
	// down for us sends one last advert (above); a second within the
	// window is.
	gap := r.lowerSeen.IsZero() || now.Sub(r.lowerSeen) > r.rivalWindow()
	newEpisode := gap || ev.From != r.lowerFrom
	if gap {
		out = r.rivalOver(out)
		r.rivalAdverts = 0
	}
	r.lowerSeen, r.lowerFrom = now, ev.From
	r.rivalAdverts++
	if newEpisode || now.Sub(r.reannounced) >= reannounceEvery {
		r.reannounced = now
		out = r.announce(now, out)
	}
	if r.rivalAdverts >= 2 && !r.rival {
		r.rival = true
		out = append(out, Action{Kind: RivalSeen, Master: ev.From})
	}
	return out
}

// SetConfig replaces the configuration in force, for a reload, a changed
// effective priority or a new primary address. It takes effect from the
// next event: a Master advertises the new priority at its next Adver_Timer,
// and a Backup uses it for the next advertisement it judges and the next
// Master_Down_Timer it sets. A running timer is left alone, so a reload
// that changes nothing relevant disturbs nothing.
func (r *Router) SetConfig(c Config) {
	if c.Addr != r.cfg.Addr && r.state == Master {
		r.master = c.Addr
	}
	if r.ready && !c.Grouped {
		// Out of its group: its Master_Down_Timer has long fired.
		r.deadline, r.ready, r.readySince = r.readySince, false, time.Time{}
	}
	r.cfg = c
}
