package lab

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// KeepalivedStats is one instance's counters in the statistics keepalived
// writes on SIGUSR2 (vrrp_print.c's vrrp_print_stats in keepalived 2.2).
type KeepalivedStats struct {
	Instance                       string
	AdvertsReceived, AdvertsSent   int // "Advertisements:" Received and Sent
	BecameMaster, ReleasedMaster   int
	PriorityZeroRx, PriorityZeroTx int // "Priority Zero:" Received and Sent

	// complete says that the instance's last line was read: keepalived
	// writes the file while the reader may already read it.
	complete bool
}

// ParseKeepalivedStats parses a keepalived statistics file and returns its
// instances, and how many of them were read to their last line.
func ParseKeepalivedStats(r io.Reader) ([]KeepalivedStats, int, error) {
	var out []KeepalivedStats
	section := ""
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if name, ok := strings.CutPrefix(text, "VRRP Instance: "); ok {
			out = append(out, KeepalivedStats{Instance: strings.TrimSpace(name)})
			section = ""
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(text), ":")
		if !ok || len(out) == 0 {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" {
			section = key
			continue
		}
		v, err := strconv.Atoi(value)
		if err != nil {
			return out, count(out), fmt.Errorf("keepalived stats line %d: %q: %w", line, text, err)
		}
		s := &out[len(out)-1]
		if !strings.HasPrefix(text, "    ") {
			section = "" // a counter of the instance's own, as "Became master"
		}
		switch section + "/" + key {
		case "Advertisements/Received":
			s.AdvertsReceived = v
		case "Advertisements/Sent":
			s.AdvertsSent = v
		case "/Became master":
			s.BecameMaster = v
		case "/Released master":
			s.ReleasedMaster = v
		case "Priority Zero/Received":
			s.PriorityZeroRx = v
		case "Priority Zero/Sent":
			s.PriorityZeroTx = v
			s.complete = true
		}
	}
	return out, count(out), sc.Err()
}

func count(ss []KeepalivedStats) int {
	n := 0
	for _, s := range ss {
		if s.complete {
			n++
		}
	}
	return n
}
