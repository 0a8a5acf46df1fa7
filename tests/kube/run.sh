#!/usr/bin/env bash
# run.sh runs the Kubernetes control-plane test: kube-apiserver and kubectl
# (built once by install.sh and cached) against Cairn built from this
# repository, a single member and a three-member cluster whose leader is
# killed midway.
#
# Set CAIRN_KUBE_SERVER_BINARY=bin/etcd (after scripts/install-tools.sh) to
# run the same test against upstream etcd, to tell a Cairn bug from a test
# bug. Extra arguments go to go test (for example -run LeaderKill -v).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_BIN_DIR="$("$here/install.sh" | tail -n 1)"
export KUBE_BIN_DIR

# The test runs in tests/kube; a relative binary is the caller's.
if [[ -n "${CAIRN_KUBE_SERVER_BINARY:-}" ]]; then
	CAIRN_KUBE_SERVER_BINARY="$(realpath "$CAIRN_KUBE_SERVER_BINARY")"
	export CAIRN_KUBE_SERVER_BINARY
fi

cd "$here"
go test -count=1 -timeout 20m "$@" ./...
