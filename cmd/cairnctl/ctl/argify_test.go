package ctl

import (
	"reflect"
	"testing"
)

func TestArgify(t *testing.T) {
	for in, want := range map[string][]string{
		`put k v`:                      {"put", "k", "v"},
		`  put   k   v  `:              {"put", "k", "v"},
		`put "a b" 'c d'`:              {"put", "a b", "c d"},
		`put k "x \"y\"\n"`:            {"put", "k", "x \"y\"\n"},
		`put k 'no \n escapes'`:        {"put", "k", `no \n escapes`},
		`watch foo --rev=1 -- echo hi`: {"watch", "foo", "--rev=1", "--", "echo", "hi"},
		``:                             nil,
	} {
		got, err := argify(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("argify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArgifyBadEscapeIsInputError(t *testing.T) {
	_, err := argify(`put "bad\q" v`)
	if err == nil || exitCode(err) != exitInvalidInput {
		t.Fatalf("got %v (code %d)", err, exitCode(err))
	}
}
