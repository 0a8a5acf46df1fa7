//go:build tools

// Package kube pins the Kubernetes binaries that the control-plane test
// runs against Cairn: kube-apiserver and kubectl, built from
// k8s.io/kubernetes at the version required in go.mod (see install.sh).
package kube

import (
	_ "k8s.io/component-base/cli"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
