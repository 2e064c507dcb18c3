// Package vroute keeps vipd's virtual routes and routing policy rules
// (keepalived's virtual_routes and virtual_rules) in the kernel while the
// instances that want them are Master, and nothing of them otherwise.
//
// A Manager holds what each owner (an instance) wants and one goroutine,
// Run, makes the kernel's vipd-owned routes and rules equal to the union of
// those wants. Every route and rule it adds carries Protocol, so a start
// removes exactly what a crashed run left behind and `vipd cleanup`
// (Cleanup) exactly vipd's state, nothing of anyone else's.
//
// It avoids two keepalived bugs:
//
//   - acassen/keepalived#1078: two instances whose virtual_routes named the
//     same default route shared it, and the one leaving Master removed it
//     from under the other. Here a route is reference-counted by the key the
//     kernel identifies it by (table, destination, TOS and metric) and stays
//     while any owner wants it.
//   - acassen/keepalived#1719: the kernel removes an IPv4 route silently,
//     without an RTM_DELROUTE notification, when its next hop becomes
//     unreachable (the address whose subnet held the gateway was removed, the
//     link went down) or its preferred source address goes away, and
//     keepalived never put it back. Here every link and address change, and
//     a slow periodic pass, compares the kernel's routes with the wants and
//     re-adds what is missing; adds that cannot succeed yet (the next hop
//     unreachable, the source a VIP not yet on the host) are retried with
//     backoff and at every address or link change.
//
// Rules are added after routes and removed before them, since a rule sends
// lookups to a table the routes fill.
package vroute
