package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// newLogger builds the member's logger as etcd's --log-level,
// --log-outputs and --log-format ask: outputs "default" or "stderr",
// "stdout", or file paths (appended to); format "json" (etcd's default)
// or "console" (one human-readable line per event).
func newLogger(level string, outputs []string, format string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error", "panic", "fatal":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	var ws []io.Writer
	for _, o := range outputs {
		switch o {
		case "", "default", "stderr":
			ws = append(ws, os.Stderr)
		case "stdout":
			ws = append(ws, os.Stdout)
		case "systemd/journal":
			return nil, fmt.Errorf("--log-outputs=systemd/journal is not supported by Cairn; use stderr and let systemd collect it")
		default:
			f, err := os.OpenFile(o, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return nil, fmt.Errorf("--log-outputs: %w", err)
			}
			ws = append(ws, f)
		}
	}
	if len(ws) == 0 {
		ws = append(ws, os.Stderr)
	}
	w := ws[0]
	if len(ws) > 1 {
		w = io.MultiWriter(ws...)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "console" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
