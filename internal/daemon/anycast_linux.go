package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

var _ anycastSysctls = (*linuxSystem)(nil)

// PrepareAnycast raises net.ipv4.conf.all.arp_ignore to 1 (answer ARP
// only for addresses on the interface asked) and arp_announce to 2 (never
// use a lo address as an ARP source), so that the anycast VIPs on lo are
// reached through the router only. Higher values are left alone; the
// kernel uses the maximum of all and the interface's.
func (s *linuxSystem) PrepareAnycast() ([]string, error) {
	var changed []string
	for _, c := range []struct {
		name string
		min  int
	}{{"arp_ignore", 1}, {"arp_announce", 2}} {
		path := "/proc/sys/net/ipv4/conf/all/" + c.name
		b, err := os.ReadFile(path)
		if err != nil {
			return changed, err
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return changed, fmt.Errorf("%s: %w", path, err)
		}
		if v >= c.min {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(c.min)), 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, fmt.Sprintf("net.ipv4.conf.all.%s=%d (was %d)", c.name, c.min, v))
	}
	return changed, nil
}
