// Package vrrp encodes and decodes VRRP advertisements: version 3 for IPv4 and IPv6 (RFC 9568) and version 2 for IPv4 (RFC 3768).
package vrrp
