//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"time"
)

var errLinux = errors.New("needs Linux network namespaces")

func demo(context.Context, io.Writer, string, string) error { return errLinux }

func bench(context.Context, io.Writer, string, int, []time.Duration) error { return errLinux }

func benchHealth(context.Context, io.Writer, string, int) error { return errLinux }

func benchReliability(context.Context, io.Writer, string) error { return errLinux }

type scaleScenario struct{ part string }

var scaleScenarios = []scaleScenario{{part: "scale1000"}}

func benchScale(context.Context, io.Writer, string, scaleScenario) error { return errLinux }
