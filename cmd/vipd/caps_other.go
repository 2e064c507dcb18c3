//go:build !linux

package main

func missingCapabilities() (string, error) { return "", nil }

func dropAmbientCapabilities() error { return nil }
