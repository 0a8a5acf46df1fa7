// Package logging builds a member's logger the way etcd's logging flags
// ask: --log-level, --log-outputs (stderr, stdout or files), --log-format
// (json or console) and --enable-log-rotation with
// --log-rotation-config-json (a single file output rotated by size, as
// etcd rotates it with lumberjack).
//
// It owns only the construction of the logger and its files; it never
// decides what is logged.
package logging

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// DefaultRotationConfig is etcd's default --log-rotation-config-json.
const DefaultRotationConfig = `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`

// ErrRotationInvalidOutput is etcd's error for rotation without exactly
// one file output.
var ErrRotationInvalidOutput = errors.New("--log-outputs requires a single file path when --log-rotate-config-json is defined")

// Options are the logging flags.
type Options struct {
	// Level is debug, info (default), warn, error, panic or fatal (the
	// last two log as error).
	Level string
	// Outputs are "default" or "stderr", "stdout", or file paths
	// (appended to, created with mode 0600).
	Outputs []string
	// Format is "json" (default) or "console".
	Format string
	// Rotate rotates the one file output by RotationConfig, etcd's JSON
	// (maxsize in MB, maxage in days, maxbackups, localtime, compress).
	Rotate         bool
	RotationConfig string
	// Stderr and Stdout default to the process's.
	Stderr, Stdout io.Writer
}

// Logger is a built logger and the files it writes.
type Logger struct {
	*slog.Logger
	closers []io.Closer
}

// Close closes the logger's files.
func (l *Logger) Close() error {
	var errs []error
	for _, c := range l.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Check validates the rotation options without opening anything, so a
// bad flag is refused before the member starts.
func (o Options) Check() error {
	if !o.Rotate {
		return nil
	}
	_, err := o.rotation()
	return err
}

// rotation parses the rotation config, with etcd's rules and errors.
func (o Options) rotation() (*lumberjack.Logger, error) {
	files := 0
	for _, out := range o.Outputs {
		if !isStream(out) {
			files++
		}
	}
	if (len(o.Outputs) == 1 && files == 0) || files > 1 {
		return nil, ErrRotationInvalidOutput
	}
	cfg := o.RotationConfig
	if cfg == "" {
		cfg = DefaultRotationConfig
	}
	var lj lumberjack.Logger
	if err := json.Unmarshal([]byte(cfg), &lj); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return nil, fmt.Errorf("improperly formatted log rotation config: %w", err)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("invalid log rotation config: %w", err)
		default:
			return nil, fmt.Errorf("fail to unmarshal log rotation config: %w", err)
		}
	}
	return &lj, nil
}

func isStream(out string) bool {
	switch out {
	case "", "default", "stderr", "stdout":
		return true
	}
	return false
}

// New builds the logger.
func New(o Options) (*Logger, error) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	var rot *lumberjack.Logger
	if o.Rotate {
		var err error
		if rot, err = o.rotation(); err != nil {
			return nil, err
		}
	}
	l := &Logger{}
	var ws []io.Writer
	for _, out := range o.Outputs {
		switch out {
		case "", "default", "stderr":
			ws = append(ws, o.Stderr)
		case "stdout":
			ws = append(ws, o.Stdout)
		case "systemd/journal":
			l.Close()
			return nil, errors.New("--log-outputs=systemd/journal is not supported by Cairn; use stderr and let systemd collect it")
		default:
			if rot != nil {
				rot.Filename = out
				ws = append(ws, rot)
				l.closers = append(l.closers, rot)
				continue
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("--log-outputs: %w", err)
			}
			ws = append(ws, f)
			l.closers = append(l.closers, f)
		}
	}
	if len(ws) == 0 {
		ws = append(ws, o.Stderr)
	}
	w := ws[0]
	if len(ws) > 1 {
		w = io.MultiWriter(ws...)
	}
	opts := &slog.HandlerOptions{Level: level(o.Level)}
	if o.Format == "console" {
		l.Logger = slog.New(slog.NewTextHandler(w, opts))
	} else {
		l.Logger = slog.New(slog.NewJSONHandler(w, opts))
	}
	return l, nil
}

func level(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error", "panic", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}
