package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vipd/vipd/internal/keepalived"
)

const convertUsage = `Usage: vipd convert-keepalived [--output FILE] [--config-id ID] KEEPALIVED_CONF

Writes the vipd configuration equivalent to a keepalived.conf (and the files
it includes) to standard output, or to FILE. Everything that vipd cannot
express is kept as a comment in the output and reported on standard error.
Exit status: 0 when converted (even with warnings), 1 when the file cannot
be read or parsed, 2 for bad usage.

`

// cmdConvertKeepalived is "vipd convert-keepalived": keepalived.conf in,
// vipd YAML out, warnings on stderr.
func cmdConvertKeepalived(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd convert-keepalived", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), convertUsage)
		fs.PrintDefaults()
	}
	output := fs.String("output", "", "write the configuration to `file` (mode 0600) instead of standard output")
	configID := fs.String("config-id", "", "keepalived's -i: which @`ID` conditional lines apply (default: none, every one is reported)")

	// Flags may come after the file name too.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "vipd convert-keepalived: give exactly one keepalived configuration file, got %d\n\n", len(files))
		fs.Usage()
		return 2
	}

	cfg, err := keepalived.Parse(files[0], keepalived.Options{ConfigID: *configID})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := keepalived.Convert(cfg)
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vipd convert-keepalived: %s: %v\n", files[0], err)
		return 1
	}

	dest := "standard output"
	if *output == "" {
		if _, err := stdout.Write(res.YAML); err != nil {
			fmt.Fprintln(stderr, "vipd convert-keepalived:", err)
			return 1
		}
	} else {
		// The output may hold a VRRPv2 password.
		if err := os.WriteFile(*output, res.YAML, 0o600); err != nil {
			fmt.Fprintln(stderr, "vipd convert-keepalived:", err)
			return 1
		}
		dest = *output
	}
	fmt.Fprintf(stderr, "vipd convert-keepalived: wrote %s and %s to %s, with %s\n",
		count(res.Instances, "instance"), count(res.Checks, "check"), dest, count(len(res.Warnings), "warning"))
	return 0
}

// count renders "1 check", "2 checks".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
