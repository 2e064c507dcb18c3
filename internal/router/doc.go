// Package router is the VRRP virtual-router state machine of RFC 9568 §6.4
// (Initialize, Backup, Master) as a pure step function: it takes the time and
// an event and returns actions as values. It opens no sockets, starts no
// goroutines and reads no clock; the caller owns the timer and the I/O.
package router
