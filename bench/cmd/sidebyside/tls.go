package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// benchPKI is what the TLS rows' servers and clients share: one CA, one
// certificate for 127.0.0.1 that every member serves on its client and
// peer URLs, and one client certificate. Both servers get the same files
// and the same flags (mutual TLS as kubeadm sets it up).
type benchPKI struct {
	ca, cert, key, clientCert, clientKey string
}

// newBenchPKI writes the certificates under dir (ECDSA P-256, valid for a
// day: made for the run, never checked in).
func newBenchPKI(dir string) (*benchPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &benchPKI{ca: filepath.Join(dir, "ca.crt")}
	if err := writePEM(p.ca, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	issue := func(serial int64, name string, ips []net.IP) (string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", "", err
		}
		cert, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := writePEM(cert, "CERTIFICATE", der); err != nil {
			return "", "", err
		}
		return cert, keyFile, writePEM(keyFile, "EC PRIVATE KEY", kb)
	}
	if p.cert, p.key, err = issue(2, "member", []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, err
	}
	if p.clientCert, p.clientKey, err = issue(3, "client", nil); err != nil {
		return nil, err
	}
	return p, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// serverFlags are the member flags of a TLS row, the same for both
// servers.
func (p *benchPKI) serverFlags() []string {
	return []string{
		"--cert-file=" + p.cert, "--key-file=" + p.key, "--trusted-ca-file=" + p.ca, "--client-cert-auth",
		"--peer-cert-file=" + p.cert, "--peer-key-file=" + p.key, "--peer-trusted-ca-file=" + p.ca, "--peer-client-cert-auth",
	}
}

// benchFlags are etcd benchmark tool's TLS flags.
func (p *benchPKI) benchFlags() []string {
	return []string{"--cacert=" + p.ca, "--cert=" + p.clientCert, "--key=" + p.clientKey}
}

// clientConfig is the harness's own clients' TLS (setup, readiness).
func (p *benchPKI) clientConfig() (*tls.Config, error) {
	b, err := os.ReadFile(p.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", p.ca)
	}
	c, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}}, nil
}
