package ctl

import (
	"fmt"
	"regexp"
)

// argsRegexp matches one shell-like word: a double-quoted string with Go
// escapes, a single-quoted string taken literally, or a bare word.
var argsRegexp = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`)

// argify splits a txn or interactive watch line into words the way etcdctl
// does, unquoting quoted words. A double-quoted word with a bad escape is an
// input error.
func argify(s string) ([]string, error) {
	args := argsRegexp.FindAllString(s, -1)
	for i, a := range args {
		switch {
		case a == "":
		case a[0] == '\'':
			args[i] = a[1 : len(a)-1]
		case a[0] == '"':
			if _, err := fmt.Sscanf(a, "%q", &args[i]); err != nil {
				return nil, fail(exitInvalidInput, err)
			}
		}
	}
	return args, nil
}
