package api

import (
	"encoding/json"
	"net/http"

	"go.etcd.io/etcd/api/v3/version"
)

// httpHandler serves the HTTP endpoints etcd has on its client port.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"etcdserver":  version.Version,
			"etcdcluster": version.Cluster(version.Version),
			"storage":     StorageVersion,
		})
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		health, reason := "true", ""
		if err := s.m.LinearizableRead(r.Context()); err != nil {
			health, reason = "false", err.Error()
		} else if s.m.Alarms().Corrupt() {
			health, reason = "false", "ALARM CORRUPT"
		}
		if health != "true" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"health": health, "reason": reason})
	})
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/livez", ok)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.m.LinearizableRead(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	return mux
}
