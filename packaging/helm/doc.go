// Package helm tests vipd's Helm chart, in vipd/: it lints clean, and with
// its default values renders the manifests in configs/k8s.
//
// It is a module of its own so that vipd's go.mod does not pull in helm and
// Kubernetes.
package helm
