//go:build nobgp

package config

// BGPLinked reports whether this build carries GoBGP, and so accepts a bgp
// section: false, this one was built with -tags nobgp.
const BGPLinked = false
