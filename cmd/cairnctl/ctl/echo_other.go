//go:build !linux

package ctl

import "os"

// echoOff is a no-op where cairnctl does not know the terminal ioctls; the
// password is echoed.
func echoOff(*os.File) (restore func()) { return func() {} }
