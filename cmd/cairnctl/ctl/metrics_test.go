package ctl

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const metricsPage = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.3398784e+07
process_virtual_memory_bytes 1.2e+09
`

func TestResidentMemoryReadsTheGauge(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		want       float64
		said       string
	}{
		{"present", metricsPage, 3.3398784e+07, ""},
		{"missing", "process_virtual_memory_bytes 1\n", 0, "could not find: process_resident_memory_bytes\n"},
		{"unparsable", "process_resident_memory_bytes lots\n", 0, "parse error: strconv.ParseFloat: parsing \"lots\": invalid syntax\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metrics" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, tc.page)
			}))
			defer srv.Close()
			var out bytes.Buffer
			c := &ctl{stdout: &out}
			// etcdctl takes an endpoint without a scheme for http.
			got := c.residentMemory(strings.TrimPrefix(srv.URL, "http://"), &clientv3.SecureConfig{})
			if got != tc.want || out.String() != tc.said {
				t.Errorf("got %v, said %q; want %v, %q", got, out.String(), tc.want, tc.said)
			}
		})
	}
}

// Over https cairnctl trusts --cacert, where etcdctl would trust only the
// system's roots (and insist on a client certificate).
func TestResidentMemoryOverHTTPSTrustsTheCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, metricsPage)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &ctl{stdout: &out}
	if got := c.residentMemory(srv.URL, &clientv3.SecureConfig{Cacert: ca}); got != 3.3398784e+07 {
		t.Errorf("with --cacert: got %v, said %q", got, out.String())
	}
	out.Reset()
	if got := c.residentMemory(srv.URL, &clientv3.SecureConfig{}); got != 0 || !strings.HasPrefix(out.String(), "fetch error: ") {
		t.Errorf("without: got %v, said %q; want 0 and a fetch error", got, out.String())
	}
}
