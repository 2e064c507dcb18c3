// Package health runs vipd's native health checks — exec, HTTP and TCP —
// each on its own schedule and bounded by its timeout, and turns their
// results into an up/down state with rise/fall counting (keepalived's
// vrrp_script rise and fall). The daemon subscribes to the state changes and
// maps them to priority weights or takes the instance out of the election;
// this package knows nothing of VRRP.
//
// A Probe runs one attempt; a Tracker is the pure rise/fall state of one
// check; a Checker runs a Probe on a Clock and publishes the changes.
// FakeClock lets tests drive a Checker without sleeping.
package health
