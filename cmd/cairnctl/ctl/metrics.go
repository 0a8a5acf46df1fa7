package ctl

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// residentMemoryMetric is the Prometheus gauge check datascale reads: the
// member process's resident memory, which Cairn serves on /metrics of its
// client URLs as etcd does.
const residentMemoryMetric = "process_resident_memory_bytes"

// residentMemory scrapes host's /metrics for the member's resident memory
// in bytes. It returns 0 when it cannot, after saying why on stdout, as
// etcdctl does.
//
// Over https etcdctl presents --cert and --key (and fails without them)
// but trusts only the system's roots, so a cluster with its own CA fails
// unless --insecure-skip-tls-verify is given. cairnctl also trusts
// --cacert, and presents a client certificate only when one is given.
func (c *ctl) residentMemory(host string, sec *clientv3.SecureConfig) float64 {
	if !strings.HasPrefix(host, "http://") && !strings.HasPrefix(host, "https://") {
		host = "http://" + host
	}
	url := host + "/metrics"
	httpc := &http.Client{Timeout: 30 * time.Second}
	if strings.HasPrefix(host, "https://") {
		cfg := &tls.Config{InsecureSkipVerify: sec.InsecureSkipVerify}
		if sec.Cert != "" || sec.Key != "" {
			cert, err := tls.LoadX509KeyPair(sec.Cert, sec.Key)
			if err != nil {
				fmt.Fprintf(c.stdout, "client certificate error: %v\n", err)
				return 0
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		if sec.Cacert != "" {
			pem, err := os.ReadFile(sec.Cacert)
			if err != nil {
				fmt.Fprintf(c.stdout, "CA certificate error: %v\n", err)
				return 0
			}
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AppendCertsFromPEM(pem)
		}
		httpc.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	resp, err := httpc.Get(url)
	if err != nil {
		fmt.Fprintf(c.stdout, "fetch error: %v\n", err)
		return 0
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fmt.Fprintf(c.stdout, "fetch error: reading %s: %v\n", url, err)
		return 0
	}
	v, ok := metricValue(string(b), residentMemoryMetric)
	if !ok {
		fmt.Fprintf(c.stdout, "could not find: %v\n", residentMemoryMetric)
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		fmt.Fprintf(c.stdout, "parse error: %v\n", err)
		return 0
	}
	return f
}

// metricValue finds the first sample line of name in a Prometheus text
// exposition and returns its value as written.
func metricValue(text, name string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
