// Package ladder validates received VRRP packets in the order of RFC 9568
// §7.1 (RFC 3768 §7.1 for version 2): one function from packet bytes,
// metadata and a lookup to a drop reason, shared by the daemon and vipd
// watch.
package ladder
