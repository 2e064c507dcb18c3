// Package lab builds a small VRRP test network out of Linux network
// namespaces: a "switch" namespace holding a bridge, router nodes and a client,
// each plugged into the bridge by a veth pair. It runs vipd or keepalived in
// the nodes (VRRPv3 or v2, IPv4 or IPv6, multicast or unicast), pulls cables,
// blocks VRRP on the switch, sends crafted adverts, reads who holds a virtual
// IP and measures how long a client cannot reach it. The end-to-end tests,
// the demo and the benchmark share it. Everything needs root and Linux;
// addresses are from 192.0.2.0/24 (RFC 5737) and, with Config.IPv6, from
// 2001:db8::/64 (RFC 3849), so no traffic can leave the lab.
package lab
