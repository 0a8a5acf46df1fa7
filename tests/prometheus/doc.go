// Package prometheus lets a real Prometheus (Debian's prometheus 2.42
// package, which scripts/install-tools.sh installs) scrape a real
// 3-member cluster and evaluate what operators run against etcd: the
// etcd mixin's alert rules, rendered unchanged into
// docs/monitoring/etcd-mixin-alerts.yaml, and the queries of the Cairn
// Grafana dashboard in docs/monitoring/cairn-dashboard.json.
//
// The tests check that promtool accepts the rules and passes the
// mixin's own unit tests (docs/monitoring/etcd-mixin-test.yaml); that
// every alert expression parses and every rule evaluates without error
// on live data; that every dashboard query over etcd's metrics returns
// data for a healthy cluster; and that etcdNoLeader's expression names a
// member cut off from the others, and the alert goes pending.
//
// The same test runs against etcd itself, which is how its expectations
// are checked:
//
//	scripts/install-tools.sh
//	go test ./tests/prometheus/
//	CAIRN_TESTCLUSTER_BINARY=$PWD/bin/etcd go test ./tests/prometheus/
//
// Without prometheus and promtool on PATH the tests skip, unless
// CAIRN_REQUIRE_PROMETHEUS=1 (as scripts/test.sh sets), when they fail.
//
// The package holds only tests; this file exists for its documentation.
package prometheus
