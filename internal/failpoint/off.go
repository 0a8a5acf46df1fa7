//go:build !cairn_failpoints

package failpoint

// Enabled reports whether the named failpoint is switched on. Without
// the cairn_failpoints build tag it is always false.
func Enabled(name string) bool { return false }
