#!/usr/bin/env bash
# genproto.sh regenerates the Go code of Cairn's own copies of etcd's Lock
# and Election wire schema:
#
#   api/v3lockpb/v3lock.proto         -> api/v3lockpb/*.pb.go, api/v3lockpb/gw/
#   api/v3electionpb/v3election.proto -> api/v3electionpb/*.pb.go, api/v3electionpb/gw/
#
# Cairn may not import go.etcd.io/etcd/server/v3, where etcd keeps the
# generated code of these services, so it generates its own from the same
# schema. Running it twice gives the same files.
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler, which also
# puts google/protobuf/*.proto under /usr/include) and the Go module proxy.
# The plugins are built into a temporary GOBIN at these versions:
#   protoc-gen-go            google.golang.org/protobuf, as in go.mod
#   protoc-gen-go-grpc       PROTOC_GEN_GO_GRPC_VERSION (etcd v3.7.3's)
#   protoc-gen-grpc-gateway  github.com/grpc-ecosystem/grpc-gateway/v2, as in go.mod
#
# etcd's rpc.proto and kv.proto, and grpc-gateway's OpenAPI options that
# rpc.proto imports, are read from the module cache at go.mod's versions;
# google/api/{annotations,http}.proto from scripts/genproto/include (stand-ins
# used only here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
# The generated files name the protoc that wrote them; another version
# writes the same code with a different header line.
PROTOC_VERSION="libprotoc 3.21.12"

command -v protoc >/dev/null || {
	echo "genproto: protoc not found (apt-get install -y protobuf-compiler)" >&2
	exit 1
}
if [[ "$(protoc --version)" != "$PROTOC_VERSION" ]]; then
	echo "genproto: warning: $(protoc --version), not $PROTOC_VERSION: the generated headers will differ" >&2
fi
protoc_include=/usr/include
[[ -f $protoc_include/google/protobuf/descriptor.proto ]] || {
	echo "genproto: $protoc_include/google/protobuf/descriptor.proto not found" >&2
	exit 1
}

modver() { go list -m -f '{{.Version}}' "$1"; }
moddir() { go mod download "$1" && go list -m -f '{{.Dir}}' "$1"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export GOBIN="$tmp/bin"
# Outside the module, so that installing the plugins cannot touch go.mod.
(
	cd "$tmp"
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@$(cd "$root" && modver google.golang.org/protobuf)"
	go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
	go install "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(cd "$root" && modver github.com/grpc-ecosystem/grpc-gateway/v2)"
)

etcdapi="$(moddir go.etcd.io/etcd/api/v3)"
gateway="$(moddir github.com/grpc-ecosystem/grpc-gateway/v2)"

out="$tmp/out"
mkdir -p "$out"
# -Icairn=api gives our files the paths cairn/v3lockpb/v3lock.proto and
# cairn/v3electionpb/v3election.proto, distinct from etcd's v3lock.proto and
# v3election.proto. -Ietcd/api=... serves etcd's imports as etcd writes them.
PATH="$GOBIN:$PATH" protoc \
	-Icairn=api \
	-Ietcd/api="$etcdapi" \
	-I"$gateway" \
	-Iscripts/genproto/include \
	-I"$protoc_include" \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	--grpc-gateway_out="$out" --grpc-gateway_opt=paths=source_relative,standalone=true \
	cairn/v3lockpb/v3lock.proto cairn/v3electionpb/v3election.proto

for pkg in v3lockpb v3electionpb; do
	name="${pkg%pb}" # v3lock, v3election
	src="$out/cairn/$pkg"
	cp "$src/$name.pb.go" "$src/${name}_grpc.pb.go" "api/$pkg/"
	mkdir -p "api/$pkg/gw"
	# The standalone gateway is written in the service's package name; it
	# lives in its own package gw (as etcd's does) and imports the service.
	sed -e "s/^package $pkg\$/package gw/" \
		-e "s/^Package $pkg is a reverse proxy\\./Package gw is a reverse proxy for $pkg./" \
		"$src/$name.pb.gw.go" >"api/$pkg/gw/$name.pb.gw.go"
	gofmt -l -w "api/$pkg" "api/$pkg/gw"
done
echo "genproto: wrote api/v3lockpb, api/v3electionpb and their gw packages"
