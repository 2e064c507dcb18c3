package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/transport"
	"github.com/vipd/vipd/internal/watch"
)

const watchUsage = `Usage: vipd watch --interface IF [--family both] [--json] [--refresh 1s] [--count N] [--forget DURATION]

Shows every VRRP router heard on IF (VRID, family, version, sender, priority,
advert interval, addresses, time since its last advert) and flags conflicts:
two Masters for one VRID, mismatched intervals, versions or address lists,
a VRID reused by unrelated groups. It listens on 224.0.0.18 and ff02::12
(--family picks one) and applies the daemon's checks to both: TTL or hop
limit 255, checksum. Read-only: it sends nothing and needs only CAP_NET_RAW.
Adverts sent by this host itself are not heard.

Flags:
`

// watchSocket is one raw VRRP socket feeding the monitor.
type watchSocket interface {
	watch.Conn
	Close() error
}

func cmdWatch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, watchUsage)
		fs.PrintDefaults()
	}
	iface := fs.String("interface", "", "`interface` to listen on (required)")
	family := fs.String("family", "both", "`family` to listen for: ipv4 (224.0.0.18), ipv6 (ff02::12) or both")
	asJSON := fs.Bool("json", false, "print one JSON document per refresh, newline-delimited")
	refresh := fs.Duration("refresh", time.Second, "redraw every `duration`")
	count := fs.Int("count", 0, "exit after `N` refreshes; 0 runs until interrupted")
	forget := fs.Duration("forget", 0, "forget a sender silent for this `duration` (0: 10 of its advert intervals)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fams, ferr := watch.Families(*family)
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case *iface == "":
		bad = "--interface is required"
	case ferr != nil:
		bad = "--" + ferr.Error()
	case *refresh <= 0:
		bad = "--refresh must be positive"
	case *count < 0:
		bad = "--count must not be negative"
	case *forget < 0:
		bad = "--forget must not be negative"
	}
	if bad != "" {
		fmt.Fprintf(stderr, "vipd watch: %s\n\n", bad)
		fs.Usage()
		return 2
	}

	link, err := netif.LinkByName(*iface)
	if err != nil {
		fmt.Fprintln(stderr, "vipd watch:", err)
		return 1
	}
	socks, err := openWatchSockets(link.Index, fams, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vipd watch:", err)
		if errors.Is(err, os.ErrPermission) {
			fmt.Fprintln(stderr, "vipd watch: a raw socket needs root or CAP_NET_RAW")
		}
		return 1
	}
	if !link.Up {
		fmt.Fprintf(stderr, "vipd watch: %s is down: nothing will be heard until it is up\n", link.Name)
	}

	mon := watch.NewMonitor(link.Name, watch.Config{Forget: *forget}, nil)
	fed := make(chan error, len(socks))
	for _, s := range socks {
		go func() { fed <- mon.Feed(s) }()
	}
	defer func() {
		for _, s := range socks {
			s.Close()
		}
		for range socks {
			<-fed
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ticker := time.NewTicker(*refresh)
	defer ticker.Stop()
	if err := mon.Refresh(ctx, ticker.C, *count, watchRenderer(stdout, *asJSON)); err != nil {
		fmt.Fprintln(stderr, "vipd watch:", err)
		return 1
	}
	return 0
}

// openWatchSockets opens a listening socket on the interface with index
// ifindex for each of fams. Of several families, one that cannot be opened
// (IPv6 disabled on the host, say) is reported on stderr and left out; it is
// an error only when none opens. The sockets are transport's, the daemon's
// own, with their receive invariants (group joined on the interface, hop
// limit and destination as control messages, no kernel checksum so that a
// bad one is counted); watch only ever reads from them.
func openWatchSockets(ifindex int, fams []watch.Family, stderr io.Writer) ([]watchSocket, error) {
	var (
		socks []watchSocket
		errs  []error
	)
	for _, f := range fams {
		var (
			s   watchSocket
			err error
		)
		switch f {
		case watch.IPv4:
			var c *transport.IPv4Conn
			if c, err = transport.ListenIPv4(ifindex); err == nil {
				s = c
			}
		case watch.IPv6:
			var c *transport.IPv6Conn
			if c, err = transport.ListenIPv6(ifindex); err == nil {
				s = c
			}
		default:
			err = fmt.Errorf("no socket for family %v", f)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", f, err))
			continue
		}
		socks = append(socks, s)
	}
	if len(socks) == 0 {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintf(stderr, "vipd watch: %v; watching the other family only\n", err)
	}
	return socks, nil
}

// watchRenderer returns the function that prints each report: JSON lines,
// or a text block per refresh that, on a terminal, replaces the previous one.
func watchRenderer(w io.Writer, asJSON bool) func(watch.Report) error {
	if asJSON {
		return func(r watch.Report) error { return watch.WriteJSON(w, r) }
	}
	tty := isTerminal(w)
	first := true
	return func(r watch.Report) error {
		var b bytes.Buffer
		switch {
		case tty:
			b.WriteString("\x1b[H\x1b[2J") // cursor home, clear screen
		case !first:
			b.WriteByte('\n')
		}
		first = false
		if err := watch.WriteText(&b, r); err != nil {
			return err
		}
		_, err := w.Write(b.Bytes())
		return err
	}
}

// isTerminal reports whether w is a terminal: an *os.File with terminal
// attributes (a character device like /dev/null has none).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
