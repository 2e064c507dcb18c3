// Package testenv holds helpers for tests that need root and network
// namespaces: they skip when not root outside CI and fail loudly in CI.
package testenv
