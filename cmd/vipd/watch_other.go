//go:build !linux

package main

import (
	"fmt"
	"io"
)

func cmdWatch(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "vipd watch: needs Linux raw sockets")
	return 1
}
