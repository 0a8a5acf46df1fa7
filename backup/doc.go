// Package backup takes a member's scheduled backups (--backup-dir,
// --backup-interval, --backup-retention, --backup-on-leader-only).
//
// It owns the schedule (one attempt per interval, skipped on a follower
// when leader-only), the file names (sortable, with the UTC time and the
// store's revision: cairn-backup-20261204T183000Z-r000000012345.db), the
// atomic write (a temporary file in the same directory, fsync, rename,
// fsync of the directory), the verification (the file is read back and
// its hash and revision checked before it takes its final name), the
// retention (the oldest backups beyond the count are deleted, and only
// files with a backup's name), and the figures the member's metrics
// report. A failed attempt leaves no file behind, is logged and counted,
// and the next interval tries again; earlier backups are never deleted
// to make room.
//
// It never touches the store: the one way in is the Source it is given,
// which writes a consistent snapshot to a writer (the server passes one
// built on Server.SnapshotFile, in the member's --snapshot-format). It
// never blocks the apply loop: it runs in a goroutine of its own, an
// attempt still running when the next tick comes makes that tick be
// skipped, and the Source reads a point-in-time view of the engine.
// The filesystem and the clock are interfaces so that tests can inject
// a full disk, a failing fsync or rename, and time.
package backup
