// Package router is the VRRP virtual-router state machine of RFC 9568 §6.4
// (Initialize, Backup, Master, and vipd's FAULT) as a pure step function: it
// takes the time and an event and returns actions as values, and says when
// it next needs stepping. Every timer of the protocol is its state. It opens
// no sockets, starts no goroutines and reads no clock.
package router
