package testenv

import "strings"

// Anchor returns the GitHub anchor of a Markdown heading line ("## A b"
// is "a-b"): lowercased, spaces as hyphens, other punctuation dropped.
func Anchor(heading string) string {
	h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(heading, "#")))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
