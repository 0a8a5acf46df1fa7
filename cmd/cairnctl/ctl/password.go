package ctl

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// askPassword prints prompt on out and reads one line from in, with terminal
// echo turned off when in is a terminal. Like etcdctl it ends the prompt line
// with a newline after the input and trims surrounding space.
func askPassword(in io.Reader, out io.Writer, prompt string) (string, error) {
	fmt.Fprint(out, prompt)
	defer fmt.Fprintln(out)

	if f, ok := in.(*os.File); ok {
		defer echoOff(f)()
	}

	// One byte at a time, so that nothing after the line is consumed.
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := in.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("failed during password entry: %s", err)
		}
	}
	return strings.TrimSpace(string(line)), nil
}
