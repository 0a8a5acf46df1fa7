package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
)

// fileSink appends to a file and rotates it by size: before a write that
// would take the file past maxBytes, path.(n-1) becomes path.n, down to
// path becoming path.1, and a new path is started; path.backups is the
// oldest kept and anything it held is removed. A batch is cut at line
// boundaries, so no file passes maxBytes unless a single line does (it
// then has a file of its own) and no line is split across files. Files
// beyond path.backups left by an earlier, larger setting are not touched.
//
// The file is created with mode 0600: it names users and keys.
type fileSink struct {
	path     string
	maxBytes int64 // 0: never rotate
	backups  int
	logger   *slog.Logger

	f    *os.File
	size int64
}

func openFileSink(path string, maxBytes int64, backups int, logger *slog.Logger) (*fileSink, error) {
	s := &fileSink{path: path, maxBytes: maxBytes, backups: backups, logger: logger}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", s.path, err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

func (s *fileSink) write(p []byte) error {
	rotateOK := true
	for len(p) > 0 {
		chunk := p
		if s.maxBytes > 0 && rotateOK && s.size+int64(len(p)) > s.maxBytes {
			// Write the lines that still fit, then rotate for the rest.
			room := s.maxBytes - s.size
			cut := 0
			if room > 0 {
				cut = bytes.LastIndexByte(p[:min(room, int64(len(p)))], '\n') + 1
			}
			if cut == 0 && s.size > 0 {
				if err := s.rotate(); err != nil {
					// Keep appending to whatever file is open rather than
					// lose lines; the next batch tries again.
					s.logger.Error("audit: rotate failed", "path", s.path, "error", err)
					rotateOK = false
				}
				continue
			}
			if cut == 0 {
				// One line longer than maxBytes: it gets a file of its own.
				cut = bytes.IndexByte(p, '\n') + 1
				if cut == 0 {
					cut = len(p)
				}
			}
			chunk = p[:cut]
		}
		if s.f == nil {
			if err := s.open(); err != nil {
				return err
			}
		}
		n, err := s.f.Write(chunk)
		s.size += int64(n)
		if err != nil {
			return fmt.Errorf("audit: write %s: %w", s.path, err)
		}
		p = p[len(chunk):]
	}
	return nil
}

// rotate closes the current file, shifts the backups and opens a new
// file. If a rename fails it reopens path, so writing goes on.
func (s *fileSink) rotate() error {
	if err := s.closeFile(); err != nil {
		s.logger.Error("audit: close before rotation", "path", s.path, "error", err)
	}
	err := s.shift()
	if oerr := s.open(); oerr != nil {
		return errors.Join(err, oerr)
	}
	if err == nil {
		s.logger.Info("audit: rotated", "path", s.path, "backups", s.backups)
	}
	return err
}

func (s *fileSink) shift() error {
	if s.backups == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", s.path, err)
		}
		return nil
	}
	backup := func(i int) string { return s.path + "." + strconv.Itoa(i) }
	if err := os.Remove(backup(s.backups)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	for i := s.backups - 1; i >= 1; i-- {
		if err := os.Rename(backup(i), backup(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", s.path, err)
		}
	}
	if err := os.Rename(s.path, backup(1)); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	return nil
}

func (s *fileSink) closeFile() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	serr := f.Sync()
	if err := f.Close(); err != nil {
		return err
	}
	return serr
}

func (s *fileSink) close() error {
	if err := s.closeFile(); err != nil {
		return fmt.Errorf("audit: close %s: %w", s.path, err)
	}
	return nil
}
