#!/usr/bin/env bash
# test.sh runs every test Cairn has, the way CI runs them: it installs
# Prometheus (Debian's package) and builds the pinned upstream etcd and
# etcdctl the tests compare against, then runs vet and the race-enabled
# tests of the main module and of the side-by-side compatibility module
# (tests/compat), the power-loss module (tests/faults, on FUSE), then
# the Kubernetes modules: k8s.io/apiserver's storage
# tests (tests/k8s) and a real kube-apiserver and kubectl (tests/kube,
# binaries cached between runs), and the web console in Debian's Chromium
# (tests/console).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-tools.sh
# tests/prometheus skips without prometheus and promtool; here, where
# install-tools.sh has just installed them, their absence is a failure.
export CAIRN_REQUIRE_PROMETHEUS=1

echo "== go vet"
go vet ./...

echo "== imports: no go.etcd.io/etcd/server/v3 or pkg/v3 in the main module"
# Cairn's product may not import etcd's server or pkg modules (bench/,
# tools/ and the test modules are their own modules and may). It also
# keeps api/v3lockpb and api/v3electionpb out of any binary that links
# etcd's packages of the same proto names: protobuf-go panics at init on
# such a conflict.
if forbidden="$(go list -deps -test ./... | grep -E '^go\.etcd\.io/etcd/(server|pkg)/v3(/|$)')"; then
	echo "forbidden imports in the main module:" >&2
	echo "$forbidden" >&2
	exit 1
fi

echo "== go test (main module)"
go test -race -count=1 -timeout 15m ./...

echo "== reference: the leader-loss, half-close, TLS, listener, lock, election, auth, metrics, health, logging and Prometheus tests against etcd 3.7.3 (same expectations)"
CAIRN_TESTCLUSTER_BINARY="$root/bin/etcd" go test -count=1 -timeout 5m \
	-run 'HalfClose|TheBodyEnds|GatewayLeaseKeepAlive|RequireLeader|LeaderOnlyRequestsThroughLeaderKills|^TestTLS(Kubeadm|Refused|Missing|HTTPS)|ListenClientHTTP|GatewayDisabled|UnixSocket|AutoTLS|MetricsURLOverHTTPS|PeerPortChecks|Lock|Elect|TestAuth|TestMetrics|TestHealth|TestLogOutputs|TestUnsafeNoFsync|TestCompactionShrinksSizeInUse|TestStrictReconfig|TestDowngrade|TestDiscovery|TestMaxLearners|TestPrometheus' \
	./tests/e2e/ ./tests/cluster/ ./tests/prometheus/

if [[ -f tests/compat/go.mod ]]; then
	echo "== go test (tests/compat: etcdctl against etcd 3.7.3 and Cairn side by side)"
	(cd tests/compat && go test -count=1 -timeout 10m ./...)
fi

if [[ -f tests/faults/go.mod ]]; then
	echo "== go test (tests/faults: power cuts, fsync EIO, ENOSPC, slow fsyncs and bit flips, on a FUSE file system that drops unsynced writes)"
	# The tests skip where FUSE cannot be mounted; CI has /dev/fuse and
	# runs as root, so there a skip is a failure.
	(cd tests/faults && go vet ./... && CAIRN_REQUIRE_FUSE=1 go test -count=1 -timeout 5m ./...)
fi

if [[ -x tests/k8s/run.sh ]]; then
	echo "== tests/k8s (k8s.io/apiserver's storage test suite against Cairn)"
	tests/k8s/run.sh
fi

if [[ -x tests/kube/run.sh ]]; then
	echo "== tests/kube (kube-apiserver v1.37.1 and kubectl against Cairn, single member and 3-member with leader kill)"
	tests/kube/run.sh
fi

if [[ -x tests/console/run.sh ]]; then
	echo "== tests/console (the web console in Debian's Chromium, driven by chromedp, against a 3-member cluster)"
	tests/console/run.sh
fi
