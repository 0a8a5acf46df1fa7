//go:build race

package mvcc

// raceEnabled: the race detector slows goroutines unevenly, which a few
// timing assertions cannot tolerate.
const raceEnabled = true
