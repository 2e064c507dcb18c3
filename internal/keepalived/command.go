package keepalived

import "strings"

// splitCommand splits a keepalived script string into argv the way a POSIX
// shell splits simple words: blanks separate words, single quotes keep
// everything literally, double quotes keep blanks (with \" \\ \$ \`
// escapes), and a backslash outside quotes escapes the next character.
//
// needShell reports syntax that only a shell gives a meaning to: pipes,
// redirections, command lists (; & && ||), $ and ` substitutions, globs,
// a leading ~, comments, grouping, VAR=value prefixes, or a quote left open.
// Such a script is better run as /bin/sh -c SCRIPT than split.
func splitCommand(s string) (argv []string, needShell bool) {
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			argv = append(argv, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if c == '\n' {
				needShell = true
			}
			flush()
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, true
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			closed := false
			for ; i < len(s); i++ {
				d := s[i]
				if d == '"' {
					closed = true
					break
				}
				if d == '$' || d == '`' {
					needShell = true
				}
				if d == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
					d = s[i]
				}
				cur.WriteByte(d)
			}
			if !closed {
				return nil, true
			}
			inWord = true
		case c == '\\':
			if i+1 == len(s) {
				return nil, true
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[", c) >= 0:
			needShell = true
			cur.WriteByte(c)
			inWord = true
		case !inWord && strings.IndexByte("~#!{}", c) >= 0:
			// Special only at the start of a word.
			needShell = true
			cur.WriteByte(c)
			inWord = true
		case c == '=' && len(argv) == 0 && isAssignment(cur.String()):
			needShell = true // VAR=value cmd
			cur.WriteByte(c)
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return argv, needShell
}

func isAssignment(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i], i == 0) {
			return false
		}
	}
	return true
}
