package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a config file, rendered as
// "FILE:LINE: FIELD: MESSAGE", for example
//
//	vipd.yaml:7: instances[0].vrid: 300 is out of range 1..255
//
// Line is 0 when the problem has no position (an empty file); it is then
// left out, and so is Field when empty.
type Error struct {
	File  string
	Line  int    // 1-based
	Field string // path such as "instances[0].vrid"; empty for file-level problems
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config file, ordered by line. Parse
// returns it, as an error, whenever there is at least one.
type Errors []*Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find an individual *Error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}
