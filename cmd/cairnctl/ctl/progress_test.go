package ctl

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The bars below are etcdctl 3.7.3's (check datascale, off a terminal).
func TestProgressBarLaysOutAsEtcdctls(t *testing.T) {
	b := &progressBar{total: 10000, width: defaultTermWidth}
	elapsed := time.Second * 10000 / 8356
	want := "10000 / 10000 [-------------------------------------------------------------------] 100.00% 8356 p/s"
	if got := b.render(10000, elapsed, true); got != want {
		t.Errorf("final bar\n got %q\nwant %q", got, want)
	}
	// Mid-way etcdctl had no speed yet ("? p/s"), which left the bar 74
	// of the 100 cells.
	want = "[--------->______________________________________________________________]"
	if got := bar(1307, 10000, 74, false); got != want {
		t.Errorf("mid-way bar\n got %q\nwant %q", got, want)
	}
}

func TestProgressOffATerminalPrintsOnlyTheEnd(t *testing.T) {
	var out bytes.Buffer
	b := startProgress(&out, 4)
	b.Add(1)
	b.Add(3)
	b.Finish()
	b.Finish()
	if got := out.String(); !strings.HasPrefix(got, "4 / 4 [") || !strings.Contains(got, "] 100.00% ") || strings.Count(got, "\n") != 1 {
		t.Errorf("got %q, want one final line", got)
	}
}

func TestPaceKeepsToTheRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var n atomic.Int64
	start := time.Now()
	pace(ctx, 100, func() { n.Add(1) })
	elapsed := time.Since(start)
	// A token bucket of one: the first call at once, then one per 10 ms;
	// a busy machine may give fewer, never more.
	if most := int64(elapsed/(10*time.Millisecond)) + 1; n.Load() > most || n.Load() < 10 {
		t.Errorf("%d calls in %v at 100/s", n.Load(), elapsed)
	}
}
