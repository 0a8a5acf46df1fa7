package ctl

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// saveSnapshot is clientv3's snapshot.SaveWithVersion (the same log lines
// and errors, the same path.part written, fsynced and renamed) plus what
// etcdctl lacks: on a terminal, progress (bytes so far and the rate) on
// progress, redrawn in place; and an fsync of the directory after the
// rename, so the new name survives a power cut too.
func saveSnapshot(ctx context.Context, lg *zap.Logger, cfg clientv3.Config, dbPath string, progress io.Writer) (version string, err error) {
	cfg.Logger = lg.Named("client")
	if len(cfg.Endpoints) != 1 {
		return "", fmt.Errorf("snapshot must be requested to one selected node, not multiple %v", cfg.Endpoints)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	partpath := dbPath + ".part"
	defer os.RemoveAll(partpath)
	f, err := os.OpenFile(partpath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("could not open %s (%w)", partpath, err)
	}
	defer f.Close()
	lg.Info("created temporary db file", zap.String("path", partpath))

	start := time.Now()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return "", err
	}
	defer resp.Snapshot.Close()
	lg.Info("fetching snapshot", zap.String("endpoint", cfg.Endpoints[0]))
	var w io.Writer = f
	var stop func()
	if progress != nil {
		cw := &countWriter{w: f}
		w, stop = cw, showProgress(progress, &cw.n, start)
	}
	size, err := io.Copy(w, resp.Snapshot)
	if stop != nil {
		stop()
	}
	if err != nil {
		return resp.Version, fmt.Errorf("could not write snapshot: %w", err)
	}
	if size%512 != sha256.Size {
		return resp.Version, fmt.Errorf("sha256 checksum not found [bytes: %d]", size)
	}
	if err := f.Sync(); err != nil {
		return resp.Version, fmt.Errorf("could not fsync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return resp.Version, fmt.Errorf("could not close file descriptor: %w", err)
	}
	lg.Info("fetched snapshot", zap.String("endpoint", cfg.Endpoints[0]), zap.String("size", humanize.Bytes(uint64(size))),
		zap.Duration("took", time.Since(start)), zap.String("etcd-version", resp.Version))
	if err := os.Rename(partpath, dbPath); err != nil {
		return resp.Version, fmt.Errorf("could not rename %s to %s (%w)", partpath, dbPath, err)
	}
	if d, err := os.Open(filepath.Dir(dbPath)); err == nil {
		d.Sync()
		d.Close()
	}
	lg.Info("saved", zap.String("path", dbPath))
	return resp.Version, nil
}

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// showProgress redraws "Saving snapshot: 12 MB, 40 MB/s" on w every
// progressRefresh until the returned stop, which draws the last figure
// and ends the line.
func showProgress(w io.Writer, n *atomic.Int64, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		got := n.Load()
		rate := float64(got) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(w, "\rSaving snapshot: %s, %s/s   ", humanize.Bytes(uint64(got)), humanize.Bytes(uint64(rate)))
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(progressRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				draw()
				fmt.Fprintln(w)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
