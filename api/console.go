package api

import (
	"net/http"

	"github.com/cairnkv/cairn/console"
)

// consoleHandler adds the web console at /ui/ (Options.Console). It needs
// the JSON gateway, which is all the page talks to; its status relay
// reaches the other members' client URLs from the member list, with
// Options.ConsoleTLS.
func (s *Server) consoleHandler(mux *http.ServeMux) {
	if !s.opts.Console {
		return
	}
	mux.Handle("/ui/", console.Handler(console.Options{TLS: s.opts.ConsoleTLS, Members: func() map[uint64][]string {
		out := map[uint64][]string{}
		for _, m := range s.m.Members() {
			out[m.ID] = m.ClientURLs
		}
		return out
	}}))
}
