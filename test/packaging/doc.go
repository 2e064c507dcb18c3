// Package packaging tests what ships vipd: the systemd unit
// (systemd-analyze verify), make install and make uninstall, the Debian
// package built by make deb, the Kubernetes manifests in configs/k8s, and
// the guides in docs/guides. Tests that need a tool skip without it unless
// CI is set; the one that installs the package needs root.
package packaging
