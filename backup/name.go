package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/snapshot"
)

// Names: cairn-backup-<UTC time>-r<revision>.<ext>, the revision zero-
// padded to 12 digits, the extension "db" for etcd's format and "cairn"
// for Cairn's. Temporary files are cairn-backup-<UTC time>-<random>.tmp.
const (
	namePrefix = "cairn-backup-"
	timeLayout = "20060102T150405Z"
	tmpSuffix  = ".tmp"
)

var nameRE = regexp.MustCompile(`^cairn-backup-(\d{8}T\d{6}Z)-r(\d{12,19})\.(db|cairn)$`)

// ext is the file extension of a backup in format ("etcd" or "cairn").
func ext(format string) string {
	if format == "cairn" {
		return "cairn"
	}
	return "db"
}

// Name is the file name of a backup taken at t of the store at rev, in
// format ("etcd", the default, or "cairn").
func Name(t time.Time, rev int64, format string) string {
	return fmt.Sprintf("%s%s-r%012d.%s", namePrefix, t.UTC().Format(timeLayout), rev, ext(format))
}

// Info is what a backup's name says.
type Info struct {
	Name     string    `json:"name"`
	Time     time.Time `json:"time"`
	Revision int64     `json:"revision"`
	// Format is "etcd" or "cairn".
	Format string `json:"format"`
}

// ParseName reads a backup's file name; ok is false for any other name
// (temporary files included).
func ParseName(name string) (info Info, ok bool) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return Info{}, false
	}
	t, err := time.Parse(timeLayout, m[1])
	if err != nil {
		return Info{}, false
	}
	rev, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return Info{}, false
	}
	f := "etcd"
	if m[3] == "cairn" {
		f = "cairn"
	}
	return Info{Name: name, Time: t, Revision: rev, Format: f}, true
}

// isTemp reports whether name is a backup's temporary file.
func isTemp(name string) bool {
	return strings.HasPrefix(name, namePrefix) && strings.HasSuffix(name, tmpSuffix)
}

// backups returns the backups among names, oldest first (by time, then
// revision, then name).
func backups(names []string) []Info {
	var out []Info
	for _, n := range names {
		if info, ok := ParseName(n); ok {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if a.Revision != b.Revision {
			if a.Revision < b.Revision {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Entry is one backup of a directory as List reports it.
type Entry struct {
	Info
	Size int64 `json:"size"`
	// Verified is true when the file reads back whole: its hash matches
	// and its revision is the one in its name. Error says why not.
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// List reads dir's backups, oldest first, verifying each (for
// `cairnutl backup list`). Files without a backup's name are left out.
func List(dir string) ([]Entry, error) {
	names, err := OSFS{}.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, info := range backups(names) {
		e := Entry{Info: info}
		path := filepath.Join(dir, info.Name)
		if fi, err := os.Stat(path); err != nil {
			e.Error = err.Error()
		} else {
			e.Size = fi.Size()
			if err := verify(snapshot.Verify, path, info.Format, info.Revision); err != nil {
				e.Error = err.Error()
			} else {
				e.Verified = true
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// VerifyFunc reads a snapshot file back (snapshot.Verify).
type VerifyFunc func(path string) (snapshot.Format, snapshot.Status, error)

// verify checks the file at path with fn: it must be whole, in format,
// and hold the store at rev. An etcd file's status revision is that of
// the newest version it holds, which is below the store's revision when
// the newest change was compacted away (or the store is empty); a Cairn
// file records the store's revision itself.
func verify(fn VerifyFunc, path, format string, rev int64) error {
	f, st, err := fn(path)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if f.String() != format {
		return fmt.Errorf("verify: %s is in %s format, want %s", filepath.Base(path), f, format)
	}
	if st.Revision > rev || (format == "cairn" && st.Revision != rev) {
		return fmt.Errorf("verify: %s holds revision %d, want %d", filepath.Base(path), st.Revision, rev)
	}
	return nil
}
