package keepalived

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// finishGroups converts the sync groups once their members are: a group
// with two or more converted members that vipd accepts becomes a
// sync_groups entry; otherwise its members fail over on their own, and
// the comments say why.
func (c *converter) finishGroups(doc *document) {
	names := map[string]bool{}
	inGroup := map[*outInstance]string{}
	for _, g := range c.syncGroups {
		var members []*outInstance
		var missing []string
		for _, k := range g.members {
			in := c.converted[k]
			switch {
			case in == nil:
				missing = append(missing, k)
			case inGroup[in] != "":
				c.ignored(g.stmt, g.subject, "group "+k, "already a member of vrrp_sync_group %s; keepalived ignores it here too", inGroup[in])
			default:
				members = append(members, in)
			}
		}
		if len(missing) > 0 {
			g.head = append(g.head, c.report(g.stmt, Finding{Subject: g.subject, What: "group " + strings.Join(missing, " "), Kind: Ignored,
				Msg: "no converted vrrp_instance of that name", Note: "not converted: no vrrp_instance of that name was converted"}))
		}
		if why := c.groupRefused(g, members); why != "" {
			if len(g.notify)+len(g.trackScripts)+len(g.trackIfaces) > 0 {
				why += "; its notify and tracking are not converted either (move them to the member instances)"
			}
			doc.trailer = append(doc.trailer, c.notConverted(g.stmt, "", why))
			for _, in := range members {
				in.head = slices.Insert(in.head, 1, fmt.Sprintf("member of vrrp_sync_group %s (%s): not converted, this instance fails over on its own", g.kname, g.stmt.Pos))
			}
			continue
		}
		out := &outGroup{name: sanitize(g.kname, "group", names), head: append([]string{fmt.Sprintf("vrrp_sync_group %s (%s)", g.kname, g.stmt.Pos)}, g.head...)}
		if out.name != g.kname {
			out.head = append(out.head, fmt.Sprintf("keepalived name: %q", g.kname))
		}
		c.notify(&out.notify, func(note string) { out.head = append(out.head, note) }, g.notify, g.subject)
		for _, in := range members {
			inGroup[in] = g.kname
			out.members = append(out.members, in.name)
			in.head = slices.Insert(in.head, 1, fmt.Sprintf("member of vrrp_sync_group %s (%s): sync_groups %s", g.kname, g.stmt.Pos, out.name))
			// The group's tracking is every member's: a failure puts
			// the whole group in FAULT, as in keepalived.
			in.tail = append(in.tail, c.trackScripts(in, g.trackScripts, g.subject+" (for "+in.name+")")...)
			in.tail = append(in.tail, c.trackInterfaces(in, g.trackIfaces, g.subject+" (for "+in.name+")")...)
			c.unweight(g, in)
		}
		doc.groups = append(doc.groups, out)
	}
}

// groupRefused says why vipd would refuse g's converted members as a
// sync group, or "".
func (c *converter) groupRefused(g *syncIn, members []*outInstance) string {
	if len(members) < 2 {
		return fmt.Sprintf("%d of its members converted; a sync group needs two: its member fails over on its own", len(members))
	}
	first := members[0]
	for _, in := range members[1:] {
		switch {
		case in.priority != first.priority:
			return fmt.Sprintf("its members have priorities %d (%s) and %d (%s): vipd needs one priority in a sync group, or the members rank nodes differently and churn; give them one and convert again", first.priority, first.name, in.priority, in.name)
		case in.noPreempt != first.noPreempt || in.preemptDelay != first.preemptDelay:
			return fmt.Sprintf("its members %s and %s preempt differently: vipd needs the same preempt and preempt_delay in a sync group", first.name, in.name)
		}
	}
	return ""
}

// unweight makes a member's weighted tracking FAULT tracking: keepalived
// ignores those weights in a sync group (unless
// sync_group_tracking_weight), and vipd refuses them, since a weight
// would change one member's priority alone.
func (c *converter) unweight(g *syncIn, in *outInstance) {
	msg, note := "", "keepalived ignores it in a sync group member, and vipd tracks it without a weight: FAULT moves the whole group"
	kind := Same
	if g.trackingWeight != nil {
		msg = "keepalived applies it (sync_group_tracking_weight), vipd refuses weights in a sync group: converted as FAULT tracking (no weight)"
		note = "keepalived applies it (sync_group_tracking_weight); vipd refuses weights in a sync group and tracks it without one: FAULT moves the whole group"
		kind = Changed
	}
	for _, list := range []*[]outTrack{&in.trackChecks, &in.trackIfaces} {
		for i := range *list {
			t := &(*list)[i]
			if t.weight == 0 {
				continue
			}
			f := Finding{Subject: in.subject, What: "weight " + strconv.Itoa(t.weight), Said: t.stmt.Line(), Kind: kind,
				Msg: msg, Note: note}
			t.head = append(t.head, c.report(t.stmt, f))
			t.weight = 0
		}
	}
}

// vmacName is the name vipd gives in's virtual MAC interface by default.
func vmacName(in *outInstance) string {
	if in.family == "ipv6" {
		return fmt.Sprintf("vrrp6.%d", in.vrid)
	}
	return fmt.Sprintf("vrrp.%d", in.vrid)
}
