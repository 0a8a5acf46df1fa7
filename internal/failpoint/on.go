//go:build cairn_failpoints

package failpoint

import (
	"log/slog"
	"os"
	"strings"
	"sync"
)

var enabled = sync.OnceValue(func() map[string]bool {
	on := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("CAIRN_FAILPOINTS"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			on[name] = true
			slog.Warn("failpoint switched on: this server misbehaves on purpose", "failpoint", name)
		}
	}
	return on
})

// Enabled reports whether CAIRN_FAILPOINTS names the failpoint.
func Enabled(name string) bool { return enabled()[name] }
