package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
)

// Info is one side's TLS settings (client or peer), in etcd's terms.
type Info struct {
	// CertFile and KeyFile are the certificate served (--cert-file,
	// --peer-cert-file) and, unless ClientCertFile is set, presented when
	// this member dials out.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile, when set, are presented when
	// dialling instead of CertFile/KeyFile (--client-cert-file,
	// --peer-client-cert-file).
	ClientCertFile, ClientKeyFile string
	// TrustedCAFile verifies the other side (--trusted-ca-file). As in
	// etcd, setting it on a server also requires a client certificate.
	TrustedCAFile string
	// ClientCertAuth requires and verifies client certificates
	// (--client-cert-auth, --peer-client-cert-auth).
	ClientCertAuth bool
	// CRLFile lists revoked certificates (--client-crl-file, --peer-crl-file).
	CRLFile string
	// AllowedCNs and AllowedHostnames restrict the client certificates
	// accepted (--peer-cert-allowed-cn, --*-cert-allowed-hostname).
	AllowedCNs, AllowedHostnames []string
	// CheckSAN refuses a client certificate whose IP/DNS SANs do not
	// match the connection's remote address (etcd does it on the peer
	// port unless --peer-skip-client-san-verification).
	CheckSAN bool
	// InsecureSkipVerify, for auto-TLS peers as in etcd: dialling does not
	// verify the server's certificate.
	InsecureSkipVerify bool

	CipherSuites           []uint16
	MinVersion, MaxVersion uint16

	// Logger receives rotation events and reload errors.
	Logger *slog.Logger

	// selfSigned holds auto-TLS material instead of files.
	selfSigned *tls.Certificate
}

// Empty reports whether no TLS material is configured.
func (i *Info) Empty() bool {
	return i == nil || (i.CertFile == "" && i.KeyFile == "" && i.selfSigned == nil)
}

// Material is the loaded, self-reloading form of an Info.
type Material struct {
	info   Info
	cert   *watched[*tls.Certificate]
	client *watched[*tls.Certificate]
	ca     *watched[*x509.CertPool]
	crl    *watched[revoked]
}

// Load reads every file of i, failing with an error that names the
// missing or bad file. The result re-reads them when they change.
func Load(i Info) (*Material, error) {
	if i.Logger == nil {
		i.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Material{info: i}
	var err error
	switch {
	case i.selfSigned != nil:
		c := i.selfSigned
		m.cert = &watched[*tls.Certificate]{val: c, lg: i.Logger}
	case i.CertFile == "" || i.KeyFile == "":
		// etcd's words.
		return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", i.KeyFile, i.CertFile)
	default:
		if m.cert, err = newWatched(i.Logger, "certificate", func() (*tls.Certificate, error) { return loadKeyPair(i.CertFile, i.KeyFile) }, i.CertFile, i.KeyFile); err != nil {
			return nil, fileError("cert-file/key-file", i.CertFile+", "+i.KeyFile, err)
		}
	}
	m.client = m.cert
	if i.ClientCertFile != "" {
		if m.client, err = newWatched(i.Logger, "client certificate", func() (*tls.Certificate, error) { return loadKeyPair(i.ClientCertFile, i.ClientKeyFile) }, i.ClientCertFile, i.ClientKeyFile); err != nil {
			return nil, fileError("client-cert-file/client-key-file", i.ClientCertFile+", "+i.ClientKeyFile, err)
		}
	}
	if i.TrustedCAFile != "" {
		if m.ca, err = newWatched(i.Logger, "trusted CA", func() (*x509.CertPool, error) { return loadPool(i.TrustedCAFile) }, i.TrustedCAFile); err != nil {
			return nil, fileError("trusted-ca-file", i.TrustedCAFile, err)
		}
	}
	if i.CRLFile != "" {
		if m.crl, err = newWatched(i.Logger, "CRL", func() (revoked, error) { return loadCRL(i.CRLFile) }, i.CRLFile); err != nil {
			return nil, fileError("crl-file", i.CRLFile, err)
		}
	}
	return m, nil
}

func (m *Material) getCert() *tls.Certificate {
	if m.cert.paths == nil {
		return m.cert.val
	}
	return m.cert.get()
}

func (m *Material) getClientCert() *tls.Certificate {
	if m.client.paths == nil {
		return m.client.val
	}
	return m.client.get()
}

func (m *Material) base() *tls.Config {
	return &tls.Config{
		MinVersion:   m.info.MinVersion,
		MaxVersion:   m.info.MaxVersion,
		CipherSuites: m.info.CipherSuites,
	}
}

// ServerConfig is the config to serve with. Every handshake takes the
// current certificate, CA pool and CRL (GetConfigForClient), so a file
// replaced on disk applies to the next connection. nextProtos is the ALPN
// list ("h2", "http/1.1").
func (m *Material) ServerConfig(nextProtos ...string) *tls.Config {
	cfg := m.base()
	cfg.NextProtos = nextProtos
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := m.base()
		c.NextProtos = nextProtos
		c.Certificates = []tls.Certificate{*m.getCert()}
		if m.ca != nil || m.info.ClientCertAuth {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		if m.ca != nil {
			c.ClientCAs = m.ca.get()
		}
		remote := ""
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		ctx := hello.Context()
		c.VerifyConnection = func(cs tls.ConnectionState) error { return m.verifyClient(ctx, cs, remote) }
		return c, nil
	}
	return cfg
}

// verifyClient makes etcd's checks beyond the chain: CRL, allowed CN and
// hostname, and (peers) the SANs against the remote address. crypto/tls
// has already verified the chain against ClientCAs.
func (m *Material) verifyClient(ctx context.Context, cs tls.ConnectionState, remote string) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	if m.crl != nil {
		if err := m.crl.get().check(cs.PeerCertificates); err != nil {
			return err
		}
	}
	if len(m.info.AllowedCNs) > 0 && !slices.Contains(m.info.AllowedCNs, leaf.Subject.CommonName) {
		return fmt.Errorf("tls: CommonName authentication failed (got %q, want one of %q)", leaf.Subject.CommonName, m.info.AllowedCNs)
	}
	if len(m.info.AllowedHostnames) > 0 {
		ok := false
		for _, h := range m.info.AllowedHostnames {
			if leaf.VerifyHostname(h) == nil {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("tls: hostname authentication failed (want one of %q)", m.info.AllowedHostnames)
		}
	}
	if m.info.CheckSAN && remote != "" {
		return checkSAN(ctx, leaf, remote)
	}
	return nil
}

// checkSAN is etcd's peer check: a client certificate with IP or DNS SANs
// must name the address it connects from.
func checkSAN(ctx context.Context, cert *x509.Certificate, remote string) error {
	if len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 0 {
		return nil
	}
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return err
	}
	ipErr := cert.VerifyHostname(h)
	if ipErr == nil {
		return nil
	}
	if len(cert.DNSNames) == 0 {
		return ipErr
	}
	for _, name := range cert.DNSNames {
		addrs, _ := net.DefaultResolver.LookupHost(ctx, name)
		if slices.Contains(addrs, h) {
			return nil
		}
	}
	return fmt.Errorf("tls: %q does not match any of DNSNames %q", h, cert.DNSNames)
}

// ClientConfig is the config to dial with. The CA pool is re-read at each
// handshake, so the chain is verified in VerifyConnection against the
// current pool (crypto/tls's own check would pin the pool of the moment the
// config was built); serverName may be empty, then the dialled host is used.
func (m *Material) ClientConfig() *tls.Config {
	cfg := m.base()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return m.getClientCert(), nil
	}
	// Verification is done in VerifyConnection below, against the pool
	// read at this handshake.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if m.info.InsecureSkipVerify {
			return nil
		}
		return m.verifyServer(cs)
	}
	return cfg
}

// LoopbackConfig is for the HTTP gateway's connection to its own gRPC
// server on the same listener: it presents the client certificate (mutual
// TLS still applies) and, as etcd's gateway does, does not verify the
// server certificate, which need not name the loopback address.
func (m *Material) LoopbackConfig() *tls.Config {
	cfg := m.base()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return m.getClientCert(), nil
	}
	cfg.InsecureSkipVerify = true
	return cfg
}

func (m *Material) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
	if m.ca != nil {
		opts.Roots = m.ca.get()
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: failed to verify certificate: %w", err)
	}
	if m.crl != nil {
		return m.crl.get().check(cs.PeerCertificates)
	}
	return nil
}
