//go:build !linux

package main

func missingCapabilities() (string, error) { return "", nil }
