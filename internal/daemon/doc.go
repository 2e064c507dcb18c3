// Package daemon runs vipd's virtual routers: one driver goroutine per
// instance owns its state machine (package router) and timers and carries
// out its actions; one raw socket per interface, shared by every instance on
// it, is read by one goroutine that validates each packet (RFC 9568 §7.1)
// and hands it to its instance by VRID.
package daemon
