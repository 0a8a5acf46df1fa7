#!/usr/bin/env bash
# dev-cluster.sh starts a three-member Cairn cluster on loopback for
# development, prints its endpoints, and stops it on Ctrl-C.
#
#   scripts/dev-cluster.sh [data-root]     (default: ./dev-cluster)
#
# Members infra1..3 serve clients on 127.0.0.1:2379, 22379, 32379 and
# peers on 2380, 22380, 32380 (the layout of etcd's Procfile). Data
# survives a restart of the script; delete the data root to start over.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-$PWD/dev-cluster}"
mkdir -p "$data"
bin="$data/cairn"
(cd "$root" && go build -o "$bin" ./cmd/cairn)

cluster="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
pids=()
stop() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait
}
trap stop EXIT INT TERM
for i in 1 2 3; do
	case $i in 1) c=2379 p=2380 ;; 2) c=22379 p=22380 ;; 3) c=32379 p=32380 ;; esac
	"$bin" --name "infra$i" --data-dir "$data/infra$i" \
		--listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
		--listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
		--initial-cluster "$cluster" --initial-cluster-token dev-cluster \
		--log-level warn 2>"$data/infra$i.log" &
	pids+=($!)
done
echo "Cairn dev cluster: logs in $data/infra{1,2,3}.log"
echo "ETCDCTL_ENDPOINTS=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
echo "Ctrl-C stops it."
wait
