// Package console owns Cairn's web console: the page (HTML, CSS and
// vanilla JavaScript embedded in the binary with embed, no build step)
// and the HTTP handler that serves it at /ui/ on the client URLs.
//
// The page is a client like etcdctl: everything it shows or changes goes
// through the public grpc-gateway JSON API under /v3/ (and its streaming
// /v3/watch), called by the browser with the user's token, so it can do
// nothing a client could not and auth applies to it exactly as to any
// client. (Its live charts also read the member's public /metrics.) This package must never reach the store, the raft node or the
// auth store in any other way, and must never hold authority in cookies:
// the page logs in with /v3/auth/authenticate and keeps the token in the
// tab (memory and sessionStorage), sending it in the Authorization header,
// which a cross-site page cannot set, so cross-site request forgery has
// nothing to ride on.
//
// The one thing the handler does besides serving files is a read-only
// relay, POST /ui/api/status?member=ID: it forwards the browser's request
// (and Authorization header: Status needs a user when auth is on) to
// /v3/maintenance/status on the client URL of a member of the cluster's
// member list, because the page's Content-Security-Policy (connect-src
// 'self') keeps the browser from asking the other members itself. It
// reaches only URLs that the member list names and only that gateway
// endpoint, and over https only members whose certificate verifies.
//
// Every response carries a strict Content-Security-Policy (scripts only
// from the page's own files: no inline script, no eval), nosniff,
// frame-ancestors 'none' with X-Frame-Options DENY, and no referrer.
// The page renders keys and values with textContent only, never as HTML.
package console

import (
	"context"
	"crypto/tls"
	"embed"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every console response: the page
// loads its own script and style files and talks to its own origin only.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure the handler.
type Options struct {
	// Members returns the client URLs of each member of the cluster by
	// member ID (from the member list), for the status relay. Nil turns
	// the relay off.
	Members func() map[uint64][]string
	// TLS is the client configuration used to reach an https client URL:
	// the member's client certificate, verifying the other member's
	// certificate (a token must not go to a server nobody checked). Nil:
	// Go's defaults (system roots). Its ServerName is replaced by each
	// URL's host.
	TLS *tls.Config
	// Timeout bounds one relayed status request (default 3 s).
	Timeout time.Duration
}

// Handler returns the console's handler, to be mounted at /ui/ (it also
// answers /ui with a redirect to /ui/ when mounted on a ServeMux).
func Handler(opts Options) http.Handler {
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
	relay := newRelay(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		switch {
		case r.URL.Path == "/ui/api/status":
			relay.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/ui/api/"):
			http.NotFound(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			// The page is small and changes with the binary: revalidate.
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		}
	})
}

// setHeaders sets the security headers every console response carries.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// DefaultOn is the console's default (--console unset): on only when every
// URL the member serves clients on is loopback (127.0.0.0/8, ::1 or
// localhost) or a local unix socket, so that a member reachable from the
// network does not grow a web page nobody asked for.
func DefaultOn(urlLists ...[]url.URL) bool {
	n := 0
	for _, us := range urlLists {
		for _, u := range us {
			n++
			if !IsLocal(u) {
				return false
			}
		}
	}
	return n > 0
}

// IsLocal reports whether u can be reached from this machine only.
func IsLocal(u url.URL) bool {
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		return true
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// relay forwards POST /ui/api/status?member=ID to that member's gateway.
type relay struct {
	opts   Options
	client *http.Client
}

func newRelay(opts Options) *relay {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout}).DialContext,
		TLSHandshakeTimeout: opts.Timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	if opts.TLS != nil {
		c := opts.TLS.Clone()
		c.ServerName = "" // derived from each URL's host
		tr.TLSClientConfig = c
	}
	return &relay{opts: opts, client: &http.Client{Transport: tr, Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if rl.opts.Members == nil {
		http.Error(w, "status relay not available", http.StatusNotFound)
		return
	}
	id, err := strconv.ParseUint(r.URL.Query().Get("member"), 10, 64)
	if err != nil {
		http.Error(w, "bad member id", http.StatusBadRequest)
		return
	}
	urls, ok := rl.opts.Members()[id]
	if !ok || len(urls) == 0 {
		http.Error(w, "no such member, or it has no client URL", http.StatusNotFound)
		return
	}
	var lastErr error
	for _, cu := range urls {
		u, err := url.Parse(cu)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue // unix sockets are not reachable from here
		}
		ctx, cancel := context.WithTimeout(r.Context(), rl.opts.Timeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			u.Scheme+"://"+u.Host+"/v3/maintenance/status", strings.NewReader("{}"))
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		// The user's token crosses the network only encrypted: over
		// plain http it goes to a loopback member alone.
		if a := r.Header.Get("Authorization"); a != "" && (u.Scheme == "https" || IsLocal(*u)) {
			req.Header.Set("Authorization", a)
		}
		resp, err := rl.client.Do(req)
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		return
	}
	msg := "member unreachable"
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	http.Error(w, msg, http.StatusBadGateway)
}
