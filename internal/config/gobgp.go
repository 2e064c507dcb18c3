//go:build !nobgp

package config

// BGPLinked reports whether this build carries GoBGP, and so accepts a bgp
// section: true unless built with -tags nobgp.
const BGPLinked = true
