// Package lb load-balances connections to a virtual server (an address,
// port and protocol) over its healthy real servers with nftables, in the
// kernel's NAT path (keepalived's virtual_server with lb_kind NAT, without
// IPVS).
//
// # The table
//
// vipd owns one table, inet vipd, and never reads or writes another. Build
// turns the virtual servers into the table's objects, a pure function that
// tests check without root; Linux.Apply replaces the table with them in one
// netlink batch (add table, delete table, add table and everything in it),
// so the kernel switches from the old rules to the new ones atomically and
// a crashed run's table is replaced or, with Remove, deleted whole. The
// layout follows kube-proxy's nftables mode:
//
//   - nat-prerouting and nat-output (priority dstnat) jump to services,
//     which looks up daddr . l4proto . dport in the verdict maps services4
//     and services6 and goes to the virtual server's chain. Both hooks, so
//     that connections from the network and from the host itself are
//     balanced.
//   - A virtual server's chain picks a real server with numgen inc
//     (round_robin), numgen random (random) or jhash of the client address
//     (source_hash, with a fixed seed so that every node agrees) over an
//     anonymous verdict map bound to the rule; a weight is that many
//     elements of the map, after dividing all weights by their greatest
//     common divisor, interleaved as nginx's smooth weighted round robin
//     does. source_hash is modulo the map's size: a change of real servers
//     moves most clients. With persistence, rules before it send a client
//     found in a real server's affinity set (a dynamic set with that
//     timeout, at most 262144 clients) back to that real server.
//   - A real server's chain refreshes the client in its affinity set, marks
//     the packet for masquerading when the real server is on another host,
//     and DNATs to it. A local real server sees the client's address.
//   - A real server's chain also counts the connection in the real
//     server's named counter (conns/VS/ENDPOINT), which every configured
//     real server has, in the schedule or not (VirtualServer.Down).
//   - nat-postrouting masquerades marked packets (DefaultMark, or
//     Options.Mark) and clears the mark, so a remote real server's replies
//     come back through this host. Not fully-random: see base.
//   - A virtual server without a healthy real server is in no-backends4 or
//     no-backends6 instead, which the filter chains on input, forward and
//     output (the hooks where reject is allowed, before DNAT) consult for
//     new connections: TCP gets a reset and UDP an ICMP port unreachable,
//     so clients fail at once rather than time out.
//
// The rules are the same on every node whatever its VRRP state, since only
// the Master receives the virtual address's traffic anyway. Preflight checks
// once, without changing anything, that the kernel has every feature the
// table uses, and names the one it lacks.
//
// Removing a real server from the table stops new connections to it;
// established ones go on through their conntrack entries. When it is gone
// for good, FlushConntrack deletes those entries, so that the clients'
// next packets are balanced anew and reset, and the clients reconnect at
// once.
//
// Affinity sets and counters live in the table, so replacing it would
// forget every client's real server and every count; Apply copies the
// entries of the real servers that remain (with their remaining lifetime)
// and the counts into the new table in the same batch. Connections reads
// the counts.
//
// # Forwarding
//
// Real servers on another host need the kernel to forward: net.ipv4.ip_forward
// and net.ipv6.conf.all.forwarding. vipd does not turn these on by itself:
// enabling IPv6 forwarding makes every interface a router, which stops it
// accepting router advertisements (with the default accept_ra=1) and so can
// take away the host's default route. CheckForwarding reports what is
// missing for the given virtual servers and EnableForwarding sets it, for
// an operator's explicit choice.
package lb
