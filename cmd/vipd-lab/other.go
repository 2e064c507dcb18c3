//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

var errLinux = errors.New("needs Linux network namespaces")

func demo(context.Context, io.Writer, string, string) error { return errLinux }

func wakeFloor([]string, io.Writer) int { return 1 }

func notLinux(context.Context, *benchEnv) (*table, error) { return nil, errLinux }

var (
	benchFailover    = notLinux
	benchHealth      = notLinux
	benchReliability = notLinux
	benchScale1000   = notLinux
	benchAuth        = notLinux
	benchLB          = notLinux
	benchBGP         = notLinux
)
