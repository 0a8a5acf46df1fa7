#!/bin/bash
# usage: run.sh <ctl-binary> <scenario-file> <out-file> [tls]
# Starts a fresh single-member server ($ETCD, default /tmp/bin/etcd; any
# etcd-flag-compatible server works), runs each scenario line with $CTL
# bound to the binary and ETCDCTL_ENDPOINTS set, records stdout, stderr
# (with timestamps, addresses and ports masked) and the exit code, then
# stops the server. "tls" serves https with the certificates in $TLS_DIR
# (ca.crt, server.crt/key, client.crt/key; default /tmp/cmp/tls). A line
# "#server-flags: <flags>" in the scenario adds flags to the server's.
CTL_BIN=$1; SCEN=$2; OUT=$3; MODE=$4
SERVER_FLAGS=$(sed -n 's/^#server-flags: //p' "$SCEN")
ETCD=${ETCD:-/tmp/bin/etcd}
export TLS_DIR=${TLS_DIR:-/tmp/cmp/tls}
D=$(mktemp -d)
SCHEME=http; EXTRA=(); CURL=(curl -s)
if [ "$MODE" = tls ]; then
  SCHEME=https
  EXTRA=(--cert-file $TLS_DIR/server.crt --key-file $TLS_DIR/server.key --trusted-ca-file $TLS_DIR/ca.crt --client-cert-auth)
  CURL=(curl -s --cacert $TLS_DIR/ca.crt --cert $TLS_DIR/client.crt --key $TLS_DIR/client.key)
fi
$ETCD --name n1 --data-dir $D/data \
  --listen-client-urls $SCHEME://127.0.0.1:23790 --advertise-client-urls $SCHEME://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster n1=http://127.0.0.1:23800 --initial-cluster-token cmp-token $SERVER_FLAGS "${EXTRA[@]}" > $D/server.log 2>&1 &
EPID=$!
for i in $(seq 1 50); do "${CURL[@]}" $SCHEME://127.0.0.1:23790/health >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
export CTL=$CTL_BIN
export REFCTL=${ETCDCTL:-/tmp/bin/etcdctl}
export ETCDCTL_ENDPOINTS=127.0.0.1:23790
: > $OUT
while IFS= read -r line; do
  [ -z "$line" ] && continue
  case "$line" in \#*) continue;; esac
  echo "### $line" >> $OUT
  bash -c "$line" > $D/o 2> $D/e < /dev/null
  rc=$?
  cat $D/o >> $OUT
  echo "--- stderr" >> $OUT
  sed -E 's/"ts":"[^"]*"/"ts":"T"/; s/"caller":"[^"]*"/"caller":"C"/; s/0x[0-9a-f]{6,}/0xADDR/g; s/"stacktrace":".*"/"stacktrace":"S"/; s/LocalAddr: '"'"'127.0.0.1:[0-9]*'"'"'/LocalAddr: L/; s/^[0-9]{4}\/[0-9]{2}\/[0-9]{2} [0-9:]{8}/DATE/' $D/e >> $OUT
  echo "--- rc=$rc" >> $OUT
done < $SCEN
kill $EPID; wait $EPID 2>/dev/null
rm -rf $D
