package tlsconfig_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testpki"
	"github.com/cairnkv/cairn/tlsconfig"
)

// serve accepts TLS connections with cfg on loopback, completing each
// handshake and writing the server's verdict back as the first byte.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					_, _ = tc.Write([]byte("k"))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// dial handshakes with addr using cfg and reads the server's byte: a
// refusal by either side is an error.
func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

type pki struct {
	dir          string
	ca           *testpki.CA
	server, user *testpki.Leaf
	bundle       string
}

func newPKI(t *testing.T) *pki {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "ca1")
	p := &pki{dir: dir, ca: ca, bundle: filepath.Join(dir, "ca.crt")}
	p.server = ca.Issue("server", "server", testpki.Opts{})
	p.user = ca.Issue("user", "user", testpki.Opts{})
	testpki.WriteBundle(t, p.bundle, ca)
	return p
}

func load(t *testing.T, i tlsconfig.Info) *tlsconfig.Material {
	t.Helper()
	i.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := tlsconfig.Load(i)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (p *pki) serverMaterial(t *testing.T, extra func(*tlsconfig.Info)) *tlsconfig.Material {
	i := tlsconfig.Info{CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, TrustedCAFile: p.bundle, ClientCertAuth: true}
	if extra != nil {
		extra(&i)
	}
	return load(t, i)
}

func (p *pki) clientConfig(t *testing.T, l *testpki.Leaf) *tls.Config {
	cfg := load(t, tlsconfig.Info{CertFile: l.CertFile, KeyFile: l.KeyFile, TrustedCAFile: p.bundle}).ClientConfig()
	cfg.ServerName = "127.0.0.1"
	return cfg
}

func TestMutualTLSAndServerCertificateReload(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, nil).ServerConfig())
	cli := p.clientConfig(t, p.user)
	st, err := dial(addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if cn := st.PeerCertificates[0].Subject.CommonName; cn != "server" {
		t.Fatalf("server CN %q", cn)
	}
	// Rotate the served certificate in place: the next handshake uses it.
	p.ca.Issue("server", "server-rotated", testpki.Opts{})
	st, err = dial(addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if cn := st.PeerCertificates[0].Subject.CommonName; cn != "server-rotated" {
		t.Fatalf("after rotation, server CN %q", cn)
	}
}

func TestClientWithoutCertificateIsRefused(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, nil).ServerConfig())
	cfg := p.clientConfig(t, p.user)
	cfg.GetClientCertificate = nil
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
}

func TestUntrustedAndExpiredClientsAreRefused(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, nil).ServerConfig())
	other := testpki.NewCA(t, t.TempDir(), "other")
	for name, l := range map[string]*testpki.Leaf{
		"untrusted": other.Issue("u", "u", testpki.Opts{}),
		"expired":   p.ca.Issue("old", "old", testpki.Opts{NotAfter: time.Now().Add(-time.Hour)}),
	} {
		if _, err := dial(addr, p.clientConfig(t, l)); err == nil {
			t.Errorf("%s client certificate accepted", name)
		}
	}
}

func TestUntrustedServerIsRefused(t *testing.T) {
	p := newPKI(t)
	other := testpki.NewCA(t, t.TempDir(), "other")
	bad := other.Issue("s", "s", testpki.Opts{})
	addr := serve(t, load(t, tlsconfig.Info{CertFile: bad.CertFile, KeyFile: bad.KeyFile}).ServerConfig())
	_, err := dial(addr, p.clientConfig(t, p.user))
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("got %v, want an unknown authority error", err)
	}
}

// TestCARotation is the rotation etcd cannot do without a restart: the
// bundle gains the new CA, certificates move to it, the old CA leaves; the
// server and the client each pick up every step at the next handshake.
func TestCARotation(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, nil).ServerConfig())
	ca2 := testpki.NewCA(t, p.dir, "ca2")
	newUser := ca2.Issue("user2", "user2", testpki.Opts{})
	cliOld := p.clientConfig(t, p.user)
	cliNew := p.clientConfig(t, newUser)
	if _, err := dial(addr, cliNew); err == nil {
		t.Fatal("certificate of a CA not yet trusted was accepted")
	}
	testpki.WriteBundle(t, p.bundle, p.ca, ca2)
	for _, c := range []*tls.Config{cliOld, cliNew} {
		if _, err := dial(addr, c); err != nil {
			t.Fatalf("with both CAs in the bundle: %v", err)
		}
	}
	ca2.Issue("server", "server2", testpki.Opts{})
	if _, err := dial(addr, cliNew); err != nil {
		t.Fatalf("server moved to the new CA: %v", err)
	}
	testpki.WriteBundle(t, p.bundle, ca2)
	if _, err := dial(addr, cliNew); err != nil {
		t.Fatalf("new CA only: %v", err)
	}
	if _, err := dial(addr, cliOld); err == nil {
		t.Fatal("old CA's client still accepted after it left the bundle")
	}
}

func TestCRLRevokesAndReloads(t *testing.T) {
	p := newPKI(t)
	crl := filepath.Join(p.dir, "crl.pem")
	p.ca.WriteCRL(crl)
	addr := serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) { i.CRLFile = crl }).ServerConfig())
	cli := p.clientConfig(t, p.user)
	if _, err := dial(addr, cli); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	p.ca.WriteCRLPEM(crl, p.user) // PEM too, where etcd reads only DER
	if _, err := dial(addr, cli); err == nil {
		t.Fatal("revoked certificate accepted")
	}
}

func TestAllowedCNAndHostname(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) { i.AllowedCNs = []string{"member"} }).ServerConfig())
	if _, err := dial(addr, p.clientConfig(t, p.user)); err == nil {
		t.Fatal("wrong CN accepted")
	}
	member := p.ca.Issue("member", "member", testpki.Opts{})
	if _, err := dial(addr, p.clientConfig(t, member)); err != nil {
		t.Fatalf("allowed CN refused: %v", err)
	}
	addr = serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) { i.AllowedHostnames = []string{"m1.example"} }).ServerConfig())
	if _, err := dial(addr, p.clientConfig(t, p.user)); err == nil {
		t.Fatal("wrong hostname accepted")
	}
	m1 := p.ca.Issue("m1", "m1", testpki.Opts{Hosts: []string{"m1.example"}})
	if _, err := dial(addr, p.clientConfig(t, m1)); err != nil {
		t.Fatalf("allowed hostname refused: %v", err)
	}
}

// TestPeerSANMustMatchRemoteAddress: as etcd, a peer certificate with IP
// SANs that do not include the address it connects from is refused.
func TestPeerSANMustMatchRemoteAddress(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) { i.CheckSAN = true }).ServerConfig())
	elsewhere := p.ca.Issue("far", "far", testpki.Opts{Hosts: []string{"10.9.9.9"}})
	if _, err := dial(addr, p.clientConfig(t, elsewhere)); err == nil {
		t.Fatal("peer certificate for 10.9.9.9 accepted from 127.0.0.1")
	}
	if _, err := dial(addr, p.clientConfig(t, p.user)); err != nil {
		t.Fatalf("matching SAN refused: %v", err)
	}
	noSAN := p.ca.Issue("nosan", "nosan", testpki.Opts{NoSANs: true})
	if _, err := dial(addr, p.clientConfig(t, noSAN)); err != nil {
		t.Fatalf("certificate without SANs refused (etcd accepts it): %v", err)
	}
}

func TestBrokenFileKeepsPreviousMaterial(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, nil).ServerConfig())
	cli := p.clientConfig(t, p.user)
	testpki.WriteAtomic(t, p.server.CertFile, []byte("not a certificate"))
	testpki.WriteAtomic(t, p.bundle, []byte("garbage"))
	for i := 0; i < 2; i++ {
		if _, err := dial(addr, cli); err != nil {
			t.Fatalf("handshake %d after broken files: %v", i, err)
		}
	}
}

func TestLoadNamesMissingFile(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(p.dir, "nope.crt")
	_, err := tlsconfig.Load(tlsconfig.Info{CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, TrustedCAFile: missing})
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
	_, err = tlsconfig.Load(tlsconfig.Info{CertFile: missing, KeyFile: p.server.KeyFile})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
	_, err = tlsconfig.Load(tlsconfig.Info{CertFile: p.server.CertFile})
	if err == nil || !strings.Contains(err.Error(), "KeyFile and CertFile must both be present") {
		t.Fatalf("got %v, want etcd's error", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) { i.MaxVersion = tls.VersionTLS12 }).ServerConfig())
	cli := p.clientConfig(t, p.user)
	cli.MinVersion = tls.VersionTLS13
	if _, err := dial(addr, cli); err == nil {
		t.Fatal("TLS 1.3 client reached a TLS 1.2 server")
	}
	cli.MinVersion = 0
	st, err := dial(addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS12 {
		t.Fatalf("negotiated %x, want TLS 1.2", st.Version)
	}
}

func TestCipherSuiteMismatch(t *testing.T) {
	p := newPKI(t)
	suites, err := tlsconfig.ParseCipherSuites([]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, p.serverMaterial(t, func(i *tlsconfig.Info) {
		i.CipherSuites, i.MaxVersion = suites, tls.VersionTLS12
	}).ServerConfig())
	cli := p.clientConfig(t, p.user)
	cli.MaxVersion = tls.VersionTLS12
	cli.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	if _, err := dial(addr, cli); err == nil {
		t.Fatal("handshake with no common cipher suite succeeded")
	}
	cli.CipherSuites = suites
	if _, err := dial(addr, cli); err != nil {
		t.Fatal(err)
	}
}

func TestVersionRules(t *testing.T) {
	for _, c := range []struct {
		min, max string
		suites   []uint16
		err      string
	}{
		{"TLS1.2", "", nil, ""},
		{"TLS1.3", "TLS1.2", nil, "min version (TLS1.3) is greater than max version (TLS1.2)"},
		{"TLS1.3", "", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, "cipher suites cannot be configured when only TLS1.3 is enabled"},
		{"TLS1.0", "", nil, `unexpected TLS version "TLS1.0" (must be one of: TLS1.2, TLS1.3)`},
	} {
		_, _, err := tlsconfig.CheckVersions(c.min, c.max, c.suites)
		if (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("%s..%s: got %v, want %q", c.min, c.max, err, c.err)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	i, err := tlsconfig.SelfSigned(dir, []string{"127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := load(t, *i)
	addr := serve(t, m.ServerConfig())
	st, err := dial(addr, m.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if na := st.PeerCertificates[0].NotAfter; na.Before(time.Now().AddDate(0, 11, 0)) {
		t.Fatalf("self-signed certificate valid until %v, want a year", na)
	}
	// A restart reuses the pair.
	j, err := tlsconfig.SelfSigned(dir, []string{"127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := dial(serve(t, load(t, *j).ServerConfig()), m.ClientConfig())
	if err != nil || !st2.PeerCertificates[0].Equal(st.PeerCertificates[0]) {
		t.Fatalf("restart made a new certificate (%v)", err)
	}
}
