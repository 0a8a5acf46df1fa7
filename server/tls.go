package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"

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
	if !cfg.ClientTLS.Empty() && !anySecure(cfg.ListenClientURLs, cfg.ListenMetricsURLs) {
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
	network, addr := "tcp", u.Host
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		network, addr = "unix", u.Host+u.Path
		// A socket file left by a member that did not stop cleanly.
		_ = os.Remove(addr)
	}
	secure := u.Scheme == "https" || u.Scheme == "unixs"
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

// loopbackTLS is the HTTP gateway's config for dialling its own gRPC
// server on u: nil for a plaintext URL.
func loopbackTLS(m *tlsconfig.Material, u url.URL) *tls.Config {
	if m == nil || (u.Scheme != "https" && u.Scheme != "unixs") {
		return nil
	}
	return m.LoopbackConfig()
}

func anySecure(lists ...[]url.URL) bool {
	for _, us := range lists {
		for _, u := range us {
			if u.Scheme == "https" || u.Scheme == "unixs" {
				return true
			}
		}
	}
	return false
}
