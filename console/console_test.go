package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestServesEmbeddedPageWithSecurityHeaders(t *testing.T) {
	h := Handler(Options{})
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/ui/", "text/html", `<script src="app.js" defer></script>`},
		{"/ui/app.js", "text/javascript", "textContent"},
		{"/ui/app.css", "text/css", "prefers-color-scheme: dark"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		rec := get(t, h, http.MethodGet, tc.path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", tc.path, rec.Code)
		}
		hd := rec.Header()
		if got := hd.Get("Content-Type"); !strings.HasPrefix(got, tc.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, got, tc.ctype)
		}
		if !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := hd.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, k, got, want)
			}
		}
		if hd.Get("Set-Cookie") != "" {
			t.Errorf("GET %s sets a cookie", tc.path)
		}
	}
	rec := get(t, h, http.MethodGet, "/ui/nope.js")
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("missing file: %d, CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
	if rec := get(t, h, http.MethodPost, "/ui/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", rec.Code)
	}
}

// TestPolicyIsStrict pins what the policy must keep: scripts from the
// page's own files only (no inline script, no eval), no framing, no
// plugins, requests to the page's own origin only.
func TestPolicyIsStrict(t *testing.T) {
	dirs := map[string]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			dirs[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for k, want := range map[string]string{
		"default-src": "'none'", "script-src": "'self'", "style-src": "'self'",
		"connect-src": "'self'", "frame-ancestors": "'none'", "base-uri": "'none'", "form-action": "'none'",
	} {
		if dirs[k] != want {
			t.Errorf("%s = %q, want %q", k, dirs[k], want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("policy allows something unsafe: %s", ContentSecurityPolicy)
	}
}

// TestPageHasNoInlineScriptOrHTMLSinks checks the assets against the
// rules the policy and the escaping rely on: no inline script or event
// handler attributes in the HTML, and no HTML sinks in the script.
func TestPageHasNoInlineScriptOrHTMLSinks(t *testing.T) {
	html, _ := assets.ReadFile("assets/index.html")
	js, _ := assets.ReadFile("assets/app.js")
	for _, bad := range []string{"<script>", " onclick=", " onload=", " style=", "javascript:"} {
		if strings.Contains(string(html), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "document.cookie"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js contains %q", bad)
		}
	}
}

func TestDefaultOn(t *testing.T) {
	u := func(ss ...string) []url.URL {
		var out []url.URL
		for _, s := range ss {
			p, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, *p)
		}
		return out
	}
	for _, tc := range []struct {
		urls []url.URL
		want bool
	}{
		{u("http://127.0.0.1:2379"), true},
		{u("http://localhost:2379", "https://[::1]:2379", "http://127.0.0.5:1"), true},
		{u("unix:///tmp/cairn.sock", "http://127.0.0.1:2379"), true},
		{u("http://127.0.0.1:2379", "http://10.0.0.1:2379"), false},
		{u("http://0.0.0.0:2379"), false},
		{u("http://[::]:2379"), false},
		{u("http://example.com:2379"), false},
		{nil, false},
	} {
		if got := DefaultOn(tc.urls); got != tc.want {
			t.Errorf("DefaultOn(%v) = %v, want %v", tc.urls, got, tc.want)
		}
	}
	// Every list counts: a non-loopback HTTP-only URL turns it off.
	if DefaultOn(u("http://127.0.0.1:2379"), u("http://192.0.2.1:2379")) {
		t.Error("DefaultOn with a non-loopback second list = true")
	}
}

func TestStatusRelay(t *testing.T) {
	var gotAuth, gotPath string
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"version":"3.7.0","raftTerm":"4"}`)
	}))
	defer member.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	h := Handler(Options{Members: func() map[uint64][]string {
		return map[uint64][]string{1: {"unix:///x.sock", member.URL}, 2: {deadURL}, 3: nil}
	}})
	post := func(q string, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/ui/api/status?"+q, strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := post("member=1", "tok")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"raftTerm":"4"`) {
		t.Fatalf("relay: %d %s", rec.Code, rec.Body.String())
	}
	if gotAuth != "tok" || gotPath != "/v3/maintenance/status" {
		t.Errorf("relayed Authorization %q path %q", gotAuth, gotPath)
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("relay response lacks the security headers")
	}
	for q, want := range map[string]int{
		"member=2": http.StatusBadGateway, "member=3": http.StatusNotFound,
		"member=9": http.StatusNotFound, "member=x": http.StatusBadRequest,
	} {
		if rec := post(q, ""); rec.Code != want {
			t.Errorf("%s: %d, want %d", q, rec.Code, want)
		}
	}
	if rec := get(t, h, http.MethodGet, "/ui/api/status?member=1"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET relay: %d", rec.Code)
	}
	if rec := get(t, Handler(Options{}), http.MethodPost, "/ui/api/status?member="+strconv.Itoa(1)); rec.Code != http.StatusNotFound {
		t.Errorf("relay without Members: %d", rec.Code)
	}
}

// TestStatusRelayVerifiesTLS: over https the relay checks the member's
// certificate before it sends the token.
func TestStatusRelayVerifiesTLS(t *testing.T) {
	var gotAuth string
	member := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		io.WriteString(w, `{"version":"3.7.0"}`)
	}))
	defer member.Close()
	members := func() map[uint64][]string { return map[uint64][]string{1: {member.URL}} }
	post := func(h http.Handler) int {
		req := httptest.NewRequest(http.MethodPost, "/ui/api/status?member=1", strings.NewReader("{}"))
		req.Header.Set("Authorization", "tok")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	// Not trusted (Go's system roots): refused before anything is sent.
	if code := post(Handler(Options{Members: members})); code != http.StatusBadGateway || gotAuth != "" {
		t.Fatalf("untrusted member: %d, token sent %q", code, gotAuth)
	}
	// Trusted: relayed, with the token.
	trusting := member.Client().Transport.(*http.Transport).TLSClientConfig
	if code := post(Handler(Options{Members: members, TLS: trusting})); code != http.StatusOK || gotAuth != "tok" {
		t.Fatalf("trusted member: %d, token %q", code, gotAuth)
	}
}
