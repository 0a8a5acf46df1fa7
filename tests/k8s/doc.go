// Package k8s runs Kubernetes' storage conformance tests
// (k8s.io/apiserver/pkg/storage/testing) against the etcd3 storage backend
// of k8s.io/apiserver, with the backend's clientv3 pointed at a real Cairn
// server process instead of the embedded etcd Kubernetes uses. See
// README.md for what is wired, what is left out and why, and how to run
// the same tests against etcd.
package k8s
