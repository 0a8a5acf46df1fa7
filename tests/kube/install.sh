#!/usr/bin/env bash
# install.sh builds the Kubernetes binaries that the control-plane test runs
# against Cairn: kube-apiserver and kubectl, at the k8s.io/kubernetes version
# required in tests/kube/go.mod, from the Go module proxy (no Kubernetes
# checkout needed).
#
# The build takes several minutes on two cores, so the binaries are cached
# between runs in ${CAIRN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn}/kube-<version>/,
# keyed by the module version: when both binaries there already report the
# pinned version, nothing is rebuilt. Set FORCE=1 to rebuild anyway.
#
# It prints the directory holding the binaries as its last line of stdout
# (everything else goes to stderr), so callers can do
#   KUBE_BIN_DIR="$(tests/kube/install.sh)"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The pinned version is the one k8s.io/kubernetes is required at in go.mod.
want="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' "$here/go.mod")"
if [[ -z "$want" ]]; then
	echo "kube/install: cannot find k8s.io/kubernetes in $here/go.mod" >&2
	exit 1
fi

cache="${CAIRN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn}"
bin="$cache/kube-$want"

# have reports whether both binaries exist and say they are version $want.
have() {
	[[ -x "$bin/kube-apiserver" && -x "$bin/kubectl" ]] || return 1
	# Capture first: with pipefail, grep -q quitting at the first match
	# could kill the writer with SIGPIPE and fail the pipeline.
	local api ctl
	api="$("$bin/kube-apiserver" --version 2>/dev/null)" || return 1
	ctl="$("$bin/kubectl" version --client 2>/dev/null)" || return 1
	grep -qx "Kubernetes $want" <<<"$api" || return 1
	grep -qx "Client Version: $want" <<<"$ctl" || return 1
}

if [[ "${FORCE:-0}" != 1 ]] && have; then
	echo "kube/install: kube-apiserver and kubectl $want already in $bin" >&2
	echo "$bin"
	exit 0
fi

mkdir -p "$bin"
tmp="$(mktemp -d "$bin/.install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# vX.Y.Z: the staging modules are published as v0.Y.Z, but the binaries
# report the Kubernetes version, as release builds do (hack/lib/version.sh).
major="${want#v}"
major="${major%%.*}"
minor="${want#v*.}"
minor="${minor%%.*}"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$want -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$want-module"
	ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

echo "kube/install: building kube-apiserver and kubectl $want into $bin (about 5 minutes on two cores when cold)" >&2
start=$SECONDS
# One go build for both so they share compiled dependencies. Static and
# trimmed like Kubernetes release builds.
(
	cd "$here"
	CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" nice -n 10 go build -trimpath \
		-ldflags "-s -w$ldflags" \
		-o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
) >&2
mv -f "$tmp/kube-apiserver" "$bin/kube-apiserver"
mv -f "$tmp/kubectl" "$bin/kubectl"

if ! have; then
	echo "kube/install: built binaries do not report version $want:" >&2
	"$bin/kube-apiserver" --version >&2 || true
	"$bin/kubectl" version --client >&2 || true
	exit 1
fi
echo "kube/install: done in $((SECONDS - start))s" >&2
echo "$bin"
