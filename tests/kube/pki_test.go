package kube

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
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

// kubeadmPKI is the etcd half of the certificates `kubeadm init` makes
// (cmd/kubeadm/app/phases/certs/certlist.go), generated at test time so
// that nothing checked in can expire: one etcd CA, and for each control
// plane node the files kubeadm puts under /etc/kubernetes/pki. Keys are
// RSA-2048, kubeadm's default encryptionAlgorithm.
//
// The main module's internal/testpki is not used: importing it would put
// the main module (and its dependency versions) into this module's graph.
type kubeadmPKI struct {
	ca    *x509.Certificate
	caKey *rsa.PrivateKey
}

// kubeadm's certificate and key file names, relative to a node's pki
// directory (kubeadmconstants.Etcd*CertName and APIServerEtcdClient*).
const (
	etcdCACert          = "etcd/ca.crt"
	etcdServerCert      = "etcd/server.crt"
	etcdServerKey       = "etcd/server.key"
	etcdPeerCert        = "etcd/peer.crt"
	etcdPeerKey         = "etcd/peer.key"
	etcdHealthcheckCert = "etcd/healthcheck-client.crt"
	etcdHealthcheckKey  = "etcd/healthcheck-client.key"
	apiserverEtcdCert   = "apiserver-etcd-client.crt"
	apiserverEtcdKey    = "apiserver-etcd-client.key"
)

// newKubeadmPKI makes the etcd CA ("etcd-ca", as kubeadm names it).
func newKubeadmPKI(t *testing.T) *kubeadmPKI {
	t.Helper()
	key := rsaKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "etcd-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &kubeadmPKI{ca: ca, caKey: key}
}

// writeNode writes node's pki directory under dir, as kubeadm lays it out
// on a control plane node, and returns its path:
//
//	etcd/ca.crt, etcd/ca.key
//	etcd/server.crt, .key              serving clients (CN node; both usages)
//	etcd/peer.crt, .key                serving and dialing peers (the same)
//	etcd/healthcheck-client.crt, .key  CN kube-etcd-healthcheck-client
//	apiserver-etcd-client.crt, .key    CN kube-apiserver-etcd-client
//
// The server and peer certificates name node, localhost, nodeIP,
// 127.0.0.1 and ::1, as kubeadm's getAltNames does.
func (p *kubeadmPKI) writeNode(t *testing.T, dir, node string, nodeIP net.IP) string {
	t.Helper()
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(filepath.Join(pki, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(pki, etcdCACert), "CERTIFICATE", p.ca.Raw)
	writePEM(t, filepath.Join(pki, "etcd/ca.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(p.caKey))

	dns := []string{node, "localhost"}
	ips := []net.IP{nodeIP, net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.issue(t, pki, etcdServerCert, etcdServerKey, node, both, dns, ips)
	p.issue(t, pki, etcdPeerCert, etcdPeerKey, node, both, dns, ips)
	p.issue(t, pki, etcdHealthcheckCert, etcdHealthcheckKey, "kube-etcd-healthcheck-client", client, nil, nil)
	p.issue(t, pki, apiserverEtcdCert, apiserverEtcdKey, "kube-apiserver-etcd-client", client, nil, nil)
	return pki
}

// issue signs a leaf for cn with the CA and writes it to pki/certFile
// and pki/keyFile.
func (p *kubeadmPKI) issue(t *testing.T, pki, certFile, keyFile, cn string, usages []x509.ExtKeyUsage, dns []string, ips []net.IP) {
	t.Helper()
	key := rsaKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usages,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("sign %s: %v", cn, err)
	}
	writePEM(t, filepath.Join(pki, certFile), "CERTIFICATE", der)
	writePEM(t, filepath.Join(pki, keyFile), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

// clientTLS is the TLS configuration of a client of the node's members
// that presents pki/certFile and pki/keyFile and trusts the etcd CA, as
// etcdctl --cacert --cert --key does.
func clientTLS(t *testing.T, pki, certFile, keyFile string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, certFile), filepath.Join(pki, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, etcdCACert))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", etcdCACert)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, path, blockType string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
