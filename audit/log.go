package audit

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where the log goes and what it keeps. The zero value
// (empty Path) means no audit log: Open returns a nil *Log.
type Config struct {
	Path       string       // file path, or "-" for stderr; "" turns the log off
	MaxSizeMB  int          // rotate when the file would pass this size in MiB (0: never; files only)
	MaxBackups int          // rotated files kept (path.1 is the newest); 0 keeps none
	Reads      bool         // include reads and watch creations
	Member     string       // member name written on every line
	BufferSize int          // bounded queue length in entries (0: DefaultBufferSize)
	Logger     *slog.Logger // for drops, rotation and write errors (nil: slog.Default())
}

// DefaultBufferSize is the queue length when Config.BufferSize is 0.
const DefaultBufferSize = 4096

const (
	// reportEvery is how often a run of drops or write failures is
	// reported to Config.Logger, at most.
	reportEvery = 10 * time.Second
	// maxBatch is how many bytes the writer gathers before one write.
	maxBatch = 64 << 10
)

// Log is an audit log. Its methods are safe for concurrent use, and on a
// nil *Log they do nothing, so that a disabled log needs no checks at
// the call sites.
//
// Record puts the entry on a bounded queue and returns; one goroutine,
// started by Open and stopped by Close, encodes and writes. A request is
// therefore never slowed by the disk: when the queue is full the line is
// dropped and counted.
type Log struct {
	cfg    Config
	logger *slog.Logger
	sink   sink
	every  time.Duration

	mu     sync.RWMutex // held for reading while sending on ch; Close takes it to close ch
	closed bool
	ch     chan Entry

	dropped atomic.Uint64 // lines dropped because ch was full, since Open

	done       chan struct{} // closed when the writer has exited
	stopReport chan struct{}
	reportDone chan struct{}
	closeErr   error  // the sink's close error, set by the writer before done
	warned     uint64 // drops already reported; owned by the reporter, then by Close
}

// sink is where encoded lines go: a rotating file, or stderr. write gets
// whole lines only.
type sink interface {
	write(p []byte) error
	close() error
}

// Open starts an audit log. With an empty cfg.Path it returns (nil, nil):
// auditing is off and the nil *Log may be used as any other.
func Open(cfg Config) (*Log, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	if cfg.MaxSizeMB < 0 {
		return nil, fmt.Errorf("audit: max size %d MB is negative", cfg.MaxSizeMB)
	}
	if cfg.MaxBackups < 0 {
		return nil, fmt.Errorf("audit: max backups %d is negative", cfg.MaxBackups)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var s sink
	if cfg.Path == "-" {
		s = writerSink{os.Stderr}
	} else {
		f, err := openFileSink(cfg.Path, int64(cfg.MaxSizeMB)<<20, cfg.MaxBackups, logger)
		if err != nil {
			return nil, err
		}
		s = f
	}
	return newLog(cfg, s, reportEvery), nil
}

// newLog starts the writer and the reporter on s. Tests call it with a
// sink they control and a short report interval.
func newLog(cfg Config, s sink, every time.Duration) *Log {
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Log{
		cfg:        cfg,
		logger:     cfg.Logger,
		sink:       s,
		every:      every,
		ch:         make(chan Entry, cfg.BufferSize),
		done:       make(chan struct{}),
		stopReport: make(chan struct{}),
		reportDone: make(chan struct{}),
	}
	go l.write()
	go l.report()
	return l
}

// Record queues e and returns at once. A read (e.Read) is skipped
// silently when Config.Reads is off, unless it was refused (see the
// package doc); when the queue is full the line is dropped and counted
// in Dropped. Record copies e.Key and e.RangeEnd. After Close it does
// nothing.
func (l *Log) Record(e Entry) {
	if l == nil {
		return
	}
	if e.Read && !l.cfg.Reads && !alwaysLogged(&e) {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if n := len(e.Key) + len(e.RangeEnd); n > 0 {
		b := make([]byte, 0, n)
		b = append(b, e.Key...)
		b = append(b, e.RangeEnd...)
		e.Key, e.RangeEnd = b[:len(e.Key):len(e.Key)], b[len(e.Key):]
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.ch <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many lines were dropped because the queue was full
// since Open. Reads skipped because Config.Reads is off are not counted.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close stops taking entries, writes what is queued (and a last
// "dropped" line if lines were lost since the previous one), syncs and
// closes the file. It waits for the writer, so it blocks for as long as
// a stalled disk does. Calling it again returns nil.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.ch)
	l.mu.Unlock()

	<-l.done
	close(l.stopReport)
	<-l.reportDone
	l.reportDrops() // drops since the last tick, so none goes unreported
	return l.closeErr
}

// write is the writer goroutine: it gathers queued entries into batches
// of up to maxBatch bytes and writes each batch once the queue is empty
// or the batch is full. When it finds the queue empty it has caught up,
// and it first writes one "dropped" line for the lines lost meanwhile.
func (l *Log) write() {
	defer close(l.done)
	var (
		buf      []byte
		reported uint64 // drops already written to the log as a "dropped" line
		failed   uint64 // lines lost to write errors, not yet reported
		lastErr  error
		errAt    time.Time // when a write error was last reported
	)
	appendDrops := func() {
		if n := l.dropped.Load(); n > reported {
			buf = appendEvent(buf, time.Now(), l.cfg.Member, eventDropped, n-reported)
			reported = n
		}
	}
	flush := func(lines int) {
		if len(buf) == 0 {
			return
		}
		if err := l.sink.write(buf); err != nil {
			failed += uint64(lines)
			lastErr = err
		}
		buf = buf[:0]
		if failed > 0 && time.Since(errAt) >= l.every {
			l.logger.Error("audit: write failed, lines lost", "lost", failed, "error", lastErr)
			failed, errAt = 0, time.Now()
		}
	}
	for open := true; open; {
		e, ok := <-l.ch
		if !ok {
			break
		}
		buf = appendEntry(buf, e, l.cfg.Member)
		lines := 1
	gather:
		for len(buf) < maxBatch {
			select {
			case e, ok := <-l.ch:
				if !ok {
					open = false
					break gather
				}
				buf = appendEntry(buf, e, l.cfg.Member)
				lines++
			default:
				break gather
			}
		}
		if len(l.ch) == 0 {
			appendDrops()
		}
		flush(lines)
	}
	appendDrops()
	flush(0)
	if failed > 0 {
		l.logger.Error("audit: write failed, lines lost", "lost", failed, "error", lastErr)
	}
	l.closeErr = l.sink.close()
}

// report is the reporter goroutine. It is separate from the writer so
// that drops are reported even while the writer is stuck on a disk.
func (l *Log) report() {
	defer close(l.reportDone)
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.reportDrops()
		case <-l.stopReport:
			return
		}
	}
}

func (l *Log) reportDrops() {
	total := l.dropped.Load()
	if total == l.warned {
		return
	}
	l.logger.Warn("audit: queue full, lines dropped",
		"dropped", total-l.warned, "total", total, "queue", l.cfg.BufferSize)
	l.warned = total
}

// writerSink writes to an io.Writer it does not own (stderr).
type writerSink struct{ w io.Writer }

func (s writerSink) write(p []byte) error {
	_, err := s.w.Write(p)
	return err
}

func (s writerSink) close() error { return nil }
