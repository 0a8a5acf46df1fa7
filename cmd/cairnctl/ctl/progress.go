package ctl

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressBar draws the bar etcdctl's check commands draw (with
// github.com/cheggaaa/pb/v3 and its default template):
//
//	1234 / 10000 [------->__________________] 12.34% 2468 p/s
//
// It is redrawn in place every 200 ms on a terminal, and ends with a
// newline. Where w is not a terminal, pb appends every redraw to the last
// with no separator, one long line of noise; cairnctl writes only the final
// state there, on a line of its own.
type progressBar struct {
	w        io.Writer
	total    int64
	width    int  // cells the line fills
	terminal bool // redraw in place
	start    time.Time
	cur      atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// progressRefresh is how often a bar on a terminal is redrawn.
const progressRefresh = 200 * time.Millisecond

// startProgress starts a bar that counts to total on w.
func startProgress(w io.Writer, total int) *progressBar {
	b := &progressBar{w: w, total: int64(total), start: time.Now(), done: make(chan struct{})}
	b.width, b.terminal = terminalWidth(w)
	if b.terminal {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			t := time.NewTicker(progressRefresh)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					b.draw(false)
				case <-b.done:
					return
				}
			}
		}()
	}
	return b
}

// Add advances the bar by n.
func (b *progressBar) Add(n int) { b.cur.Add(int64(n)) }

// Finish draws the final state and stops the bar; later calls do nothing.
func (b *progressBar) Finish() {
	b.once.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.draw(true)
	})
}

func (b *progressBar) draw(final bool) {
	line := b.render(b.cur.Load(), time.Since(b.start), final)
	switch {
	case b.terminal && final:
		fmt.Fprintf(b.w, "\r%s\n", line)
	case b.terminal:
		fmt.Fprintf(b.w, "\r%s", line)
	default:
		fmt.Fprintln(b.w, line)
	}
}

// render lays out the counters, the bar, the percentage and the speed,
// the bar taking whatever width the others leave, as pb does.
func (b *progressBar) render(cur int64, elapsed time.Duration, final bool) string {
	counters := fmt.Sprintf("%d / %d", cur, b.total)
	percent := "?%"
	if b.total > 0 {
		percent = fmt.Sprintf("%.02f%%", float64(cur)/(float64(b.total)/100))
	}
	speed := "? p/s"
	if s := float64(cur) / elapsed.Seconds(); cur > 0 && elapsed > 0 {
		speed = fmt.Sprintf("%d p/s", int64(math.Round(s)))
	}
	static := len(counters) + len(percent) + len(speed) + 3 // the spaces between the four
	barWidth := b.width - static
	if barWidth < 2 {
		barWidth = 30
	}
	line := counters + " " + bar(cur, b.total, barWidth, final) + " " + percent + " " + speed
	if b.terminal && len(line) < b.width {
		line += strings.Repeat(" ", b.width-len(line))
	}
	return line
}

// bar is "[---->____]" in width cells: the done part in dashes ending in
// an arrow while unfinished, and underscores for the rest.
func bar(cur, total int64, width int, final bool) string {
	inner := width - 2
	if total != 0 && cur > total {
		total = cur
	}
	n := 0
	if total > 0 {
		n = int(math.Ceil(float64(cur) / float64(total) * float64(inner)))
	}
	var sb strings.Builder
	sb.WriteByte('[')
	switch {
	case final && cur == total:
		sb.WriteString(strings.Repeat("-", n))
	case n > 1:
		sb.WriteString(strings.Repeat("-", n-1) + ">")
	case n == 1:
		sb.WriteByte('>')
	}
	sb.WriteString(strings.Repeat("_", max(inner-n, 0)))
	sb.WriteByte(']')
	return sb.String()
}
