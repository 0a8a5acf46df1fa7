#!/usr/bin/env bash
# run.sh runs k8s.io/apiserver's storage test suite against Cairn the way
# CI does (see README.md): vet, then the tests, each against a fresh Cairn
# server built from this checkout. Extra arguments go to go test (-run,
# -v, ...). CAIRN_K8S_SERVER_BINARY=/path/to/etcd runs the same tests
# against that binary instead, e.g. bin/etcd from scripts/install-tools.sh.
#
# No -race: it would instrument only Kubernetes' client-side code and this
# harness (the server is a separate process), and building k8s.io's
# dependencies with -race from a cold cache took 13 minutes on the
# 2-core CI machine (the tests themselves take as long with it as without).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

go vet ./...
go test -count=1 -timeout 15m "$@" ./...
