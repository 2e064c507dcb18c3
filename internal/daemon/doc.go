// Package daemon runs vipd's virtual routers: one event loop per interface
// and address family owns every instance on it — their state machines
// (package router), one heap of their deadlines behind one timer, the VRRP
// socket and the announcer — and the kernel state they depend on (the
// interface, its primary address, the VIPs). A reader goroutine per socket
// validates packets (package ladder, RFC 9568 §7.1) and hands admitted
// adverts to the loop; checks, netlink notifications, reloads and status
// requests reach it as messages.
package daemon
