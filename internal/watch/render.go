package watch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// kindsFor returns the kinds of the conflicts of cs that involve r.
func kindsFor(cs []Conflict, r *Router) []ConflictKind {
	var ks []ConflictKind
	for _, c := range cs {
		if c.VRID != r.VRID || c.Family != r.Family {
			continue
		}
		for _, s := range c.Senders {
			if s == r.Sender {
				ks = append(ks, c.Kind)
				break
			}
		}
	}
	return ks
}

// WriteText writes r as a fixed-width table, followed by the conflicts and
// the dropped packets, in one Write. A row marked "!" is involved in a
// conflict. AUTH is "key N" for a sender signing with auth_hmac key N, "-"
// for an unsigned one.
func WriteText(w io.Writer, r Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "vipd watch on %s at %s: %s, %s, %s\n\n", r.Interface, r.Time.Format(time.DateTime),
		plural(len(r.Routers), "router"), plural(len(r.Conflicts), "conflict"), plural(int(r.Adverts), "advert"))

	senderWidth := len("255.255.255.255")
	for _, rt := range r.Routers {
		senderWidth = max(senderWidth, len(rt.Sender.String()))
	}
	row := func(mark, vrid, fam, ver, sender, prio, interval, state, last, adverts, auth, addrs string) {
		line := fmt.Sprintf("%1s %4s  %-6s  %-3s  %-*s  %4s  %8s  %-8s  %9s  %7s  %-7s  %s",
			mark, vrid, fam, ver, senderWidth, sender, prio, interval, state, last, adverts, auth, addrs)
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	row("", "VRID", "FAMILY", "VER", "SENDER", "PRIO", "INTERVAL", "STATE", "LAST SEEN", "ADVERTS", "AUTH", "ADDRESSES")
	for i := range r.Routers {
		rt := &r.Routers[i]
		mark := ""
		if len(kindsFor(r.Conflicts, rt)) > 0 {
			mark = "!"
		}
		row(mark, fmt.Sprint(rt.VRID), rt.Family.String(), fmt.Sprintf("v%d", rt.Version), rt.Sender.String(),
			fmt.Sprint(rt.Priority), rt.Interval.String(), rt.State.String(), age(r.Time.Sub(rt.LastSeen)),
			fmt.Sprint(rt.Adverts), authColumn(rt), joinAddrs(rt.Addresses))
	}
	if len(r.Routers) == 0 {
		b.WriteString("  (no VRRP adverts heard yet)\n")
	}

	if len(r.Conflicts) > 0 {
		b.WriteString("\nconflicts:\n")
		for _, c := range r.Conflicts {
			fmt.Fprintf(&b, "  %-17s %s\n", c.Kind, c.Message)
		}
	}

	b.WriteString("\nbad packets: ")
	if len(r.Drops) == 0 {
		b.WriteString("none")
	}
	for i, d := range r.Drops {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v %d", d.Reason, d.Count)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

func authColumn(r *Router) string {
	if !r.Signed {
		return "-"
	}
	return fmt.Sprintf("key %d", r.KeyID)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// age formats the time since a sender was last heard: tenths of a second
// under a minute, whole seconds above.
func age(d time.Duration) string {
	d = max(d, 0)
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// The JSON form. Field names are part of vipd's interface: add, never rename.
type (
	jsonReport struct {
		Time       time.Time         `json:"time"`
		Interface  string            `json:"interface"`
		Routers    []jsonRouter      `json:"routers"`
		Conflicts  []jsonConflict    `json:"conflicts"`
		Adverts    uint64            `json:"adverts"`
		BadPackets map[string]uint64 `json:"bad_packets"`
	}
	jsonRouter struct {
		VRID       uint8        `json:"vrid"`
		Family     string       `json:"family"`
		Version    uint8        `json:"version"`
		Sender     netip.Addr   `json:"sender"`
		Priority   uint8        `json:"priority"`
		IntervalMS int64        `json:"interval_ms"`
		Addresses  []netip.Addr `json:"addresses"`
		LastSeenMS int64        `json:"last_seen_ms"` // milliseconds since the last advert
		State      string       `json:"state"`
		Adverts    uint64       `json:"adverts"`
		Signed     bool         `json:"signed"`    // its last advert carried an auth_hmac trailer
		KeyID      uint8        `json:"key_id"`    // the trailer's key id; 0 when unsigned
		Conflicts  []string     `json:"conflicts"` // kinds of the conflicts it is in
	}
	jsonConflict struct {
		Kind    string       `json:"kind"`
		VRID    uint8        `json:"vrid"`
		Family  string       `json:"family"`
		Senders []netip.Addr `json:"senders"`
		Message string       `json:"message"`
	}
)

// WriteJSON writes r as one line of JSON: a stream of reports is
// newline-delimited JSON. Lists are [] rather than null when empty, and
// bad_packets maps each reason with a non-zero count to it.
func WriteJSON(w io.Writer, r Report) error {
	jr := jsonReport{
		Time:       r.Time,
		Interface:  r.Interface,
		Routers:    make([]jsonRouter, len(r.Routers)),
		Conflicts:  make([]jsonConflict, len(r.Conflicts)),
		Adverts:    r.Adverts,
		BadPackets: make(map[string]uint64, len(r.Drops)),
	}
	for i := range r.Routers {
		rt := &r.Routers[i]
		kinds := kindsFor(r.Conflicts, rt)
		names := make([]string, len(kinds))
		for j, k := range kinds {
			names[j] = k.String()
		}
		jr.Routers[i] = jsonRouter{
			VRID:       rt.VRID,
			Family:     rt.Family.String(),
			Version:    rt.Version,
			Sender:     rt.Sender,
			Priority:   rt.Priority,
			IntervalMS: rt.Interval.Milliseconds(),
			Addresses:  append([]netip.Addr{}, rt.Addresses...),
			LastSeenMS: max(r.Time.Sub(rt.LastSeen), 0).Milliseconds(),
			State:      rt.State.String(),
			Adverts:    rt.Adverts,
			Signed:     rt.Signed,
			KeyID:      rt.KeyID,
			Conflicts:  names,
		}
	}
	for i, c := range r.Conflicts {
		jr.Conflicts[i] = jsonConflict{
			Kind:    c.Kind.String(),
			VRID:    c.VRID,
			Family:  c.Family.String(),
			Senders: append([]netip.Addr{}, c.Senders...),
			Message: c.Message,
		}
	}
	for _, d := range r.Drops {
		jr.BadPackets[d.Reason.String()] = d.Count
	}
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
