package compat

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWritePKI pins what the TLS run relies on: the good certificates
// chain to ca.crt and serve 127.0.0.1 and localhost, the stranger does
// not chain, the expired one has expired, and ca.crl (DER) revokes exactly
// the revoked one.
func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	if err := writePKI(dir); err != nil {
		t.Fatal(err)
	}
	load := func(name string) *x509.Certificate {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	roots := x509.NewCertPool()
	roots.AddCert(load(pkiCA))
	verify := func(name string, usage x509.ExtKeyUsage, host string) error {
		_, err := load(name).Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if err := verify(pkiServerCert, x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if err := verify(pkiServerCert, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("server certificate as a peer client (--peer-client-cert-auth): %v", err)
	}
	for _, name := range []string{pkiClientCert, pkiRevokedCert} {
		if err := verify(name, x509.ExtKeyUsageClientAuth, ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := verify(pkiStrangerCert, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Errorf("%s chains to %s", pkiStrangerCert, pkiCA)
	}
	if c := load(pkiExpiredCert); !c.NotAfter.Before(time.Now()) {
		t.Errorf("%s is valid until %v", pkiExpiredCert, c.NotAfter)
	}

	der, err := os.ReadFile(filepath.Join(dir, pkiCRL))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der) // as etcd reads it: DER only
	if err != nil {
		t.Fatalf("%s: %v", pkiCRL, err)
	}
	if err := crl.CheckSignatureFrom(load(pkiCA)); err != nil {
		t.Errorf("%s is not signed by %s: %v", pkiCRL, pkiCA, err)
	}
	revoked := load(pkiRevokedCert).SerialNumber
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(revoked) != 0 {
		t.Errorf("%s revokes %v, want only serial %v", pkiCRL, crl.RevokedCertificateEntries, revoked)
	}
}
