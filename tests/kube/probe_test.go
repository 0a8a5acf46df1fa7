package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// kubeletProbes are the GETs the kubelet sends to a kubeadm etcd member's
// metrics URL: /livez (liveness) and /readyz (readiness and startup) since
// kubeadm 1.32 (kubernetes/kubeadm#3039), and the liveness probe before
// that, which must also say "health":"true".
var kubeletProbes = []string{"/livez", "/readyz", "/health?exclude=NOSPACE&serializable=true"}

// probeClient is the kubelet's side of the probes: plain HTTP, and it
// gives up after a while (kubeadm's probes time out after 15s).
var probeClient = &http.Client{Timeout: 5 * time.Second}

// probe sends one kubelet probe to the member's metrics URL; nil means
// the kubelet would count it a success.
func (m *member) probe(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.metricsURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if strings.HasPrefix(path, "/health") {
		var h struct {
			Health string `json:"health"`
		}
		if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
			return fmt.Errorf("GET %s: 200 %s, want health true", path, strings.TrimSpace(string(body)))
		}
	}
	return nil
}

// waitProbes waits until every running member answers every kubelet
// probe, as the kubelet would wait for a member to be ready after it
// started or after a leader election, and fails the test if that takes
// longer than timeout.
func (c *cluster) waitProbes(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	for _, m := range c.members {
		if !m.proc.running() {
			continue
		}
		for _, path := range kubeletProbes {
			var err error
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = m.probe(ctx, path)
				cancel()
				if err == nil || time.Since(start) > timeout {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("member %s: kubelet probe still failing after %v: %v", m.name, timeout, err)
			}
		}
	}
	t.Logf("every running member answers %v on its metrics URL (after %v)", kubeletProbes, time.Since(start).Round(time.Millisecond))
}
