package ctl

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestParseCompareBuildsTheCompare(t *testing.T) {
	for _, tc := range []struct {
		line string
		want *pb.Compare
	}{
		{`mod("key1") > "0"`, &pb.Compare{Key: []byte("key1"), Target: pb.Compare_MOD, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_ModRevision{ModRevision: 0}}},
		{`m("k") < "12"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: 12}}},
		{`create("k") = "3"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}},
		{`c("k") != "3"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_CREATE, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}},
		{`version("k") = "1"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 1}}},
		{`ver("k") > "1"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 1}}},
		{`value("k") = "v"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("v")}}},
		{`val("a b") = "x \"y\"\n"`, &pb.Compare{Key: []byte("a b"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x \"y\"\n")}}},
		{`lease("k") = "7587852521871779343"`, &pb.Compare{Key: []byte("k"), Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Lease{Lease: 7587852521871779343}}},
	} {
		cmp, err := parseCompare(tc.line)
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if got := cmp.GetCompare(); !proto.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.line, got, tc.want)
		}
	}
}

// The messages are etcdctl's, taken from its output for the same lines.
func TestParseCompareErrorsAsEtcdctl(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`bogus`, `malformed comparison: bogus`},
		{`foo("k") = "1"`, `malformed comparison: foo("k") = "1" (unknown target foo)`},
		{`mod("k") = "x"`, `invalid txn compare request: mod("k") = "x"`},
		{`mod(k) = "1"`, `malformed comparison: mod(k) = "1"; got mod("")  ""`},
		{`mod("k") =`, `malformed comparison: mod("k") =; got mod("k") = ""`},
		{`mod("k") >= "1"`, `malformed comparison: mod("k") >= "1" (unknown operator >=)`},
		{`lease("k") = "abc"`, `invalid txn compare request: lease("k") = "abc"`},
	} {
		_, err := parseCompare(tc.line)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %q", tc.line, err, tc.want)
		}
	}
}

func newTestTxnParser(stderr *bytes.Buffer, slept *[]time.Duration) *txnParser {
	return &txnParser{
		stdin:  strings.NewReader(""),
		stderr: stderr,
		sleep:  func(d time.Duration) { *slept = append(*slept, d) },
	}
}

func TestTxnParserReadsThreeSections(t *testing.T) {
	in := bufio.NewReader(strings.NewReader(
		"mod(\"key1\") > \"0\"\n  value(\"k\") = \"v\"  \n\n" +
			"put key1 \"overwrote key1\" --prev-kv\nget --prefix key\n\n" +
			"del key1 key3 --range\n\n"))
	var stderr bytes.Buffer
	var slept []time.Duration
	p := newTestTxnParser(&stderr, &slept)

	cmps, err := p.readCompares(in)
	if err != nil || len(cmps) != 2 {
		t.Fatalf("compares: %v, %v", cmps, err)
	}
	then, err := p.readOps(in)
	if err != nil || len(then) != 2 {
		t.Fatalf("success ops: %v, %v", then, err)
	}
	if op := then[0]; !op.IsPut() || string(op.KeyBytes()) != "key1" || string(op.ValueBytes()) != "overwrote key1" || !op.IsPrevKV() {
		t.Errorf("put op = %+v", op)
	}
	if op := then[1]; !op.IsGet() || string(op.KeyBytes()) != "key" || string(op.RangeBytes()) != "kez" {
		t.Errorf("get op: key %q end %q", op.KeyBytes(), op.RangeBytes())
	}
	els, err := p.readOps(in)
	if err != nil || len(els) != 1 {
		t.Fatalf("failure ops: %v, %v", els, err)
	}
	if op := els[0]; !op.IsDelete() || string(op.RangeBytes()) != "key3" {
		t.Errorf("del op = %+v", op)
	}
	if len(slept) != 0 || stderr.Len() != 0 {
		t.Errorf("del --range must not warn or wait: slept %v, stderr %q", slept, stderr.String())
	}
}

func TestTxnParserEOFBeforeBlankLineIsInputError(t *testing.T) {
	var stderr bytes.Buffer
	var slept []time.Duration
	p := newTestTxnParser(&stderr, &slept)
	in := bufio.NewReader(strings.NewReader("\nput a b\n"))
	if _, err := p.readCompares(in); err != nil {
		t.Fatal(err)
	}
	_, err := p.readOps(in)
	if err == nil || err.Error() != "EOF" || exitCode(err) != exitInvalidInput {
		t.Fatalf("got %v (code %d), want EOF with code %d", err, exitCode(err), exitInvalidInput)
	}
}

func TestParseRequestErrorsAsEtcdctl(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
		code int
	}{
		{"put", "invalid txn compare request: put", exitInvalidInput},
		{"get", "invalid txn compare request: get", exitInvalidInput},
		{"putx a b", "invalid txn request: putx a b", exitInvalidInput},
		{"put a b --bogus", "invalid txn request: put a b --bogus", exitInvalidInput},
		{"put a --help", "invalid txn request: put a --help", exitInvalidInput},
		{"put a b --lease=zz", `bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`, exitBadArgs},
		{"get a --consistency=x", `unknown consistency flag "x"`, exitBadFeature},
		{"get a --sort-by=x", "bad sort target x", exitBadFeature},
		{"del a b c", "del command needs one argument as key and an optional argument as range_end", exitBadArgs},
		{`put "bad\q" v`, "invalid syntax", exitInvalidInput},
	} {
		var stderr bytes.Buffer
		var slept []time.Duration
		_, err := newTestTxnParser(&stderr, &slept).parseRequest(tc.line)
		if err == nil || err.Error() != tc.want || exitCode(err) != tc.code {
			t.Errorf("%s: got %v (code %d), want %q (code %d)", tc.line, err, exitCode(err), tc.want, tc.code)
		}
	}
}

func TestParseRequestAcceptsCommandPrefixes(t *testing.T) {
	var stderr bytes.Buffer
	var slept []time.Duration
	op, err := newTestTxnParser(&stderr, &slept).parseRequest("pu a b")
	if err != nil || !op.IsPut() {
		t.Fatalf("pu a b: %+v, %v", op, err)
	}
}

func TestParseRequestDelRangeWarnsAndWaits(t *testing.T) {
	var stderr bytes.Buffer
	var slept []time.Duration
	if _, err := newTestTxnParser(&stderr, &slept).parseRequest("del a b"); err != nil {
		t.Fatal(err)
	}
	want := "Warning: Keys between \"a\" and \"b\" will be deleted. Please interrupt the command within next 2 seconds to cancel. You can provide `--range` flag to avoid the delay.\n"
	if stderr.String() != want || len(slept) != 1 || slept[0] != 2*time.Second {
		t.Fatalf("stderr %q, slept %v", stderr.String(), slept)
	}
}
