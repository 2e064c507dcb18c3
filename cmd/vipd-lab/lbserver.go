package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
)

// lbServerCmd is the hidden subcommand the lb scenario runs in each real
// server's namespace: "vipd-lab lb-server ADDR".
const lbServerCmd = "lb-server"

// lbReply is the whole answer to a short request.
const lbReply = "ok\n"

// lbServer listens on addr and answers each connection's first line: "b"
// gets bulk data until the client goes away, anything else lbReply, after
// which the server closes the connection. It runs until it is killed.
func lbServer(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: vipd-lab %s ADDR\n", lbServerCmd)
		return 2
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The parent waits for this line before it measures.
	fmt.Fprintln(os.Stdout, "listening", ln.Addr())
	bulk := make([]byte, 64<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		go lbServe(c, bulk)
	}
}

func lbServe(c net.Conn, bulk []byte) {
	defer c.Close()
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	if err != nil {
		return
	}
	if line != "b\n" {
		_, _ = io.WriteString(c, lbReply)
		return
	}
	for {
		if _, err := c.Write(bulk); err != nil {
			return
		}
	}
}
