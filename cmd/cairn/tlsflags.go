package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/tlsconfig"
)

// tlsSettings holds etcd 3.7's TLS flags as given, until finish turns
// them into the server's tlsconfig.Info values.
type tlsSettings struct {
	certFile, keyFile, clientCertFile, clientKeyFile string
	trustedCA, crlFile, allowedHostname              string
	clientCertAuth, autoTLS                          bool

	peerCertFile, peerKeyFile, peerClientCertFile, peerClientKeyFile string
	peerTrustedCA, peerCRLFile, peerAllowedCN, peerAllowedHostname   string
	peerClientCertAuth, peerAutoTLS, peerSkipSAN                     bool

	validityYears                        uint
	cipherSuites, minVersion, maxVersion string
	metricsURLs                          []url.URL
}

// registerTLS defines the TLS flags with etcd's names and defaults.
func registerTLS(fs *flag.FlagSet, t *tlsSettings, def func(string)) {
	str := func(p *string, name, help string) { fs.StringVar(p, name, *p, help); def(name) }
	boo := func(p *bool, name, help string) { fs.BoolVar(p, name, *p, help); def(name) }
	str(&t.certFile, "cert-file", "Path to the client server TLS cert file.")
	str(&t.keyFile, "key-file", "Path to the client server TLS key file.")
	str(&t.clientCertFile, "client-cert-file", "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required.")
	str(&t.clientKeyFile, "client-key-file", "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required.")
	boo(&t.clientCertAuth, "client-cert-auth", "Enable client cert authentication.")
	str(&t.crlFile, "client-crl-file", "Path to the client certificate revocation list file.")
	str(&t.allowedHostname, "client-cert-allowed-hostname", "Comma-separated list of SAN hostnames for client cert authentication.")
	str(&t.trustedCA, "trusted-ca-file", "Path to the client server TLS trusted CA cert file.")
	boo(&t.autoTLS, "auto-tls", "Client TLS using generated certificates")
	str(&t.peerCertFile, "peer-cert-file", "Path to the peer server TLS cert file.")
	str(&t.peerKeyFile, "peer-key-file", "Path to the peer server TLS key file.")
	str(&t.peerClientCertFile, "peer-client-cert-file", "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required.")
	str(&t.peerClientKeyFile, "peer-client-key-file", "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required.")
	boo(&t.peerClientCertAuth, "peer-client-cert-auth", "Enable peer client cert authentication.")
	str(&t.peerTrustedCA, "peer-trusted-ca-file", "Path to the peer server TLS trusted CA file.")
	str(&t.peerAllowedCN, "peer-cert-allowed-cn", "Comma-separated list of allowed CNs for inter-peer TLS authentication.")
	str(&t.peerAllowedHostname, "peer-cert-allowed-hostname", "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.")
	boo(&t.peerAutoTLS, "peer-auto-tls", "Peer TLS using generated certificates")
	boo(&t.peerSkipSAN, "peer-skip-client-san-verification", "Skip verification of SAN field in client certificate for peer connections.")
	str(&t.peerCRLFile, "peer-crl-file", "Path to the peer certificate revocation list file.")
	t.validityYears = 1
	fs.UintVar(&t.validityYears, "self-signed-cert-validity", 1, "The validity period of the client and peer certificates, unit is year")
	def("self-signed-cert-validity")
	str(&t.cipherSuites, "cipher-suites", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).")
	t.minVersion = "TLS1.2"
	str(&t.minVersion, "tls-min-version", "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.")
	str(&t.maxVersion, "tls-max-version", "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to Go).")
	fs.Var(&urlsValue{&t.metricsURLs}, "listen-metrics-urls", "List of URLs to listen on for the metrics and health endpoints.")
	def("listen-metrics-urls")
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// finishTLS validates the TLS flags with etcd's rules and errors and sets
// cfg.ClientTLS, cfg.PeerTLS and cfg.ListenMetricsURLs.
func (t *tlsSettings) finish(cfg *server.Config) error {
	suites, err := tlsconfig.ParseCipherSuites(splitList(t.cipherSuites))
	if err != nil {
		return err
	}
	minV, maxV, err := tlsconfig.CheckVersions(t.minVersion, t.maxVersion, suites)
	if err != nil {
		return err
	}
	client := &tlsconfig.Info{
		CertFile: t.certFile, KeyFile: t.keyFile,
		ClientCertFile: t.clientCertFile, ClientKeyFile: t.clientKeyFile,
		TrustedCAFile: t.trustedCA, ClientCertAuth: t.clientCertAuth, CRLFile: t.crlFile,
		AllowedHostnames: splitList(t.allowedHostname),
	}
	peer := &tlsconfig.Info{
		CertFile: t.peerCertFile, KeyFile: t.peerKeyFile,
		ClientCertFile: t.peerClientCertFile, ClientKeyFile: t.peerClientKeyFile,
		TrustedCAFile: t.peerTrustedCA, ClientCertAuth: t.peerClientCertAuth, CRLFile: t.peerCRLFile,
		AllowedCNs: splitList(t.peerAllowedCN), AllowedHostnames: splitList(t.peerAllowedHostname),
		CheckSAN: !t.peerSkipSAN,
	}
	// As in etcd, auto-TLS applies only when no certificate is given.
	if t.autoTLS && t.certFile == "" {
		ss, err := tlsconfig.SelfSigned(filepath.Join(cfg.DataDir, "fixtures", "client"), hosts(append(slices.Clone(cfg.ListenClientURLs), cfg.ListenClientHTTPURLs...)), t.validityYears)
		if err != nil {
			return fmt.Errorf("auto-tls: %w", err)
		}
		ss.ClientCertAuth = t.clientCertAuth
		client = ss
	}
	if t.peerAutoTLS && t.peerCertFile == "" {
		ss, err := tlsconfig.SelfSigned(filepath.Join(cfg.DataDir, "fixtures", "peer"), hosts(cfg.ListenPeerURLs), t.validityYears)
		if err != nil {
			return fmt.Errorf("peer-auto-tls: %w", err)
		}
		peer = ss
	}
	for _, i := range []*tlsconfig.Info{client, peer} {
		i.CipherSuites, i.MinVersion, i.MaxVersion = suites, minV, maxV
	}
	if !client.Empty() {
		cfg.ClientTLS = client
	}
	if !peer.Empty() {
		cfg.PeerTLS = peer
	}
	cfg.ListenMetricsURLs = t.metricsURLs
	return nil
}

func hosts(us []url.URL) []string {
	out := []string{"localhost", "127.0.0.1"}
	for _, u := range us {
		if h, _, err := net.SplitHostPort(u.Host); err == nil && h != "" {
			out = append(out, h)
		}
	}
	return out
}
