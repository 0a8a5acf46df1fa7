#!/usr/bin/env bash
# render-mixin.sh renders the etcd mixin's Prometheus alert rules into
# docs/monitoring/etcd-mixin-alerts.yaml, the rules file Cairn ships and
# tests/prometheus loads, so that the file can be redone when etcd's
# mixin changes.
#
#   scripts/render-mixin.sh MIXIN_DIR [REF]
#
# MIXIN_DIR is contrib/mixin of an etcd checkout (the mixin is not in
# any Go module etcd publishes, so it cannot be fetched here); REF names
# the etcd version or commit it is at, for the file's header. Only
# config.libsonnet and alerts/alerts.libsonnet are read: the alerts need
# no grafonnet, so no jsonnet-bundler step is needed. jsonnet itself is
# go-jsonnet's, run with `go run` at a pinned version.
#
# The mixin's defaults are kept (job=~".*etcd.*", instance labels
# "instance", scrape_interval_seconds 30, clusterLabel "job"): the point
# of the file is that etcd's rules work on Cairn unchanged.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $0 MIXIN_DIR [REF]" >&2
	exit 2
fi
mixin="$(cd "$1" && pwd)"
ref="${2:-unknown}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/docs/monitoring/etcd-mixin-alerts.yaml"
jsonnet_version=v0.22.0

for f in config.libsonnet alerts/alerts.libsonnet; do
	[[ -f "$mixin/$f" ]] || { echo "render-mixin: $mixin/$f not found" >&2; exit 1; }
done

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
	cat <<HEADER
# The etcd mixin's Prometheus alert rules, unchanged, with the mixin's
# default config: rendered by scripts/render-mixin.sh from etcd-io/etcd
# contrib/mixin (config.libsonnet and alerts/alerts.libsonnet) at
# $ref.
# Copyright The etcd Authors, Apache License 2.0. Do not edit by hand:
# render again instead. Load it with Prometheus's rule_files; see
# docs/monitoring/README.md. Tested by docs/monitoring/etcd-mixin-test.yaml
# (promtool test rules) and tests/prometheus (a live cluster).
HEADER
	(cd "$mixin" && GOFLAGS=-mod=mod go run "github.com/google/go-jsonnet/cmd/jsonnet@$jsonnet_version" -S -e \
		"std.manifestYamlDoc(((import 'config.libsonnet') + (import 'alerts/alerts.libsonnet')).prometheusAlerts, indent_array_in_object=true, quote_keys=false)")
	echo
} >"$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "render-mixin: wrote $out"
if command -v promtool >/dev/null 2>&1; then
	promtool check rules "$out"
fi
