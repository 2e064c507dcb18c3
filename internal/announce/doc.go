// Package announce tells the link that a virtual address moved here, with
// gratuitous ARP (RFC 5227 §3, RFC 9568 §6.4.1) on Linux AF_PACKET sockets.
package announce
