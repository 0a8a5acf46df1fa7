package ctl

import (
	"fmt"
	"io"
	"strings"
)

// Line diffs for "watch --diff": a value's lines before and after a change,
// as a unified diff (diff -u, three lines of context).
//
// A line keeps its terminating newline, so that "x" and "x\n" differ as
// they do for diff(1), and a last line without one is followed by diff's
// "\ No newline at end of file".

// diffContext is how many unchanged lines surround a change.
const diffContext = 3

// maxDiffEdits bounds the work of the shortest-edit search: past that many
// differing lines (after the common head and tail) the whole middle is
// shown as removed and added, a correct diff if not the shortest. Myers'
// search costs about its square in memory.
const maxDiffEdits = 1000

// splitLines cuts s after each newline; the empty value has no lines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// edit is one line of an edit script: kept (' '), removed ('-') or added
// ('+').
type edit struct {
	op   byte
	line string
}

// diffLines returns an edit script turning a into b: the shortest one
// (Myers' algorithm) when they differ in at most maxDiffEdits lines.
func diffLines(a, b []string) []edit {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	var out []edit
	for _, l := range a[:head] {
		out = append(out, edit{' ', l})
	}
	out = append(out, shortestEdit(a[head:len(a)-tail], b[head:len(b)-tail])...)
	for _, l := range a[len(a)-tail:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// shortestEdit is Myers' O(ND) search. trace[d] keeps the furthest x
// reached on each diagonal k (x-y) in [-d-1, d+1] before round d, which is
// what the walk back from the end needs.
func shortestEdit(a, b []string) []edit {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return replaceAll(a, b)
	}
	limit := min(n+m, maxDiffEdits)
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int
	for d := 0; d <= limit; d++ {
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: b[y] added
			} else {
				x = v[off+k-1] + 1 // right: a[x] removed
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return walkBack(trace, a, b)
			}
		}
	}
	return replaceAll(a, b)
}

// walkBack turns the trace of shortestEdit into the edit script.
func walkBack(trace [][]int, a, b []string) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for d := len(trace) - 1; d >= 0; d-- {
		v := trace[d]
		at := func(k int) int { return v[k+d+1] } // v holds diagonals -d-1..d+1
		k := x - y
		prevK := k - 1
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		}
		prevX := at(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			rev = append(rev, edit{' ', a[x-1]})
			x, y = x-1, y-1
		}
		if d > 0 {
			if x == prevX {
				rev = append(rev, edit{'+', b[y-1]})
			} else {
				rev = append(rev, edit{'-', a[x-1]})
			}
		}
		x, y = prevX, prevY
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

// replaceAll is the script that removes all of a and adds all of b.
func replaceAll(a, b []string) []edit {
	var out []edit
	for _, l := range a {
		out = append(out, edit{'-', l})
	}
	for _, l := range b {
		out = append(out, edit{'+', l})
	}
	return out
}

// writeUnified writes the hunks of script, each with up to diffContext
// unchanged lines around its changes, and hunks whose context would touch
// merged into one. esc renders a line's text (for --hex).
func writeUnified(w io.Writer, script []edit, esc func(string) string) {
	// aLine and bLine are the 1-based numbers of each edit's line in a and
	// b (for an added line, aLine is that of the next line of a; likewise
	// for b).
	aLine, bLine := make([]int, len(script)), make([]int, len(script))
	ai, bi := 1, 1
	for i, e := range script {
		aLine[i], bLine[i] = ai, bi
		if e.op != '+' {
			ai++
		}
		if e.op != '-' {
			bi++
		}
	}

	for i := 0; i < len(script); {
		if script[i].op == ' ' {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		// Extend past changes until a run of unchanged lines long enough
		// to close this hunk and open another.
		end := i
		for j := i; j < len(script); j++ {
			if script[j].op != ' ' {
				end = j + 1
			} else if j-end >= 2*diffContext {
				break
			}
		}
		stop := min(end+diffContext, len(script))

		var aCount, bCount int
		for _, e := range script[start:stop] {
			if e.op != '+' {
				aCount++
			}
			if e.op != '-' {
				bCount++
			}
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(aLine[start], aCount), hunkRange(bLine[start], bCount))
		for _, e := range script[start:stop] {
			text, nl := strings.CutSuffix(e.line, "\n")
			fmt.Fprintf(w, "%c%s\n", e.op, esc(text))
			if !nl {
				fmt.Fprintln(w, `\ No newline at end of file`)
			}
		}
		i = stop
	}
}

// hunkRange is diff's "start,count", with ",1" left out and an empty range
// numbered by the line before it.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}
