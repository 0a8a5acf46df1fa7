#!/usr/bin/env bash
# install-tools.sh installs what Cairn's tests need beyond Go:
#
#   - Prometheus and promtool (Debian's prometheus package), for
#     tests/prometheus, which lets a real Prometheus scrape a cluster and
#     evaluate the etcd mixin's rules. Skipped when promtool is already on
#     PATH.
#   - the upstream etcd binaries that Cairn's compatibility tests run
#     against: bin/etcd and bin/etcdctl, at the version pinned in
#     tools/go.mod, built with Go from the Go module proxy.
#
# A second run is instant: when promtool is on PATH and both etcd binaries
# already report the pinned version, nothing is installed or rebuilt. Set
# FORCE=1 to rebuild etcd anyway, BIN_DIR to install it somewhere other
# than <repo>/bin.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/tools"
bin="${BIN_DIR:-$root/bin}"

# install_prometheus installs Debian's prometheus package (prometheus and
# promtool in /usr/bin) unless promtool is already there. The package
# lists may be missing or stale on a fresh machine, so an install that
# fails is retried once after apt-get update. The package's service is
# never needed: the tests start their own Prometheus on a port of their
# own (and in a container without systemd its postinst starts nothing).
install_prometheus() {
	if command -v promtool >/dev/null 2>&1; then
		echo "install-tools: promtool already at $(command -v promtool)"
		return
	fi
	echo "install-tools: installing Debian's prometheus package"
	local apt=(apt-get install -y --no-install-recommends prometheus)
	if [[ "$(id -u)" != 0 ]]; then
		apt=(sudo "${apt[@]}")
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${apt[@]}"; then
		if [[ "$(id -u)" == 0 ]]; then apt-get update; else sudo apt-get update; fi
		"${apt[@]}"
	fi
	command -v promtool >/dev/null 2>&1 || {
		echo "install-tools: prometheus installed but promtool is not on PATH" >&2
		exit 1
	}
}
install_prometheus

# The pinned version is the one etcdctl is required at in tools/go.mod; the
# server is pinned to the same one.
want="$(awk '$1 == "go.etcd.io/etcd/etcdctl/v3" { sub(/^v/, "", $2); print $2 }' "$tools/go.mod")"
if [[ -z "$want" ]]; then
	echo "install-tools: cannot find go.etcd.io/etcd/etcdctl/v3 in $tools/go.mod" >&2
	exit 1
fi

# have reports whether both binaries exist and say they are version $want.
have() {
	[[ -x "$bin/etcdctl" && -x "$bin/etcd" && -x "$bin/etcdutl" ]] || return 1
	# Capture first: with pipefail, grep -q quitting at the first match
	# could kill the writer with SIGPIPE and fail the pipeline.
	local ctl srv utl
	ctl="$("$bin/etcdctl" version 2>/dev/null)" || return 1
	utl="$("$bin/etcdutl" version 2>/dev/null)" || return 1
	srv="$("$bin/etcd" --version 2>/dev/null)" || return 1
	grep -qx "etcdctl version: $want" <<<"$ctl" || return 1
	grep -qx "etcd Version: $want" <<<"$srv" || return 1
	grep -qx "etcdutl version: $want" <<<"$utl" || return 1
}

if [[ "${FORCE:-0}" != 1 ]] && have; then
	echo "install-tools: etcd, etcdctl and etcdutl $want already in $bin"
	exit 0
fi

mkdir -p "$bin"
tmp="$(mktemp -d "$bin/.install-tools.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "install-tools: building etcd, etcdctl and etcdutl $want into $bin (a few minutes on a cold cache)"
start=$SECONDS
# One go build for both so they share compiled dependencies. Static and
# trimmed like etcd's release builds; GitSHA names the module version since
# there is no etcd checkout to read a commit from.
(
	cd "$tools"
	CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath \
		-ldflags "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$want-module" \
		-o "$tmp/" ./etcd go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
)
mv -f "$tmp/etcd" "$bin/etcd"
mv -f "$tmp/etcdctl" "$bin/etcdctl"
mv -f "$tmp/etcdutl" "$bin/etcdutl"

if ! have; then
	echo "install-tools: built binaries do not report version $want:" >&2
	"$bin/etcdctl" version >&2 || true
	"$bin/etcd" --version >&2 || true
	exit 1
fi
echo "install-tools: done in $((SECONDS - start))s"
