// Package tlsconfig builds the *tls.Config values a member serves and dials
// with, from etcd-style file flags (--cert-file, --key-file,
// --trusted-ca-file, --client-crl-file, --peer-cert-allowed-cn, ...).
//
// It owns: reading certificates, keys, CA bundles and CRLs from disk and
// re-reading them when they change (checked at every handshake, so a
// rotation needs no restart — etcd re-reads only the certificate and key,
// never the CA bundle or CRL); the checks etcd makes on top of chain
// verification (CRL, allowed CN and hostname, a peer certificate's SANs
// against its remote address); self-signed certificates for --auto-tls;
// and etcd's names for cipher suites and TLS versions.
//
// It must never implement cryptography itself: parsing, verification and
// key generation are crypto/tls and crypto/x509's. It never weakens
// verification silently: the only InsecureSkipVerify it sets is paired with
// a VerifyConnection that verifies the chain against the current CA pool,
// or is asked for explicitly (auto-TLS peers, as in etcd). A file that fails
// to parse after a change keeps the previous material in use and logs an
// error; at start-up the same failure is returned and names the file.
package tlsconfig
