package compat

import "testing"

// TestLostAlertRace pins which refusals are re-run, on what etcdctl 3.7.3
// printed against etcd 3.7.3: the client's own broken write or reset is;
// the server's alert, its orderly close and etcdctl's own verdict on the
// server's certificate are not.
func TestLostAlertRace(t *testing.T) {
	const prefix = `{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: code = DeadlineExceeded desc = latest balancer error: `
	for _, tc := range []struct {
		err  string
		lost bool
	}{
		{`write tcp 127.0.0.1:35794->127.0.0.1:47379: write: broken pipe"}`, true},
		{`write tcp 127.0.0.1:44152->127.0.0.1:47379: write: connection reset by peer"}`, true},
		{`connection error: desc = \"error reading server preface: connection reset by peer\""}`, true},
		{`connection error: desc = \"error reading server preface: remote error: tls: certificate required\""}`, false},
		{`connection error: desc = \"error reading server preface: remote error: tls: expired certificate\""}`, false},
		{`connection error: desc = \"error reading server preface: EOF\""}`, false},
		{`connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\""}`, false},
	} {
		if got := lostAlertRace(prefix + tc.err + "\nError: context deadline exceeded\n"); got != tc.lost {
			t.Errorf("lostAlertRace(... %s) = %v, want %v", tc.err, got, tc.lost)
		}
	}
	if lostAlertRace("Error: write: broken pipe\n") {
		t.Error("a broken pipe outside the client's retry warning counts as a lost race")
	}
}
