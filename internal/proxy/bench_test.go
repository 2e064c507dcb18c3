package proxy

import (
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkConnection is one short connection through the proxy on
// loopback: connect, send a line, read the reply to EOF, close.
func BenchmarkConnection(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				c.Read(buf)
				io.WriteString(c, "ok\n")
			}()
		}
	}()
	lc := listenConfig()
	pln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := New(Config{}, pln)
	p.Update([]Backend{{ln.Addr().(*net.TCPAddr).AddrPort(), 1}})
	addr := p.Addr().String()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "hello\n")
		if _, err := io.ReadAll(c); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
