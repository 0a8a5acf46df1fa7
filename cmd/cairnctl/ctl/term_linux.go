package ctl

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// defaultTermWidth is the width progress lines take where w is not a
// terminal, or one that does not know its width.
const defaultTermWidth = 100

// terminalWidth reports whether w is a terminal and how many columns it
// has.
func terminalWidth(w io.Writer) (width int, terminal bool) {
	f, ok := w.(*os.File)
	if !ok {
		return defaultTermWidth, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return defaultTermWidth, false
	}
	if ws.Col == 0 {
		return defaultTermWidth, true
	}
	return int(ws.Col), true
}
