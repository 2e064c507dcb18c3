// Package bgp announces VIPs as host routes (/32, /128) to BGP peers
// (RFC 4271) with an embedded GoBGP speaker, with this node as next hop.
// Nothing of GoBGP is started before New. A build with -tags nobgp leaves
// GoBGP out: the package is then only Peer and StateValue, and config
// refuses a bgp section.
package bgp
