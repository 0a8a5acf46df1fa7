package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testcluster"
)

// mixinMetrics are the metrics the etcd mixin's dashboard and alerts
// use, with the label names each carries (besides le/quantile). A
// labelled counter appears only once it has counted something, in etcd
// as in Cairn, so the test makes each happen first.
var mixinMetrics = map[string][]string{
	"etcd_server_has_leader":                        nil,
	"etcd_server_is_leader":                         nil,
	"etcd_server_leader_changes_seen_total":         nil,
	"etcd_server_proposals_committed_total":         nil,
	"etcd_server_proposals_applied_total":           nil,
	"etcd_server_proposals_pending":                 nil,
	"etcd_server_proposals_failed_total":            nil,
	"etcd_server_quota_backend_bytes":               nil,
	"etcd_mvcc_db_total_size_in_bytes":              nil,
	"etcd_mvcc_db_total_size_in_use_in_bytes":       nil,
	"etcd_disk_wal_fsync_duration_seconds":          nil,
	"etcd_disk_backend_commit_duration_seconds":     nil,
	"etcd_network_peer_round_trip_time_seconds":     {"To"},
	"etcd_network_peer_sent_failures_total":         {"To"},
	"etcd_network_peer_sent_bytes_total":            {"To"},
	"etcd_network_peer_received_bytes_total":        {"From"},
	"etcd_network_client_grpc_sent_bytes_total":     nil,
	"etcd_network_client_grpc_received_bytes_total": nil,
	"grpc_server_started_total":                     {"grpc_method", "grpc_service", "grpc_type"},
	"grpc_server_handled_total":                     {"grpc_code", "grpc_method", "grpc_service", "grpc_type"},
	"process_resident_memory_bytes":                 nil,
	"etcd_server_version":                           {"server_version"},
	"etcd_mvcc_put_total":                           nil,
	"etcd_debugging_lease_granted_total":            nil,
}

// scrape reads a member's /metrics.
func scrape(t *testing.T, ctx context.Context, m *testcluster.Member) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value sums a family's samples (the counter or gauge value, a
// histogram's count).
func value(fams map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range fams[name].GetMetric() {
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v
}

func labelNames(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			seen[l.GetName()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMetricsMixinSet: every metric the etcd mixin uses is on /metrics
// of every member of a 3-member cluster with etcd's type and label names,
// and moves when it should: puts move proposals and fsyncs, a killed
// member moves its peers' send failures, a leader change moves
// leader_changes_seen. The same test passes against etcd 3.7.3.
func TestMetricsMixinSet(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3})
	ctx := testContext(t)
	cli := c.Client(t)
	leader := c.WaitLeader(t)
	before := scrape(t, ctx, c.Members[leader])
	putN(t, ctx, cli, "m/", 50, 4)
	if _, err := cli.Grant(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// etcd commits its backend every 100 ms, so the figures may move a
	// little after the puts return.
	moved := []string{"etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total",
		"etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds", "etcd_mvcc_put_total",
		"grpc_server_started_total", "etcd_network_client_grpc_received_bytes_total", "etcd_network_peer_sent_bytes_total"}
	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = scrape(t, ctx, c.Members[leader])
		still := slices.ContainsFunc(moved, func(name string) bool { return value(after, name) <= value(before, name) })
		if !still || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range moved {
		if value(after, name) <= value(before, name) {
			t.Errorf("%s did not move with 50 puts: %v -> %v", name, value(before, name), value(after, name))
		}
	}
	if value(after, "etcd_server_has_leader") != 1 || value(after, "etcd_server_is_leader") != 1 {
		t.Errorf("the leader's has_leader %v, is_leader %v", value(after, "etcd_server_has_leader"), value(after, "etcd_server_is_leader"))
	}

	// Kill the leader: the others count send failures to it and a
	// leader change.
	survivor := (leader + 1) % len(c.Members)
	changes := value(scrape(t, ctx, c.Members[survivor]), "etcd_server_leader_changes_seen_total")
	c.Members[leader].Kill()
	c.WaitNewLeader(t, leader)
	putN(t, ctx, clientOf(t, others(c, leader)...), "m2/", 20, 4)
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]*dto.MetricFamily
	for {
		got = scrape(t, ctx, c.Members[survivor])
		if value(got, "etcd_network_peer_sent_failures_total") > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v := value(got, "etcd_network_peer_sent_failures_total"); v == 0 {
		t.Error("etcd_network_peer_sent_failures_total did not move after a peer was killed")
	}
	if v := value(got, "etcd_server_leader_changes_seen_total"); v <= changes {
		t.Errorf("etcd_server_leader_changes_seen_total %v after a leader change (was %v)", v, changes)
	}
	c.Members[leader].Start()
	c.WaitLeader(t)

	// etcd observes a peer's round-trip time 5 s after it starts probing
	// it, so the check is retried for a while before it fails.
	var bad []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		bad = mixinDiff(t, ctx, c, leader, survivor)
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("metrics differ from etcd's:\n%s", strings.Join(bad, "\n"))
	}
}

// mixinDiff lists how the members' metrics differ from mixinMetrics.
// The member just restarted (restarted) has not had a send fail nor
// probed its peers yet; of the others only the one that was watched
// (survivor) surely had a send to the killed member fail: the third may
// have sent it nothing while it was down.
func mixinDiff(t *testing.T, ctx context.Context, c *testcluster.Cluster, restarted, survivor int) []string {
	var bad []string
	for i, m := range c.Members {
		fams := scrape(t, ctx, m)
		for name, want := range mixinMetrics {
			if i == restarted && (name == "etcd_network_peer_sent_failures_total" || name == "etcd_network_peer_round_trip_time_seconds") {
				continue
			}
			if i != survivor && name == "etcd_network_peer_sent_failures_total" {
				continue
			}
			f, ok := fams[name]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s: %s missing", m.Name, name))
				continue
			}
			if got := labelNames(f); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				bad = append(bad, fmt.Sprintf("%s: %s labels %v, want %v", m.Name, name, got, want))
			}
		}
		// etcd's gRPC service names label the RPCs.
		if f := fams["grpc_server_handled_total"]; f != nil && !hasLabelValue(f, "grpc_service", "etcdserverpb.KV") {
			bad = append(bad, fmt.Sprintf("%s: no grpc_service=\"etcdserverpb.KV\"", m.Name))
		}
	}
	return bad
}

func hasLabelValue(f *dto.MetricFamily, name, value string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// etcdMetrics are the rest of etcd's commonly scraped metrics Cairn has
// the concept of, with their types and label names.
var etcdMetrics = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	"etcd_server_id":                                                {dto.MetricType_GAUGE, []string{"server_id"}},
	"etcd_server_go_version":                                        {dto.MetricType_GAUGE, []string{"server_go_version"}},
	"etcd_cluster_version":                                          {dto.MetricType_GAUGE, []string{"cluster_version"}},
	"etcd_server_is_learner":                                        {dto.MetricType_GAUGE, nil},
	"etcd_server_learner_promote_successes":                         {dto.MetricType_COUNTER, nil},
	"etcd_server_heartbeat_send_failures_total":                     {dto.MetricType_COUNTER, nil},
	"etcd_server_slow_apply_total":                                  {dto.MetricType_COUNTER, nil},
	"etcd_server_slow_read_indexes_total":                           {dto.MetricType_COUNTER, nil},
	"etcd_server_read_indexes_failed_total":                         {dto.MetricType_COUNTER, nil},
	"etcd_server_apply_duration_seconds":                            {dto.MetricType_HISTOGRAM, []string{"op", "success", "version"}},
	"etcd_server_snapshot_apply_in_progress_total":                  {dto.MetricType_GAUGE, nil},
	"etcd_server_client_requests_total":                             {dto.MetricType_COUNTER, []string{"client_api_version", "type"}},
	"etcd_network_active_peers":                                     {dto.MetricType_GAUGE, []string{"Local", "Remote"}},
	"etcd_network_disconnected_peers_total":                         {dto.MetricType_COUNTER, []string{"Local", "Remote"}},
	"etcd_network_snapshot_send_success":                            {dto.MetricType_COUNTER, []string{"To"}},
	"etcd_network_snapshot_send_inflights_total":                    {dto.MetricType_GAUGE, []string{"To"}},
	"etcd_network_snapshot_send_total_duration_seconds":             {dto.MetricType_HISTOGRAM, []string{"To"}},
	"etcd_network_snapshot_receive_success":                         {dto.MetricType_COUNTER, []string{"From"}},
	"etcd_network_snapshot_receive_inflights_total":                 {dto.MetricType_GAUGE, []string{"From"}},
	"etcd_network_snapshot_receive_total_duration_seconds":          {dto.MetricType_HISTOGRAM, []string{"From"}},
	"etcd_debugging_mvcc_watcher_total":                             {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_watch_stream_total":                        {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_slow_watcher_total":                        {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_events_total":                              {dto.MetricType_COUNTER, nil},
	"etcd_debugging_mvcc_compact_revision":                          {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_current_revision":                          {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds": {dto.MetricType_HISTOGRAM, nil},
	"etcd_debugging_mvcc_db_compaction_total_duration_milliseconds": {dto.MetricType_HISTOGRAM, nil},
	"etcd_debugging_mvcc_db_compaction_last":                        {dto.MetricType_GAUGE, nil},
	"etcd_debugging_mvcc_db_compaction_keys_total":                  {dto.MetricType_COUNTER, nil},
	"etcd_mvcc_delete_total":                                        {dto.MetricType_COUNTER, nil},
	"etcd_mvcc_range_total":                                         {dto.MetricType_COUNTER, nil},
	"etcd_mvcc_txn_total":                                           {dto.MetricType_COUNTER, nil},
	"etcd_debugging_lease_revoked_total":                            {dto.MetricType_COUNTER, nil},
	"etcd_debugging_lease_renewed_total":                            {dto.MetricType_COUNTER, nil},
	"etcd_snap_db_save_total_duration_seconds":                      {dto.MetricType_HISTOGRAM, nil},
	"etcd_disk_backend_snapshot_duration_seconds":                   {dto.MetricType_HISTOGRAM, nil},
	"etcd_disk_wal_write_bytes_total":                               {dto.MetricType_GAUGE, nil},
	"etcd_debugging_auth_revision":                                  {dto.MetricType_GAUGE, nil},
	"os_fd_used":                                                    {dto.MetricType_GAUGE, nil},
	"os_fd_limit":                                                   {dto.MetricType_GAUGE, nil},
}

// TestMetricsExtensive: with --metrics extensive the per-method
// grpc_server_handling_seconds histograms (the mixin's
// etcdGRPCRequestsSlow alert) count each RPC with go-grpc-prometheus's
// labels; with the default basic set they are not exported. The same
// test passes against etcd 3.7.3.
func TestMetricsExtensive(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct {
		flags []string
		want  bool
	}{{nil, false}, {[]string{"--metrics=extensive"}, true}} {
		c := testcluster.New(t, testcluster.Config{Flags: tc.flags})
		if _, err := c.Client(t).Put(ctx, "x", "1"); err != nil {
			t.Fatal(err)
		}
		fams := scrape(t, ctx, c.Members[0])
		f, ok := fams["grpc_server_handling_seconds"]
		if ok != tc.want {
			t.Fatalf("flags %v: grpc_server_handling_seconds exported: %v, want %v", tc.flags, ok, tc.want)
		}
		if !ok {
			continue
		}
		if f.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("grpc_server_handling_seconds is a %s", f.GetType())
		}
		if got, want := labelNames(f), []string{"grpc_method", "grpc_service", "grpc_type"}; !slices.Equal(got, want) {
			t.Errorf("grpc_server_handling_seconds labels %v, want %v", got, want)
		}
		var puts uint64
		for _, m := range f.GetMetric() {
			var method, service string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "grpc_method":
					method = l.GetValue()
				case "grpc_service":
					service = l.GetValue()
				}
			}
			if method == "Put" && service == "etcdserverpb.KV" {
				puts += m.GetHistogram().GetSampleCount()
			}
		}
		if puts != 1 {
			t.Errorf("grpc_server_handling_seconds counted %d KV.Put calls, want 1", puts)
		}
	}
}

// TestMetricsEtcdSet: the rest of etcd's set, with etcd's types and
// label names, each made to happen first: a follower that missed more
// than the leader keeps gets a snapshot (send and receive metrics), a
// compaction runs, a watch is open, a lease is renewed and revoked,
// a snapshot is saved. The same test passes against etcd 3.7.3.
func TestMetricsEtcdSet(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Size: 3, Flags: []string{"--snapshot-count=100", "--snapshot-catchup-entries=10"}})
	ctx := testContext(t)
	leader := c.WaitLeader(t)
	follower := (leader + 1) % len(c.Members)
	c.Members[follower].Kill()
	cli := clientOf(t, others(c, follower)...)
	putN(t, ctx, cli, "s/", 300, 4)
	c.Members[follower].Start()

	w := cli.Watch(ctx, "s/", clientv3.WithPrefix())
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.KeepAliveOnce(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "s/0"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpGet("s/1")).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "s/x", "y"); err != nil {
		t.Fatal(err)
	}
	<-w // the watcher has had an event
	resp, err := cli.Get(ctx, "s/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	leaderCli := c.Members[leader].Client(t)
	rc, err := leaderCli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()

	// The leader sends, the follower receives; the rest is on the leader.
	want := func(i int, name string) bool {
		switch {
		case strings.HasPrefix(name, "etcd_network_snapshot_send"):
			return i == leader
		case strings.HasPrefix(name, "etcd_network_snapshot_receive"), name == "etcd_snap_db_save_total_duration_seconds":
			return i == follower
		case strings.HasPrefix(name, "etcd_network_disconnected_peers"):
			return i != follower // they saw it go
		case name == "etcd_disk_backend_snapshot_duration_seconds", strings.HasPrefix(name, "etcd_debugging_mvcc_db_compaction"),
			strings.HasPrefix(name, "etcd_debugging_mvcc_watch"), name == "etcd_debugging_mvcc_events_total",
			name == "etcd_debugging_lease_renewed_total":
			return i == leader // only where the client's RPCs went: check one member
		}
		return true
	}
	var bad []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		bad = bad[:0]
		for i, m := range c.Members {
			if i != leader && i != follower {
				continue
			}
			fams := scrape(t, ctx, m)
			for name, e := range etcdMetrics {
				if !want(i, name) {
					continue
				}
				f, ok := fams[name]
				if !ok {
					bad = append(bad, fmt.Sprintf("%s: %s missing", m.Name, name))
					continue
				}
				if f.GetType() != e.typ {
					bad = append(bad, fmt.Sprintf("%s: %s is a %s, want %s", m.Name, name, f.GetType(), e.typ))
				}
				if got := labelNames(f); !slices.Equal(got, e.labels) && !(len(got) == 0 && len(e.labels) == 0) {
					bad = append(bad, fmt.Sprintf("%s: %s labels %v, want %v", m.Name, name, got, e.labels))
				}
			}
			if i == follower && value(fams, "etcd_network_snapshot_receive_success") == 0 {
				bad = append(bad, m.Name+": received no snapshot")
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Fatalf("metrics differ from etcd's:\n%s", strings.Join(bad, "\n"))
	}
}
