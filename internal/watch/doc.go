// Package watch is a read-only VRRP segment monitor: it aggregates the
// advertisements heard on a link (RFC 9568, and RFC 3768 for version 2) into a
// table of routers and the conflicts between them, and renders it as text or
// JSON. It hears both families, IPv4 (224.0.0.18) and IPv6 (ff02::12), through
// the one validation ladder the daemon uses (internal/ladder). It sends
// nothing and changes nothing.
package watch
