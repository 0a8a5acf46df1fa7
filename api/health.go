package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The health endpoints, as etcd 3.7 answers them: /health (JSON, with
// ?exclude=ALARM and ?serializable=true), /livez and /readyz (text, with
// ?verbose and ?exclude=check), and /livez/<check>, /readyz/<check>.

// healthHandlers adds /health, /livez and /readyz to mux.
func (s *Server) healthHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/health", s.serveHealth)
	s.installChecks(mux, "livez", []healthCheck{{"serializable_read", s.readCheck(true)}})
	s.installChecks(mux, "readyz", []healthCheck{
		{"data_corruption", s.corruptionCheck},
		{"serializable_read", s.readCheck(true)},
		{"linearizable_read", s.readCheck(false)},
		{"non_learner", s.learnerCheck},
	})
}

type healthCheck struct {
	name  string
	check func(ctx context.Context) error
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	excluded := r.URL.Query()["exclude"]
	serializable := r.URL.Query().Get("serializable") == "true"
	health, reason := "true", ""
	for _, a := range s.m.Alarms().List(0, pb.AlarmType_NONE) {
		if slices.Contains(excluded, a.Alarm.String()) {
			continue
		}
		health = "false"
		switch a.Alarm {
		case pb.AlarmType_NOSPACE:
			reason = "ALARM NOSPACE"
		case pb.AlarmType_CORRUPT:
			reason = "ALARM CORRUPT"
		default:
			reason = "ALARM UNKNOWN"
		}
		break
	}
	if health == "true" && !serializable && s.m.Leader() == 0 {
		health, reason = "false", "RAFT NO LEADER"
	}
	if health == "true" {
		if err := s.readCheck(serializable)(r.Context()); err != nil {
			health, reason = "false", fmt.Sprintf("RANGE ERROR:%s", err)
		}
	}
	d, _ := json.Marshal(map[string]string{"health": health, "reason": reason})
	if health != "true" {
		http.Error(w, string(d), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write(d)
}

// readCheck: a read answers (linearizable: after a ReadIndex round).
func (s *Server) readCheck(serializable bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if !serializable {
			if err := s.m.LinearizableRead(ctx); err != nil {
				return toGRPC(err)
			}
		}
		_, err := s.m.Store().Range(ctx, &pb.RangeRequest{Key: []byte{0}, KeysOnly: true, Limit: 1})
		return toGRPC(err)
	}
}

func (s *Server) corruptionCheck(context.Context) error {
	if s.m.Alarms().Corrupt() {
		return fmt.Errorf("alarm activated: %s", pb.AlarmType_CORRUPT)
	}
	return nil
}

func (s *Server) learnerCheck(context.Context) error {
	if s.m.IsLearner() {
		return fmt.Errorf("not supported for learner")
	}
	return nil
}

// installChecks serves /kind (every check but ?exclude=d ones) and
// /kind/<check>.
func (s *Server) installChecks(mux *http.ServeMux, kind string, checks []healthCheck) {
	mux.HandleFunc("/"+kind, func(w http.ResponseWriter, r *http.Request) {
		excluded := r.URL.Query()["exclude"]
		run := slices.DeleteFunc(slices.Clone(checks), func(c healthCheck) bool { return slices.Contains(excluded, c.name) })
		writeChecks(w, r, run)
	})
	for _, c := range checks {
		mux.HandleFunc("/"+kind+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			writeChecks(w, r, []healthCheck{c})
		})
	}
}

func writeChecks(w http.ResponseWriter, r *http.Request, checks []healthCheck) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	var out bytes.Buffer
	failed := false
	for _, c := range checks {
		if err := c.check(r.Context()); err != nil {
			fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
			failed = true
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		http.Error(w, out.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, ok := r.URL.Query()["verbose"]; ok {
		_, _ = w.Write(out.Bytes())
	}
	_, _ = w.Write([]byte("ok\n"))
}
