// Package transport is the raw IP socket VRRP (RFC 9568 §5.1) travels on: one
// per interface, shared by every virtual router on it (Linux only).
package transport
