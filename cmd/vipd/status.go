package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/control"
)

// answerTimeout bounds how long vipd status and vipd reload wait for the
// daemon. A reload answers only after the new config has been applied.
const answerTimeout = 10 * time.Second

// socketFlags are the flags of the commands that talk to a running daemon.
type socketFlags struct {
	fs     *flag.FlagSet
	socket string
	config string
}

func newSocketFlags(name string, stderr io.Writer) *socketFlags {
	f := &socketFlags{fs: flag.NewFlagSet("vipd "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.socket, "socket", "", "control socket `path` (default "+config.DefaultControlSocket+")")
	f.fs.StringVar(&f.config, "config", "", "read the control socket path from this configuration `file`")
	return f
}

// parse parses args and returns the control socket's path. If ok is false,
// the problem has been reported and the command exits with code.
func (f *socketFlags) parse(args []string, stderr io.Writer) (path string, code int, ok bool) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0, false
		}
		return "", 2, false
	}
	switch {
	case f.fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", f.fs.Name(), f.fs.Arg(0))
		return "", 2, false
	case f.socket != "" && f.config != "":
		fmt.Fprintf(stderr, "%s: give --socket or --config, not both\n", f.fs.Name())
		return "", 2, false
	case f.socket != "":
		return f.socket, 0, true
	case f.config != "":
		cfg, err := config.Load(f.config)
		if err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprintf(stderr, "%s: cannot take the control socket from %s; fix it or pass --socket\n", f.fs.Name(), f.config)
			return "", 1, false
		}
		return cfg.ControlSocket, 0, true
	}
	return config.DefaultControlSocket, 0, true
}

// cmdStatus is "vipd status": what the running daemon's instances are doing.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	f := newSocketFlags("status", stderr)
	asJSON := f.fs.Bool("json", false, "print the instances (or, with -virtual-servers, the virtual servers) as a JSON array")
	onlyVS := f.fs.Bool("virtual-servers", false, "show the virtual servers and their real servers only")
	onlyBGP := f.fs.Bool("bgp", false, "show the BGP sessions and the announced routes only (with -json, as an object)")
	path, code, ok := f.parse(args, stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	insts, vss, err := control.StatusAll(ctx, path)
	if err != nil {
		fmt.Fprintln(stderr, "vipd:", err)
		return 1
	}
	if *onlyVS {
		return printVirtualServers(stdout, stderr, vss, *asJSON)
	}
	var bgp *control.BGP
	if *onlyBGP || !*asJSON {
		if bgp, err = control.StatusBGP(ctx, path); err != nil {
			fmt.Fprintln(stderr, "vipd:", err)
			return 1
		}
	}
	if *onlyBGP {
		return printBGP(stdout, stderr, bgp, *asJSON)
	}
	if !*asJSON {
		control.WriteTable(stdout, time.Now(), insts)
		if len(vss) > 0 {
			fmt.Fprintln(stdout)
			control.WriteVirtualServers(stdout, vss)
		}
		if bgp != nil {
			fmt.Fprintln(stdout)
			control.WriteBGP(stdout, time.Now(), bgp)
		}
		return 0
	}
	if insts == nil {
		insts = []control.Instance{}
	}
	b, err := json.MarshalIndent(insts, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "vipd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// cmdReload is "vipd reload": the running daemon rereads its config file.
// If the file is invalid, the daemon refuses and keeps its current config.
// The daemon's reasons are printed verbatim.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	f := newSocketFlags("reload", stderr)
	path, code, ok := f.parse(args, stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	err := control.Reload(ctx, path)
	var refused *control.DaemonError
	switch {
	case err == nil:
		fmt.Fprintln(stdout, "reloaded")
		return 0
	case errors.As(err, &refused):
		fmt.Fprintln(stderr, refused.Msg)
		fmt.Fprintln(stderr, "vipd: reload refused; the daemon keeps running its previous configuration")
		return 1
	}
	fmt.Fprintln(stderr, "vipd:", err)
	return 1
}

// printVirtualServers is "vipd status -virtual-servers": a table, or a JSON
// array ([] for a daemon without virtual servers).
func printVirtualServers(stdout, stderr io.Writer, vss []control.VirtualServer, asJSON bool) int {
	if !asJSON {
		control.WriteVirtualServers(stdout, vss)
		return 0
	}
	if vss == nil {
		vss = []control.VirtualServer{}
	}
	b, err := json.MarshalIndent(vss, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "vipd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// printBGP is "vipd status -bgp": tables, or a JSON object (null for a
// daemon without a bgp section).
func printBGP(stdout, stderr io.Writer, b *control.BGP, asJSON bool) int {
	if !asJSON {
		if b == nil {
			fmt.Fprintln(stdout, "no bgp section: BGP is off")
			return 0
		}
		control.WriteBGP(stdout, time.Now(), b)
		return 0
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "vipd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
