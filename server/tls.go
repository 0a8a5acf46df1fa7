package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"

	"github.com/cairnkv/cairn/api"
	"github.com/cairnkv/cairn/tlsconfig"
)

// loadTLS reads the client and peer TLS material, failing at start-up with
// an error naming any missing or bad file. Nil means plaintext.
//
// As in etcd, material given for a side whose URLs are all plaintext is
// ignored with a warning rather than read.
func loadTLS(cfg *Config, lg *slog.Logger) (client, peer *tlsconfig.Material, err error) {
	peerURLs := slices.Clone(cfg.ListenPeerURLs)
	for _, us := range cfg.InitialCluster {
		peerURLs = append(peerURLs, us...)
	}
	if !cfg.ClientTLS.Empty() && !anySecure(cfg.ListenClientURLs, cfg.ListenClientHTTPURLs, cfg.ListenMetricsURLs) {
		lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", "client-urls", cfg.ListenClientURLs)
	} else if !cfg.ClientTLS.Empty() {
		i := *cfg.ClientTLS
		if i.Logger == nil {
			i.Logger = lg.With("side", "client")
		}
		if client, err = tlsconfig.Load(i); err != nil {
			return nil, nil, fmt.Errorf("server: client TLS: %w", err)
		}
	}
	if !cfg.PeerTLS.Empty() && !anySecure(peerURLs) {
		lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", "peer-urls", cfg.ListenPeerURLs)
	} else if !cfg.PeerTLS.Empty() {
		i := *cfg.PeerTLS
		if i.Logger == nil {
			i.Logger = lg.With("side", "peer")
		}
		if peer, err = tlsconfig.Load(i); err != nil {
			return nil, nil, fmt.Errorf("server: peer TLS: %w", err)
		}
	}
	return client, peer, nil
}

// listen opens u: tcp for http/https, a socket file for unix/unixs, with
// TLS for https and unixs. A TLS URL without material is refused with
// etcd's error; a plaintext URL is served in plaintext even when material
// is configured, as etcd does.
func listen(u url.URL, m *tlsconfig.Material, flags, kind string, protos ...string) (net.Listener, error) {
	network, addr := "tcp", listenAddr(u)
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		network = "unix"
		// A socket file left by a member that did not stop cleanly.
		_ = os.Remove(addr)
	}
	secure := isSecure(u)
	if secure && m == nil {
		return nil, fmt.Errorf("TLS key/cert (%s) must be provided for %s url %s with HTTPS scheme", flags, kind, u.String())
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", u.String(), err)
	}
	if secure {
		l = tls.NewListener(l, m.ServerConfig(protos...))
	}
	return l, nil
}

// clientListeners opens the client URLs. With --listen-client-http-urls,
// as in etcd, the client URLs serve gRPC only and the HTTP URLs serve the
// gateway (which calls the first client URL), /health and /version; a URL
// in both lists is refused with etcd's error. On error the listeners
// opened so far are returned for the caller to close.
func clientListeners(cfg *Config, m *tlsconfig.Material) ([]api.Listener, error) {
	for _, h := range cfg.ListenClientHTTPURLs {
		for _, u := range cfg.ListenClientURLs {
			if listenAddr(h) == listenAddr(u) {
				return nil, fmt.Errorf("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url %s", h.String())
			}
		}
	}
	split := len(cfg.ListenClientHTTPURLs) > 0
	var ls []api.Listener
	for _, u := range cfg.ListenClientURLs {
		traffic, protos := api.GRPCAndHTTP, []string{"h2", "http/1.1"}
		if split {
			traffic, protos = api.GRPCOnly, []string{"h2"}
		}
		l, err := listen(u, m, "--cert-file, --key-file", "client", protos...)
		if err != nil {
			return ls, err
		}
		ls = append(ls, api.Listener{Listener: l, Traffic: traffic, Secure: isSecure(u), GatewayTLS: loopbackTLS(m, u)})
	}
	if !split {
		return ls, nil
	}
	if len(ls) == 0 {
		return nil, errors.New("--listen-client-http-urls needs at least one --listen-client-urls to serve gRPC")
	}
	for _, u := range cfg.ListenClientHTTPURLs {
		l, err := listen(u, m, "--cert-file, --key-file", "client", "http/1.1")
		if err != nil {
			return ls, err
		}
		ls = append(ls, api.Listener{Listener: l, Traffic: api.HTTPOnly, Secure: isSecure(u), GatewayAddr: ls[0].Addr(), GatewayTLS: ls[0].GatewayTLS})
	}
	return ls, nil
}

// listenAddr is the address u binds: host:port, or a socket path.
func listenAddr(u url.URL) string {
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		return u.Host + u.Path
	}
	return u.Host
}

// loopbackTLS is the HTTP gateway's config for dialling its own gRPC
// server on u: nil for a plaintext URL.
func loopbackTLS(m *tlsconfig.Material, u url.URL) *tls.Config {
	if m == nil || (u.Scheme != "https" && u.Scheme != "unixs") {
		return nil
	}
	return m.LoopbackConfig()
}

// clientDialTLS is how this member dials other members' https client
// URLs (the console's status relay): its client certificate, verifying
// theirs against --trusted-ca-file.
func clientDialTLS(m *tlsconfig.Material) *tls.Config {
	if m == nil {
		return nil
	}
	return m.ClientConfig()
}

func anySecure(lists ...[]url.URL) bool {
	for _, us := range lists {
		if slices.ContainsFunc(us, isSecure) {
			return true
		}
	}
	return false
}

func isSecure(u url.URL) bool { return u.Scheme == "https" || u.Scheme == "unixs" }

// errMetricsTLS is etcd's error, word for word, for an https metrics URL
// without --cert-file and --key-file.
var errMetricsTLS = errors.New("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")
