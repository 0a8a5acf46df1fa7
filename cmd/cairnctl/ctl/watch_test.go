package ctl

import (
	"errors"
	"reflect"
	"testing"
)

func TestSplitWatchArgs(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		dash             int
		envKey, envRange string
		interactive      bool
		watch, exec      []string
		err              error
	}{
		{name: "key", args: []string{"foo"}, dash: -1, watch: []string{"foo"}},
		{name: "range", args: []string{"a", "b"}, dash: -1, watch: []string{"a", "b"}},
		{name: "exec", args: []string{"foo", "echo", "hi"}, dash: 1, watch: []string{"foo"}, exec: []string{"echo", "hi"}},
		{name: "exec whose args repeat the key", args: []string{"foo", "foo", "bar"}, dash: 1, watch: []string{"foo"}, exec: []string{"foo", "bar"}},
		{name: "separator without command", args: []string{"foo"}, dash: 1, err: errBadArgsNumSeparator},
		{name: "env key", dash: -1, envKey: "k", watch: []string{"k"}},
		{name: "env range", dash: -1, envKey: "k", envRange: "m", watch: []string{"k", "m"}},
		{name: "env key and exec", args: []string{"echo"}, dash: 0, envKey: "k", watch: []string{"k"}, exec: []string{"echo"}},
		{name: "env key and key", args: []string{"foo"}, dash: -1, envKey: "k", err: errBadArgsNumConflictEnv},
		{name: "env key and key before exec", args: []string{"foo", "echo"}, dash: 1, envKey: "k", err: errBadArgsNumConflictEnv},
		{name: "interactive env key and key before exec", args: []string{"foo", "echo"}, dash: 1, envKey: "k", interactive: true, watch: []string{"k", "foo"}, exec: []string{"echo"}},
		{name: "interactive no key", dash: -1, interactive: true, err: errBadArgsNum},
		{name: "no key", dash: -1, watch: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, e, err := splitWatchArgs(tc.args, tc.dash, tc.envKey, tc.envRange, tc.interactive)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(w) == 0 && len(tc.watch) == 0 {
				w = tc.watch
			}
			if !reflect.DeepEqual(w, tc.watch) || !reflect.DeepEqual(e, tc.exec) {
				t.Errorf("got watch %q exec %q, want watch %q exec %q", w, e, tc.watch, tc.exec)
			}
		})
	}
}
