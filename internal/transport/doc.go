// Package transport is the raw IP socket VRRP (RFC 9568 §5.1) travels on: one
// per interface and family, shared by every virtual router on it, with a
// second, send-only socket that adverts leave from (Linux only).
package transport
