package keepalived

import "strings"

// Kind says what became of a keepalived setting.
type Kind int

const (
	// Changed: converted, but vipd behaves otherwise, or a value was
	// adjusted. Warned, and commented "keepalived: WHAT (POS): NOTE"
	// where the output says so.
	Changed Kind = iota
	// NotConverted: left out, vipd has no equivalent. Warned as
	// "WHAT: not converted: MSG", commented "not converted: WHAT (POS): NOTE".
	NotConverted
	// Ignored: skipped, such as a bad value or a repeat. Warned, and
	// rendered as Changed.
	Ignored
	// Same: needs nothing in vipd, which does the same anyway. Commented
	// only.
	Same
)

// A Finding is what the converter says about one setting: one value
// renders both the warning on standard error (String) and the comment in
// the output (Comment), e.g.
//
//	keepalived.conf:14: vrrp_instance VI_1: use_vmac: not converted: vipd has no virtual MAC...
//	# not converted: use_vmac (keepalived.conf:14): vipd has no virtual MAC...
type Finding struct {
	Pos     Pos
	Subject string // the block, for the warning: "vrrp_instance VI_1"; may be empty
	What    string // the setting as the comment names it: "use_vmac vrrp.61"; may be empty
	Said    string // how the warning names it, when not as What
	Kind    Kind
	Msg     string // the warning's text; "" for none
	// Note is the comment's text, often Msg or a shorter one. A comment
	// without What is Note alone: a remark on a field.
	Note string

	seq int
}

// String renders the warning on one line, control characters escaped:
// "FILE:LINE: SUBJECT: WHAT: MSG".
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Pos.String())
	for _, s := range []string{f.Subject, f.said()} {
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	msg := f.Msg
	if f.Kind == NotConverted {
		msg = "not converted: " + msg
	}
	if f.said() == "" {
		// A message of its own words, which may start with anything.
		b.WriteString(": " + msg)
	} else {
		b.WriteString(joined(msg))
	}
	return commentText(b.String())
}

// Comment renders the comment that records the finding in the output,
// unescaped (yamlWriter.comments escapes it).
func (f Finding) Comment() string {
	if f.What == "" {
		return f.Note
	}
	label := "keepalived: "
	if f.Kind == NotConverted {
		label = "not converted: "
	}
	s := label + f.What + " (" + f.Pos.String() + ")"
	if f.Note != "" {
		s += joined(f.Note)
	}
	return s
}

// warns says whether the finding is a warning.
func (f Finding) warns() bool { return f.Kind != Same && f.Msg != "" }

func (f Finding) said() string {
	if f.Said != "" {
		return f.Said
	}
	return f.What
}

// joined is s after the name it follows: after ": ", or right away when
// s starts with punctuation of its own (", which ...", "; vipd ...").
func joined(s string) string {
	if s != "" && strings.IndexByte(" ,;", s[0]) >= 0 {
		return s
	}
	return ": " + s
}
