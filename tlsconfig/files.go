package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// stamp identifies one version of a file on disk. A rotation that
// replaces a file (rename, the kubelet's symlink swap, cp) changes its
// modification time or size; comparing stamps costs a stat per file per
// handshake, which is small next to the handshake itself.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(paths ...string) ([]stamp, error) {
	out := make([]stamp, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// watched is material parsed from one or more files, re-parsed when any of
// them changes. A parse that fails after a change keeps the old value (and
// logs once per change); only the first load's error is returned.
type watched[T any] struct {
	what  string
	paths []string
	parse func() (T, error)
	lg    *slog.Logger

	mu     sync.Mutex
	stamps []stamp
	val    T
	// failed is the stamps of the last version that failed to parse, so
	// a broken file is reported once, not at every handshake.
	failed []stamp
}

func newWatched[T any](lg *slog.Logger, what string, parse func() (T, error), paths ...string) (*watched[T], error) {
	w := &watched[T]{what: what, paths: paths, parse: parse, lg: lg}
	st, err := stampOf(paths...)
	if err != nil {
		return nil, err
	}
	v, err := parse()
	if err != nil {
		return nil, err
	}
	w.stamps, w.val = st, v
	return w, nil
}

// get returns the current material, re-reading the files first if they
// changed since the last read.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := stampOf(w.paths...)
	if err != nil || sameStamps(st, w.stamps) || sameStamps(st, w.failed) {
		// A file that is missing for a moment (mid-rotation) keeps the
		// current material.
		return w.val
	}
	v, err := w.parse()
	if err != nil {
		w.failed = st
		w.lg.Error("tls: changed file does not load; keeping the previous material",
			"what", w.what, "files", w.paths, "error", err)
		return w.val
	}
	w.stamps, w.val, w.failed = st, v, nil
	w.lg.Info("tls: reloaded from disk", "what", w.what, "files", w.paths)
	return w.val
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load key pair --cert-file %q --key-file %q: %w", certFile, keyFile, err)
	}
	return &c, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trusted CA file %q: %w", file, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("trusted CA file %q holds no PEM certificate", file)
	}
	return pool, nil
}

// revoked is the set of revoked serial numbers from a CRL.
type revoked map[string]struct{}

func loadCRL(file string) (revoked, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	l, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("CRL file %q: %w", file, err)
	}
	out := revoked{}
	for _, e := range l.RevokedCertificateEntries {
		out[string(e.SerialNumber.Bytes())] = struct{}{}
	}
	return out, nil
}

func (r revoked) check(certs []*x509.Certificate) error {
	for _, c := range certs {
		if _, ok := r[string(c.SerialNumber.Bytes())]; ok {
			return fmt.Errorf("transport: certificate serial %x revoked", c.SerialNumber.Bytes())
		}
	}
	return nil
}

// errNoFile names a flag whose file is missing, for the start-up error.
func fileError(flag, path string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("--%s %q: %w", flag, path, err)
	}
	return fmt.Errorf("--%s: %w", flag, err)
}
