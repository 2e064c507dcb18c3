// Package netif reads an interface and its addresses and adds or removes
// virtual addresses on it, over rtnetlink (Linux only).
package netif
