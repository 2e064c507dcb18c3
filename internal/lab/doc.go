// Package lab builds a small VRRP test network out of Linux network
// namespaces: a "switch" namespace holding a bridge, router nodes and a client,
// each plugged into the bridge by a veth pair. It runs vipd or keepalived in
// the nodes (VRRPv3 or v2, IPv4 or IPv6, multicast or unicast), pulls cables,
// blocks VRRP on the switch, sends crafted adverts, reads who holds a virtual
// IP and measures how long a client cannot reach it. It reads what a daemon
// costs (CPU and memory, with procfs) and what it counted (vipd's metrics,
// keepalived's statistics), and can give the router nodes further segments,
// one bridge each, for instances over several interfaces. The end-to-end
// tests, the demo and the benchmark share it. Everything needs root and
// Linux; addresses are from 192.0.2.0/24 (further segments: 198.51.100.0/24
// and 203.0.113.0/24, RFC 5737, and 198.19.0.0/24, RFC 2544) and, with
// Config.IPv6, from 2001:db8::/64 (RFC 3849), so no traffic can leave the
// lab.
package lab
