// Package daemon runs vipd's virtual routers: one event loop per interface
// and address family owns every instance on it — their state machines
// (package router), one heap of their deadlines behind one timer, the VRRP
// socket and the announcer — and the kernel state they depend on (the
// interface, its primary address, the VIPs). A reader goroutine per socket
// validates packets (package ladder, RFC 9568 §7.1) and hands admitted
// adverts to the loop; checks, netlink notifications, reloads and status
// requests reach it as messages.
//
// Virtual servers (lb.go) run beside the loops: a health check per real
// server, and the kernel's load-balancing table (LBTable, internal/lb on
// Linux) replaced whole from the healthy ones after every change. Their
// quorum reaches the instances that track them like a check's state.
package daemon
