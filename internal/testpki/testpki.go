// Package testpki makes certificate authorities, certificates and CRLs for
// tests with crypto/x509, written to a test's temp dir, so that no
// certificate is checked in to expire later. It is for tests only: keys are
// ECDSA P-256 and written unencrypted.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that signs leaves.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	dir     string
	t       testing.TB
}

// Leaf is a certificate and key on disk.
type Leaf struct {
	Cert              *x509.Certificate
	CertFile, KeyFile string
}

// nextSerial is a random 128-bit serial: unique without shared state, so
// parallel tests may issue certificates at once.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return n
}

// NewCA makes a self-signed CA named cn; its files go under dir.
func NewCA(t testing.TB, dir, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), dir: dir, t: t}
}

// Opts shape a leaf.
type Opts struct {
	// Hosts are IP or DNS SANs; default 127.0.0.1 and localhost.
	Hosts []string
	// NoSANs leaves the SANs out entirely.
	NoSANs bool
	// NotAfter, if set, replaces the default validity of one day
	// (a time in the past makes an expired certificate).
	NotAfter time.Time
}

// Issue signs a server-and-client certificate for cn, written as
// dir/name.crt and dir/name.key.
func (ca *CA) Issue(name, cn string, o Opts) *Leaf {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if !o.NotAfter.IsZero() {
		tmpl.NotAfter = o.NotAfter
		if o.NotAfter.Before(tmpl.NotBefore) {
			tmpl.NotBefore = o.NotAfter.Add(-time.Hour)
		}
	}
	hosts := o.Hosts
	if hosts == nil {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	if !o.NoSANs {
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{CertFile: filepath.Join(ca.dir, name+".crt"), KeyFile: filepath.Join(ca.dir, name+".key")}
	l.Cert, _ = x509.ParseCertificate(der)
	WriteAtomic(t, l.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	WriteAtomic(t, l.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	return l
}

// WriteCRL writes a CRL revoking leaves to path in DER, the only form
// etcd reads.
func (ca *CA) WriteCRL(path string, leaves ...*Leaf) {
	ca.t.Helper()
	WriteAtomic(ca.t, path, ca.crl(leaves))
}

// WriteCRLPEM is WriteCRL in PEM, which Cairn also reads.
func (ca *CA) WriteCRLPEM(path string, leaves ...*Leaf) {
	ca.t.Helper()
	WriteAtomic(ca.t, path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: ca.crl(leaves)}))
}

func (ca *CA) crl(leaves []*Leaf) []byte {
	t := ca.t
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, l := range leaves {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: l.Cert.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    nextSerial(),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// WriteBundle writes the PEM certificates of cas to path, as one bundle.
func WriteBundle(t testing.TB, path string, cas ...*CA) {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.CertPEM...)
	}
	WriteAtomic(t, path, b)
}

// WriteAtomic replaces path with b by a rename, as rotation tools do, so
// a reader never sees half a file.
func WriteAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
