//go:build !linux

package main

import (
	"context"
	"io"
)

func benchAuth(context.Context, io.Writer, string) error { return errLinux }
