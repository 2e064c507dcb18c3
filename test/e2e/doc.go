// Package e2e holds end-to-end tests: real vipd processes in a lab of
// network namespaces (internal/lab), checked from the outside by who holds
// the VIP, what the client's neighbour table says and whether the client can
// reach the VIP. They need root; as non-root they skip unless CI is set.
package e2e
