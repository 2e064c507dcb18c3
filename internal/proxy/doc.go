// Package proxy is vipd's userspace TCP load balancer (a virtual server's
// mode proxy): a listener on the virtual server's address and port, bound
// with IP_FREEBIND so that it listens while the address is on another node,
// that connects each client to a healthy real server picked by a scheduler,
// tries the next real servers when a connect fails, and moves the bytes
// through a small buffer while they fit in it, then with splice
// (TCPConn.ReadFrom).
//
// Update swaps the set of real servers atomically: connections already
// established, to any real server, are never touched by it. Close stops
// accepting and lets the connections drain until its context is done.
// A real server optionally receives a PROXY protocol v2 header (the
// HAProxy PROXY protocol specification, §2.2) carrying the client's
// address.
package proxy
