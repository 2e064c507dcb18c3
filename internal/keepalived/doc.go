// Package keepalived reads keepalived.conf (keepalived 1.x and 2.x syntax:
// blocks, # and ! comments, quoted strings, include, @ID conditional lines
// and $NAME parameters, as keepalived.conf(5) describes them) into a small
// syntax tree, and converts its VRRP part (RFC 3768 / RFC 9568) into a vipd
// YAML configuration. Whatever vipd cannot express is kept as a comment in
// the output and reported as a warning, both rendered from one Finding,
// never dropped silently.
package keepalived
