package server

import (
	"testing"
	"time"
)

func TestAutoCompactionSettings(t *testing.T) {
	for _, tc := range []struct {
		mode, retention string
		off, wantErr    bool
		periodic        bool
		retain          time.Duration
		keep            int64
		interval        time.Duration
	}{
		{mode: "periodic", retention: "", off: true},
		{mode: "periodic", retention: "0", off: true},
		{mode: "periodic", retention: "1h", periodic: true, retain: time.Hour, interval: 6 * time.Minute},
		{mode: "periodic", retention: "72", periodic: true, retain: 72 * time.Hour, interval: time.Hour},
		{mode: "", retention: "30m", periodic: true, retain: 30 * time.Minute, interval: 3 * time.Minute},
		{mode: "revision", retention: "1000", keep: 1000, interval: 5 * time.Minute},
		{mode: "revision", retention: "0", off: true},
		{mode: "revision", retention: "-1", wantErr: true},
		{mode: "revision", retention: "1h", wantErr: true},
		{mode: "periodic", retention: "soon", wantErr: true},
		{mode: "daily", retention: "1", wantErr: true},
	} {
		ac, err := newAutoCompactor(&Server{}, tc.mode, tc.retention)
		switch {
		case tc.wantErr:
			if err == nil {
				t.Errorf("%s %q: no error", tc.mode, tc.retention)
			}
		case err != nil:
			t.Errorf("%s %q: %v", tc.mode, tc.retention, err)
		case tc.off:
			if ac != nil {
				t.Errorf("%s %q: compactor on, want off", tc.mode, tc.retention)
			}
		case ac == nil:
			t.Errorf("%s %q: compactor off", tc.mode, tc.retention)
		case ac.periodic != tc.periodic || ac.retention != tc.retain || ac.keep != tc.keep || ac.interval != tc.interval:
			t.Errorf("%s %q: got periodic=%v retention=%v keep=%d interval=%v", tc.mode, tc.retention, ac.periodic, ac.retention, ac.keep, ac.interval)
		}
	}
}
