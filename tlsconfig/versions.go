package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// ParseVersion maps etcd's --tls-min-version/--tls-max-version values to
// crypto/tls's: "" is 0 (crypto/tls's default), "TLS1.2" and "TLS1.3".
// The error is etcd's, word for word.
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (must be one of: TLS1.2, TLS1.3)", s)
}

// ParseCipherSuites maps etcd's --cipher-suites names (crypto/tls's names,
// secure or not, plus the two short CHACHA20 names etcd also accepts) to
// their IDs, in the order given.
func ParseCipherSuites(names []string) ([]uint16, error) {
	var out []uint16
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		id, ok := cipherSuite(n)
		if !ok {
			return nil, fmt.Errorf("unexpected TLS cipher suite %q", n)
		}
		out = append(out, id)
	}
	return out, nil
}

func cipherSuite(name string) (uint16, bool) {
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range list {
			if c.Name == name {
				return c.ID, true
			}
		}
	}
	switch name {
	case "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true
	case "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true
	}
	return 0, false
}

// CheckVersions applies etcd's rules to the version flags and the cipher
// suites: min must not exceed max, and cipher suites cannot be configured
// when only TLS 1.3 is allowed (crypto/tls does not let TLS 1.3 suites be
// chosen). The errors are etcd's.
func CheckVersions(minS, maxS string, suites []uint16) (minV, maxV uint16, err error) {
	if minV, err = ParseVersion(minS); err != nil {
		return 0, 0, err
	}
	if maxV, err = ParseVersion(maxS); err != nil {
		return 0, 0, err
	}
	if maxV != 0 && minV > maxV {
		return 0, 0, fmt.Errorf("min version (%s) is greater than max version (%s)", minS, maxS)
	}
	if len(suites) > 0 && minV == tls.VersionTLS13 {
		return 0, 0, fmt.Errorf("cipher suites cannot be configured when only TLS1.3 is enabled")
	}
	return minV, maxV, nil
}
