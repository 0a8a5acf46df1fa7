package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/server"
)

// failedStopTimeout bounds the stop after a fatal member error; the
// process then exits whether or not the member's goroutines have ended.
const failedStopTimeout = 15 * time.Second

// serve starts the member and waits: SIGINT or SIGTERM stops it gracefully
// (exit 0; a second signal exits 1 at once), a fatal member error exits 1.
func serve(cfg *server.Config, lg *slog.Logger) int {
	// Listen for signals before starting, so one that arrives while the
	// member starts still stops it gracefully once it is up.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)

	s, err := server.Start(cfg)
	if err != nil {
		lg.Error("failed to start member", "name", cfg.Name, "data-dir", cfg.DataDir, "error", err)
		return 1
	}
	lg.Info("member started", "name", cfg.Name, "data-dir", cfg.DataDir)

	select {
	case <-s.Done():
		if err := s.Err(); err != nil {
			lg.Error("member stopped", "error", err)
			return 1
		}
		lg.Info("member stopped")
		return 0
	case <-s.Failed():
		// Give the stop a bound: what failed (a full disk under the
		// engine) may be what it waits on.
		select {
		case <-s.Done():
		case <-time.After(failedStopTimeout):
			lg.Error("member did not stop after a fatal error; exiting", "timeout", failedStopTimeout)
		}
		lg.Error("member stopped", "error", s.Err())
		return 1
	case sig := <-sigc:
		lg.Info("received signal; shutting down", "signal", sig.String())
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.Stop()
	}()
	select {
	case <-stopped:
		lg.Info("member stopped")
		return 0
	case sig := <-sigc:
		lg.Warn("received second signal; exiting without waiting for a graceful stop", "signal", sig.String())
		return 1
	}
}
