package compat

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// The TLS run's certificates are made at test time, so none is checked in
// to expire later. They are laid out as kubeadm lays out pki/etcd/ (with
// three extra client certificates that must be refused), all in one
// directory, and both servers get the same files: etcdctl then prints the
// same paths, names and serials against either, and only the addresses
// differ.
const (
	pkiCA           = "ca.crt"                    // the CA both servers trust and etcdctl trusts with --cacert
	pkiServerCert   = "server.crt"                // client and peer URLs: SANs 127.0.0.1, localhost
	pkiServerKey    = "server.key"                //
	pkiClientCert   = "apiserver-etcd-client.crt" // the good client certificate
	pkiClientKey    = "apiserver-etcd-client.key" //
	pkiOtherCA      = "other-ca.crt"              // a CA nobody trusts
	pkiStrangerCert = "stranger-client.crt"       // signed by other-ca
	pkiStrangerKey  = "stranger-client.key"       //
	pkiExpiredCert  = "expired-client.crt"        // signed by ca, expired an hour ago
	pkiExpiredKey   = "expired-client.key"        //
	pkiRevokedCert  = "revoked-client.crt"        // signed by ca, listed in ca.crl
	pkiRevokedKey   = "revoked-client.key"        //
	pkiCRL          = "ca.crl"                    // DER, the only form etcd reads
)

// certAuthority signs the leaves of one PKI.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// writePKI writes every file named above into dir.
func writePKI(dir string) error {
	ca, err := newCA("etcd-ca")
	if err != nil {
		return err
	}
	other, err := newCA("other-ca")
	if err != nil {
		return err
	}
	now := time.Now()
	day := now.Add(24 * time.Hour)
	if err := writePEM(dir, pkiCA, "CERTIFICATE", ca.cert.Raw); err != nil {
		return err
	}
	if err := writePEM(dir, pkiOtherCA, "CERTIFICATE", other.cert.Raw); err != nil {
		return err
	}
	// A serial is part of what the server may print about a refused
	// certificate, so each is fixed rather than random.
	leaves := []struct {
		ca              *certAuthority
		serial          int64
		cn              string
		sans            bool
		notAfter        time.Time
		certFile, kFile string
	}{
		{ca, 2, "compat", true, day, pkiServerCert, pkiServerKey},
		{ca, 3, "kube-apiserver-etcd-client", false, day, pkiClientCert, pkiClientKey},
		{other, 4, "stranger", false, day, pkiStrangerCert, pkiStrangerKey},
		{ca, 5, "expired", false, now.Add(-time.Hour), pkiExpiredCert, pkiExpiredKey},
		{ca, 6, "revoked", false, day, pkiRevokedCert, pkiRevokedKey},
	}
	var revoked *x509.Certificate
	for _, l := range leaves {
		c, err := l.ca.issue(dir, l.serial, l.cn, l.sans, l.notAfter, l.certFile, l.kFile)
		if err != nil {
			return err
		}
		if l.certFile == pkiRevokedCert {
			revoked = c
		}
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: now.Add(-time.Minute),
		NextUpdate: day,
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: revoked.SerialNumber, RevocationTime: now.Add(-time.Minute)},
		},
	}, ca.cert, ca.key)
	if err != nil {
		return fmt.Errorf("pki: CRL: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, pkiCRL), crl, 0o600)
}

// newCA makes a self-signed ECDSA P-256 CA named cn.
func newCA(cn string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key}, nil
}

// issue signs a leaf for cn, usable as server and client (etcd's
// --peer-client-cert-auth needs both), with the SANs 127.0.0.1 and
// localhost if sans, and writes it and its key into dir.
func (ca *certAuthority) issue(dir string, serial int64, cn string, sans bool, notAfter time.Time, certFile, keyFile string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if sans {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writePEM(dir, certFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if err := writePEM(dir, keyFile, "EC PRIVATE KEY", kb); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func writePEM(dir, name, typ string, der []byte) error {
	return os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
