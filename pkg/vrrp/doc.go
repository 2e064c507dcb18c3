// Package vrrp encodes and decodes VRRP advertisements: version 3 for IPv4 and IPv6 (RFC 9568) and version 2 for IPv4 (RFC 3768).
//
// It also signs and verifies the auth_hmac trailer of draft-cassen-vrrp-auth-hmac, as keepalived 2.4.2 and later send it: an HMAC-SHA256 and a time-based sequence number after the addresses, for either version and family (Key, AuthTrailer).
package vrrp
