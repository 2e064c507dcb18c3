package lab

import (
	"encoding/hex"
	"os"
)

// WriteSecret writes an auth_hmac key file for AuthKey.SecretFile: the raw
// secret, or with hexText "hex:" and its hex digits, mode 0600 (vipd
// refuses a key that group or others can read).
func WriteSecret(path string, secret []byte, hexText bool) error {
	b := secret
	if hexText {
		b = []byte("hex:" + hex.EncodeToString(secret))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file that exists.
	return os.Chmod(path, 0o600)
}

// HexSecret is secret as an inline AuthKey.Secret.
func HexSecret(secret []byte) string { return "hex:" + hex.EncodeToString(secret) }
