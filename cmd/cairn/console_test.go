package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/server"
)

func boolp(b bool) *bool { return &b }

func TestConsoleFlag(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "bare --console forces it on", args: []string{"--console"},
			want: func(t *testing.T, c *server.Config) { c.Console = boolp(true) }},
		{name: "--console=false turns it off", args: []string{"--console=false"},
			want: func(t *testing.T, c *server.Config) { c.Console = boolp(false) }},
		{name: "ETCD_CONSOLE like any flag", env: []string{"ETCD_CONSOLE=true"},
			want: func(t *testing.T, c *server.Config) { c.Console = boolp(true) }},
		{name: "config file key", file: "console: false\n", args: []string{"--config-file={file}"},
			want: func(t *testing.T, c *server.Config) { c.Console = boolp(false) }},
		{name: "--console=maybe is refused", args: []string{"--console=maybe"}, wantErr: "console"},
	})
}

// TestConsoleDefault is the default rule, --console unset: on when every
// client URL is loopback (etcd's defaults are), off as soon as one is
// not, and an explicit value wins either way.
func TestConsoleDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		file string
		want bool
	}{
		{"defaults are loopback", nil, "", true},
		{"loopback and localhost", []string{"--listen-client-urls=http://127.0.0.1:2379,http://localhost:3379", "--advertise-client-urls=http://127.0.0.1:2379"}, "", true},
		{"all interfaces", []string{"--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://127.0.0.1:2379"}, "", false},
		{"one routable URL", []string{"--listen-client-urls=http://127.0.0.1:2379,http://192.0.2.7:2379", "--advertise-client-urls=http://127.0.0.1:2379"}, "", false},
		{"http-only URL counts", []string{"--listen-client-http-urls=http://0.0.0.0:2381"}, "", false},
		{"forced on when routable", []string{"--console=true", "--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://127.0.0.1:2379"}, "", true},
		{"forced off on loopback", []string{"--console=false"}, "", false},
		{"config file without the key", []string{"--config-file={file}"}, "listen-client-urls: http://0.0.0.0:2379\nadvertise-client-urls: http://127.0.0.1:2379\n", false},
		{"config file forcing it on", []string{"--config-file={file}"}, "console: true\nlisten-client-urls: http://0.0.0.0:2379\nadvertise-client-urls: http://127.0.0.1:2379\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				path := filepath.Join(t.TempDir(), "c.yml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--config-file=" + path}
			}
			var out bytes.Buffer
			inv, err := parseConfig(args, nil, &out, &out, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("parse %v: %v", args, err)
			}
			if got := inv.cfg.ConsoleOn(); got != tc.want {
				t.Errorf("ConsoleOn() = %v, want %v", got, tc.want)
			}
		})
	}
}
