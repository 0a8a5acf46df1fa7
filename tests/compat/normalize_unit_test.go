package compat

import (
	"strings"
	"testing"
)

// These samples are what etcdctl 3.7.3 printed against etcd 3.7.3.

const (
	sampleMember  = 17010963214147749224 // ec1314ea52838568
	sampleCluster = 16128400632968936350
	sampleClient  = "http://127.0.0.1:41379"
	samplePeer    = "http://127.0.0.1:41380"
)

func sampleNormalizer() *normalizer {
	return &normalizer{clientURL: sampleClient, peerURL: samplePeer, memberID: sampleMember, clusterID: sampleCluster}
}

func TestNormalizeReplacesOnlyWhatVaries(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			name: "status JSON: IDs, URL, build and storage facts; revision and term kept",
			in:   `[{"Endpoint":"http://127.0.0.1:41379","Status":{"header":{"cluster_id":16128400632968936350,"member_id":17010963214147749224,"revision":1,"raft_term":2},"version":"3.7.3","dbSize":24576,"leader":17010963214147749224,"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":16384,"storageVersion":"3.7.0","dbSizeQuota":2147483648,"downgradeInfo":{}}}]`,
			want: `[{"Endpoint":"<client-url>","Status":{"header":{"cluster_id":<cluster-id>,"member_id":<member-id>,"revision":1,"raft_term":2},"version":<version>,"dbSize":<dbSize>,"leader":<member-id>,"raftIndex":<raftIndex>,"raftTerm":2,"raftAppliedIndex":<raftAppliedIndex>,"dbSizeInUse":<dbSizeInUse>,"storageVersion":<storageVersion>,"dbSizeQuota":2147483648,"downgradeInfo":{}}}]`,
		},
		{
			name: "a key-value's numeric version is kept",
			in:   `{"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}],"count":1}`,
			want: `{"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}],"count":1}`,
		},
		{
			name: "fields: string Version normalised, numeric Version kept",
			in:   "\"Version\" : \"3.7.3\"\n\"DBSize\" : 24576\n\"Version\" : 4\n\"RaftTerm\" : 2",
			want: "\"Version\" : <Version>\n\"DBSize\" : <DBSize>\n\"Version\" : 4\n\"RaftTerm\" : 2",
		},
		{
			name: "table: padding dropped, varying columns normalised, others kept",
			in: "┌────────────────────────┬──────────────────┬─────────┬─────────┬───────────┬────────────┐\n" +
				"│        ENDPOINT        │        ID        │ VERSION │ DB SIZE │ IS LEADER │ RAFT INDEX │\n" +
				"├────────────────────────┼──────────────────┼─────────┼─────────┼───────────┼────────────┤\n" +
				"│ http://127.0.0.1:41379 │ ec1314ea52838568 │   3.7.3 │   25 kB │      true │          4 │\n" +
				"└────────────────────────┴──────────────────┴─────────┴─────────┴───────────┴────────────┘",
			want: "<table-border>\n" +
				"| ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | RAFT INDEX |\n" +
				"<table-border>\n" +
				"| <client-url> | <member-id> | <version> | <db-size> | true | <raft-index> |\n" +
				"<table-border>",
		},
		{
			name: "member list: hex member ID and both URLs",
			in:   "ec1314ea52838568, started, compat, http://127.0.0.1:41380, http://127.0.0.1:41379, false",
			want: "<member-id>, started, compat, <peer-url>, <client-url>, false",
		},
		{
			name: "health timing",
			in:   "http://127.0.0.1:41379 is healthy: successfully committed proposal: took = 5.647706ms\n" + `[{"endpoint":"http://127.0.0.1:41379","health":true,"took":"5.864568ms"}]`,
			want: "<client-url> is healthy: successfully committed proposal: took = <duration>\n" + `[{"endpoint":"<client-url>","health":true,"took":"<duration>"}]`,
		},
		{
			name: "client retry warning: time, connection and local port; the gRPC error kept",
			in:   `{"level":"warn","ts":"2026-11-21T12:45:04.633205Z","logger":"etcd-client","caller":"v3@v3.7.3/retry_interceptor.go:68","msg":"retrying of unary invoker failed","target":"etcd-endpoints://0x368462e1b000/127.0.0.1:41379","peer":"Peer{Addr: '127.0.0.1:41379', LocalAddr: '127.0.0.1:41896', AuthInfo: 'insecure'}","method":"/etcdserverpb.KV/Range","attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision"}`,
			want: `{"level":"warn","ts":"<ts>","logger":"etcd-client","caller":"v3@v3.7.3/retry_interceptor.go:68","msg":"retrying of unary invoker failed","target":"<target>","peer":"<peer>","method":"/etcdserverpb.KV/Range","attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision"}`,
		},
		{
			name: "lease remaining TTL and attached keys order",
			in:   "lease 0568a1fe23757e14 granted with TTL(60s), remaining(59s), attached keys([k2 k1])",
			want: "lease <lease-1> granted with TTL(60s), remaining(<ttl>), attached keys([k1 k2])",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sampleNormalizer().normalize(tc.in); got != tc.want {
				t.Errorf("normalize:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestNormalizeHTTPSClientURL pins the TLS run's addresses: the https
// client URL, and its host:port where etcdctl was sent plaintext to it.
func TestNormalizeHTTPSClientURL(t *testing.T) {
	n := &normalizer{clientURL: "https://127.0.0.1:41579", peerURL: "https://127.0.0.1:41580", memberID: sampleMember, clusterID: sampleCluster}
	in := "https://127.0.0.1:41579 is unhealthy: failed to commit proposal: context deadline exceeded\n" +
		"Failed to get the status of endpoint https://127.0.0.1:41579 (context deadline exceeded)\n" +
		"ec1314ea52838568, started, compat, https://127.0.0.1:41580, https://127.0.0.1:41579, false\n" +
		"dial tcp 127.0.0.1:41579: connect: connection refused"
	want := "<client-url> is unhealthy: failed to commit proposal: context deadline exceeded\n" +
		"Failed to get the status of endpoint <client-url> (context deadline exceeded)\n" +
		"<member-id>, started, compat, <peer-url>, <client-url>, false\n" +
		"dial tcp <client-addr>: connect: connection refused"
	if got := n.normalize(in); got != want {
		t.Errorf("normalize:\n got: %s\nwant: %s", got, want)
	}
}

// TestNormalizeMapsLeasesByFirstAppearance pins that leases are numbered in
// the order a run first shows them, in any of etcdctl's forms.
func TestNormalizeMapsLeasesByFirstAppearance(t *testing.T) {
	n := sampleNormalizer()
	steps := []string{
		"lease 0568a1fe23757e10 granted with TTL(60s)",
		`{"cluster_id":16128400632968936350,"member_id":17010963214147749224,"revision":3,"raft_term":2,"ID":389739480656215570,"TTL":120,"Error":""}`,
		`{"kvs":[{"key":"bGVhc2Vk","create_revision":24,"mod_revision":24,"version":1,"value":"dg==","lease":389739480656215568}]}`,
		"found 2 leases\n0568a1fe23757e12\n0568a1fe23757e10",
	}
	want := []string{
		"lease <lease-1> granted with TTL(60s)",
		`{"cluster_id":<cluster-id>,"member_id":<member-id>,"revision":3,"raft_term":2,"ID":<lease-2>,"TTL":120,"Error":""}`,
		`{"kvs":[{"key":"bGVhc2Vk","create_revision":24,"mod_revision":24,"version":1,"value":"dg==","lease":<lease-1>}]}`,
		"found 2 leases\n<lease-2>\n<lease-1>",
	}
	for i := range steps {
		if got := n.normalize(steps[i]); got != want[i] {
			t.Errorf("step %d:\n got: %s\nwant: %s", i, got, want[i])
		}
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc\n", "a\nx\nc\n")
	want := "  a\n- b\n+ x\n  c\n"
	if got != want {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", got, want)
	}
	if d := lineDiff("same\n", "same\n"); strings.ContainsAny(d[:1], "+-") {
		t.Errorf("equal inputs diff as %q", d)
	}
}
