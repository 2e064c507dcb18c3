package router

// A sync group (keepalived's vrrp_sync_group) is routers that share fate:
// the group is Master only where every member can be, a member in FAULT
// puts every member in FAULT, and a member that follows a better Master
// takes the whole group to Backup. Its decisions are pure, like a
// router's: Decide maps what the members are to what each must be told.

// Member is what a sync group knows of one member.
type Member struct {
	State State
	// Fault says the member's own tracked checks or interfaces keep it in
	// FAULT, as opposed to its group's order.
	Fault bool
	// Ready and Following are the router's (Router.Ready, Following).
	Ready, Following bool
}

// MemberOf describes r, in FAULT of its own or not.
func MemberOf(r *Router, fault bool) Member {
	return Member{State: r.State(), Fault: fault, Ready: r.Ready(), Following: r.Following()}
}

// Order is what a sync group tells one member.
type Order struct {
	// Fault says another member is in FAULT of its own: this one must be
	// in FAULT too (ReasonGroupFault), until that ends.
	Fault bool
	// Master and Backup are a GroupMaster or GroupBackup event to step.
	Master, Backup bool
}

// Decide returns an order for each member, in the order of ms:
//   - while any member is in FAULT of its own, every other member is told
//     FAULT, and nothing else;
//   - else, while a member is Master and another follows a Master on its
//     segment, the Masters are told to step down (GroupBackup): the other
//     node's group is Master there;
//   - else, once every member is Ready or Master, the Ready ones are told
//     to become Master (GroupMaster); until then a Ready member waits, so
//     that a member whose peer went silent cannot take over alone while
//     another member still follows that node (keepalived prefers Backup
//     to thrashing likewise).
func Decide(ms []Member, out []Order) []Order {
	out = out[:0]
	faults := 0
	var master, following, ready, waiting bool
	for _, m := range ms {
		if m.Fault {
			faults++
		}
		switch {
		case m.State == Master:
			master = true
		case m.Ready:
			ready = true
		default:
			waiting = true
		}
		following = following || m.Following
	}
	for _, m := range ms {
		var o Order
		switch {
		case faults > 0:
			o.Fault = faults > 1 || !m.Fault
		case master && following:
			o.Backup = m.State == Master
		case ready && !waiting:
			o.Master = m.Ready
		}
		out = append(out, o)
	}
	return out
}

// GroupState is the state a group reports (its notify hooks, status):
// FAULT if a member is in FAULT, MASTER once every member is, INIT while
// every member is (stopped), BACKUP otherwise.
func GroupState(ms []Member) State {
	all := func(s State) bool {
		for _, m := range ms {
			if m.State != s {
				return false
			}
		}
		return len(ms) > 0
	}
	for _, m := range ms {
		if m.State == Fault {
			return Fault
		}
	}
	switch {
	case all(Master):
		return Master
	case all(Init):
		return Init
	}
	return Backup
}
