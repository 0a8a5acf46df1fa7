//go:build !linux

package ctl

import "io"

// defaultTermWidth is the width progress lines take.
const defaultTermWidth = 100

// terminalWidth treats every writer as a file where cairnctl does not know
// the terminal ioctls: progress is printed once, at the end.
func terminalWidth(io.Writer) (width int, terminal bool) { return defaultTermWidth, false }
