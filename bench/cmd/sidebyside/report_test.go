package main

import "testing"

// The benchmark tool prints floats with %v, so a fast run's rate comes in
// exponent form.
func TestParseReportReadsExponents(t *testing.T) {
	out := "Watch creation summary:\n\nSummary:\n  Total:\t9 secs.\n  Requests/sec:\t10\n" +
		"Watch events received summary:\n\nSummary:\n  Total:\t1.3958950940000001 secs.\n  Requests/sec:\t1.4327724258052302e+06\n" +
		"Latency distribution:\n  50% in 7.16e-06 secs.\n  99% in 0.021043135 secs.\n"
	s, err := parseReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.opsPerSec != 1.4327724258052302e+06 || s.p50 != 7.16e-06 || s.p99 != 0.021043135 {
		t.Fatalf("parsed %+v", s)
	}
	if want := 1.4327724258052302e+06 * 1.3958950940000001; s.ops != want {
		t.Fatalf("ops %v, want %v", s.ops, want)
	}
}
