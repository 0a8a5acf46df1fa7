#!/bin/bash
# usage: compare.sh <scenario> [tls]
# Runs testdata/compat/<scenario>.scen with etcdctl ($ETCDCTL, default
# /tmp/bin/etcdctl) and with cairnctl (built from this tree into
# $CAIRNCTL, default /tmp/bin/cairnctl), each against a fresh server, and
# diffs the transcripts with the program names masked. Output in $OUTDIR
# (default /tmp/cmp). Expected differences: the version line, random member
# IDs, durations, and stty noise from etcdctl's password prompt.
set -e
S=$1; MODE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ETCDCTL=${ETCDCTL:-/tmp/bin/etcdctl}
CAIRNCTL=${CAIRNCTL:-/tmp/bin/cairnctl}
OUTDIR=${OUTDIR:-/tmp/cmp}
mkdir -p $OUTDIR
(cd "$HERE/../../.." && go build -o $CAIRNCTL .)
"$HERE/run.sh" $ETCDCTL "$HERE/$S.scen" $OUTDIR/$S.etcdctl $MODE
"$HERE/run.sh" $CAIRNCTL "$HERE/$S.scen" $OUTDIR/$S.cairnctl $MODE
cd $OUTDIR
for f in $S.etcdctl $S.cairnctl; do sed -E 's/etcdctl/CTL/g; s/cairnctl/CTL/g' $f > $f.n; done
diff $S.etcdctl.n $S.cairnctl.n && echo IDENTICAL
