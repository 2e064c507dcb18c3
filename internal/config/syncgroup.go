package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// SyncGroup is a set of instances that share fate (keepalived's
// vrrp_sync_group): the group is Master only while every member can be;
// a member in FAULT puts every member in FAULT; a member that hears a
// better Master takes the whole group to Backup.
type SyncGroup struct {
	Name string
	// Instances are the members' names, at least two.
	Instances []string
	// Notify is run on the group's state changes; Command gets
	// keepalived's arguments: GROUP, the name and the state in capitals.
	Notify Notify
}

// groupAt is where a sync group was written, for the checks that need the
// instances.
type groupAt struct {
	node    *yaml.Node
	path    string
	members []at // parallel to SyncGroup.Instances
}

func (d *decoder) syncGroups(n *yaml.Node, path string) []SyncGroup {
	var out []SyncGroup
	d.list(n, path, "sync groups", func(_ int, n *yaml.Node, path string) {
		g := SyncGroup{Notify: Notify{Timeout: DefaultNotifyTimeout}}
		src := groupAt{node: n, path: path}
		d.mapping(n, path, []field{
			{name: "name", required: true, decode: setString(d, &g.Name, checkGroupName)},
			{name: "instances", required: true, decode: func(n *yaml.Node, path string) {
				seen := map[string]int{}
				d.list(n, path, "instance names", func(_ int, n *yaml.Node, path string) {
					var name string
					setString(d, &name, checkName)(n, path)
					if name == "" {
						return
					}
					if first, dup := seen[name]; dup {
						d.errorf(n, path, "instance %q is listed twice (first at line %d)", name, first)
						return
					}
					seen[name] = n.Line
					g.Instances = append(g.Instances, name)
					src.members = append(src.members, at{n, path})
				})
				if n.Kind == yaml.SequenceNode && len(n.Content) < 2 {
					d.errorf(n, path, "a sync group needs at least two instances")
				}
			}},
			{name: "notify", decode: func(n *yaml.Node, path string) { d.notify(n, path, &g.Notify) }},
		})
		out = append(out, g)
		d.groups = append(d.groups, src)
	})
	return out
}

func checkGroupName(s string) error {
	if !isName(s, false) {
		return fmt.Errorf("%q is not a valid sync group name: use 1 to 64 of A-Z a-z 0-9 _ . -", short(s))
	}
	return nil
}

// checkGroups checks the sync groups against the instances, once both are
// decoded, and records each member's group in Instance.SyncGroup.
//
// Members must rank nodes alike on every segment, or the group's
// elections churn: one member would follow one node and another member
// another. A node's config cannot see the other nodes' priorities, so
// the rule is local and sufficient when every node follows it: the
// members have one priority and one preemption setting, and no tracked
// weight changes one member's priority alone (a member tracks in FAULT
// mode, which moves the whole group).
func (d *decoder) checkGroups(c *Config) {
	names := map[string]int{}
	inGroup := map[string]string{}
	for gi, g := range c.SyncGroups {
		src := d.groups[gi]
		if g.Name != "" {
			if first, dup := names[g.Name]; dup {
				d.errorf(src.node, src.path+".name", "sync group name %q is already used (line %d)", g.Name, first)
			} else {
				names[g.Name] = src.node.Line
			}
		}
		var first *Instance
		var firstAt at
		for mi, name := range g.Instances {
			loc := src.members[mi]
			idx, ok := d.instAt[name]
			if !ok {
				d.errorf(loc.node, loc.path, "unknown instance %q%s", name, suggestName(name, c.Instances))
				continue
			}
			if other, dup := inGroup[name]; dup {
				d.errorf(loc.node, loc.path, "instance %q is already in sync group %q: an instance can be in one group only", name, other)
				continue
			}
			inGroup[name] = g.Name
			in := &c.Instances[idx]
			in.SyncGroup = g.Name
			for _, w := range weightedTracking(in) {
				d.errorf(loc.node, loc.path, "instance %q tracks %s with weight %d: in a sync group a weight would change this member's priority alone, and the members would rank nodes differently; track it without a weight (FAULT moves the whole group)", name, w.what, w.weight)
			}
			if first == nil {
				first, firstAt = in, loc
				continue
			}
			switch {
			case in.Priority != first.Priority:
				d.errorf(loc.node, loc.path, "instance %q has priority %d but %q (line %d) has %d: members of a sync group need one priority, or their elections rank nodes differently and churn", name, in.Priority, first.Name, firstAt.node.Line, first.Priority)
			case in.Preempt != first.Preempt || in.PreemptDelay != first.PreemptDelay:
				d.errorf(loc.node, loc.path, "instance %q preempts differently from %q (line %d): members of a sync group need the same preempt and preempt_delay, or one waits for the other forever", name, first.Name, firstAt.node.Line)
			}
		}
	}
}

// suggestName offers the instance name closest to a misspelt one.
func suggestName(name string, insts []Instance) string {
	var fs []field
	for _, in := range insts {
		if in.Name != "" {
			fs = append(fs, field{name: in.Name})
		}
	}
	if s := suggest(name, fs); s != "" {
		return s
	}
	var all []string
	for _, f := range fs {
		all = append(all, f.name)
	}
	return fmt.Sprintf(" (instances: %s)", strings.Join(all, ", "))
}

// weighted is one tracked object with a weight: what names it for an
// error ("check \"api\"").
type weighted struct {
	what   string
	weight int
}

// weightedTracking lists what in tracks with a weight, of every kind.
func weightedTracking(in *Instance) []weighted {
	var ws []weighted
	for _, t := range in.TrackChecks {
		if t.Weight != 0 {
			ws = append(ws, weighted{fmt.Sprintf("check %q", t.Check), t.Weight})
		}
	}
	for _, t := range in.TrackInterfaces {
		if t.Weight != 0 {
			ws = append(ws, weighted{fmt.Sprintf("interface %q", t.Interface), t.Weight})
		}
	}
	for _, t := range in.TrackVirtualServers {
		if t.Weight != 0 {
			ws = append(ws, weighted{fmt.Sprintf("virtual server %q", t.VirtualServer), t.Weight})
		}
	}
	return ws
}
