package lab

import (
	"os"
	"path/filepath"
)

// StartVipdAt is StartVipd with vipd's --log-level set to level (debug,
// info, warn or error) instead of debug: a benchmark that floods a daemon
// with packets it drops measures what a deployment pays, not a debug line
// per packet.
func (n *Node) StartVipdAt(binary, configYAML, level string) error {
	file := filepath.Join(n.lab.Dir, n.Name+".yaml")
	if err := os.WriteFile(file, []byte(configYAML), 0o600); err != nil {
		return err
	}
	return n.start("vipd", binary, "run", "--config", file, "--log-format", "json", "--log-level", level)
}
