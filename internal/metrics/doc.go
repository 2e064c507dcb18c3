// Package metrics defines vipd's Prometheus metrics: a struct of collectors
// registered into a registry that the caller passes in, and the HTTP
// listener that serves them with /healthz.
package metrics
