#!/usr/bin/env bash
# test.sh runs every test Cairn has, the way CI runs them: it builds the
# pinned upstream etcd and etcdctl the tests compare against, then runs
# vet and the race-enabled tests of the main module and of the
# side-by-side compatibility module (tests/compat).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-tools.sh

echo "== go vet"
go vet ./...

echo "== go test (main module)"
go test -race -count=1 -timeout 15m ./...

if [[ -f tests/compat/go.mod ]]; then
	echo "== go test (tests/compat: etcdctl against etcd 3.7.3 and Cairn side by side)"
	(cd tests/compat && go test -count=1 -timeout 10m ./...)
fi
