// Package control is vipd's control socket: a running daemon answers
// "vipd status" and "vipd reload" on a Unix stream socket.
//
// The protocol is JSON lines. A client connects, sends one request line and
// reads one response line; then the server closes the connection:
//
//	→ {"version":1,"command":"status"}
//	← {"version":1,"ok":true,"instances":[{"name":"api","interface":"eth0",…}]}
//
//	→ {"version":1,"command":"reload"}
//	← {"version":1,"ok":false,"error":"/etc/vipd/vipd.yaml:7: instances[0].vrid: 300 is out of range 1..255"}
//
// The version changes only when the meaning of a message changes
// incompatibly. Fields and commands are added without a change, and both sides
// ignore fields they do not know. A request without a version is version 1.
// A server refuses a request with a version it does not speak.
//
// The socket is mode 0600. Anyone who can connect to it can reload the
// daemon. The server limits what a client can make it do: a request is at
// most 64 KiB, a client has 5 s to send it, and at most 16 connections are
// served at once. Anything malformed gets an error response.
//
// Because the protocol is plain text, the socket can also be used without
// vipd:
//
//	echo '{"command":"status"}' | socat - UNIX-CONNECT:/run/vipd/vipd.sock
package control
