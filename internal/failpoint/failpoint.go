// Package failpoint holds the deliberate bugs that tests switch on to
// show that the robustness suite catches a misbehaving server.
//
// A failpoint exists only in a binary built with the build tag
// cairn_failpoints; in every other build Enabled is a constant false and
// the compiler removes the code behind it, so a released binary cannot
// be made to misbehave. In a tagged build, the environment variable
// CAIRN_FAILPOINTS names the failpoints to switch on, separated by
// commas:
//
//	go build -tags cairn_failpoints -o /tmp/cairn-bugs ./cmd/cairn
//	CAIRN_FAILPOINTS=skipReadIndex /tmp/cairn-bugs ...
//
// This package owns the names below and nothing else; it must never be
// imported for anything but guarding a deliberate bug.
package failpoint

// The failpoints a server knows.
const (
	// SkipReadIndex serves linearizable reads from the local state
	// without confirming leadership (no ReadIndex): a member cut off
	// from the others answers with stale data.
	SkipReadIndex = "skipReadIndex"
	// DropWatchEvent drops every hundredth event sent to watchers, so
	// watch streams have gaps.
	DropWatchEvent = "dropWatchEvent"
	// AuthSkipTxnElse checks only the success branch of a Txn's
	// requests for permission, so a user may write through the other.
	AuthSkipTxnElse = "authSkipTxnElse"
	// WALSkipFsync makes the WAL return from Save without the
	// fdatasync of the records it wrote: writes are acknowledged
	// before they are durable, and a power cut loses them.
	WALSkipFsync = "walSkipFsync"
	// WALIgnoreSyncError makes the WAL take a failed fdatasync for a
	// successful one (the "fsyncgate" mistake): after an EIO the kernel
	// has dropped the dirty pages, the writes are acknowledged anyway,
	// and a power cut loses them.
	WALIgnoreSyncError = "walIgnoreSyncError"
)
