package control

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes insts as a table with a header and one line per instance.
// now is the time that SINCE is measured from:
//
//	NAME  IFACE  VRID  FAMILY  STATE   PRIORITY  MASTER      SINCE  CHECKS
//	api   eth0   51    ipv4    master  150/150   192.0.2.11  3m12s  -
func WriteTable(w io.Writer, now time.Time, insts []Instance) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIFACE\tVRID\tFAMILY\tSTATE\tPRIORITY\tMASTER\tSINCE\tCHECKS")
	for _, in := range insts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\n",
			cell(in.Name), cell(in.Interface), in.VRID, cell(in.Family), cell(in.State),
			in.Priority, in.ConfiguredPriority, cell(in.Master),
			since(now, in.Since), cell(strings.Join(in.FailingChecks, ",")))
	}
	tw.Flush()
}

// cell shows an empty value as "-" and keeps other values on one line and
// in one column.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// since formats the time from t to now in the two largest units:
// "12s", "3m12s", "5h3m", "2d5h". A zero t is "-".
func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0) // a clock stepped backwards
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
