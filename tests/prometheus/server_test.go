package prometheus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireEnv makes missing Prometheus tools a failure instead of a skip.
const requireEnv = "CAIRN_REQUIRE_PROMETHEUS"

// tools returns the paths of prometheus and promtool. Without them the
// test skips, or fails when CAIRN_REQUIRE_PROMETHEUS=1.
func tools(t *testing.T) (prometheus, promtool string) {
	t.Helper()
	var missing []string
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		missing = append(missing, "prometheus")
	}
	promtool, err = exec.LookPath("promtool")
	if err != nil {
		missing = append(missing, "promtool")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s not on PATH (scripts/install-tools.sh installs Debian's prometheus package)", strings.Join(missing, " and "))
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s, and %s=1", msg, requireEnv)
		}
		t.Skip(msg)
	}
	return prometheus, promtool
}

// repoFile is the absolute path of a file of the repository, which this
// package sits two levels below.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs a tool to completion and fails the test, with its output,
// if it does not succeed.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// server is a Prometheus process the test started, and a client of its
// HTTP API.
type server struct {
	URL  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited
	http *http.Client
}

// startAttempts bounds how often startPrometheus picks another port when
// something took the one it picked before Prometheus could listen.
const startAttempts = 3

// startPrometheus runs prometheus with the config file, its TSDB under
// dir, on a free loopback port (never the packaged service's 9090), and
// waits until it is ready. The process is stopped by its PID when the
// test ends.
func startPrometheus(t *testing.T, bin, config, dir string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := launch(t, bin, config, filepath.Join(dir, fmt.Sprintf("tsdb%d", attempt)))
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == startAttempts {
			t.Fatal(err)
		}
		t.Logf("prometheus: %v; retrying on another port", err)
	}
}

func launch(t *testing.T, bin, config, tsdb string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &server{
		URL:  "http://" + addr,
		out:  &syncBuffer{},
		done: make(chan struct{}),
		http: &http.Client{Timeout: 10 * time.Second},
	}
	s.cmd = exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+tsdb,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("prometheus: start: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("prometheus exited while starting: %s\n%s", s.cmd.ProcessState, s.out)
		default:
		}
		if resp, err := s.http.Get(s.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop(t)
			return nil, fmt.Errorf("prometheus not ready on %s within 30s:\n%s", addr, s.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the process by its PID: SIGTERM, then SIGKILL if it has not
// exited within 10 seconds. It logs Prometheus's output if the test failed.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if t.Failed() {
		t.Logf("prometheus output:\n%s", s.out)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// apiResponse is the envelope of every /api/v1 answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// api calls an /api/v1 endpoint (a GET, or a POST when form is not nil)
// and decodes its data into v.
func (s *server) api(ctx context.Context, path string, form url.Values, v any) error {
	method, body := http.MethodGet, io.Reader(nil)
	if form != nil {
		method, body = http.MethodPost, strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/api/v1/"+path, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s: decode: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func (s sample) String() string { return fmt.Sprintf("%v %v", s.Metric, s.Value[1]) }

// query evaluates expr now. An expression that does not parse is an
// error (Prometheus's bad_data).
func (s *server) query(ctx context.Context, expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.api(ctx, "query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var v []sample
		err := json.Unmarshal(data.Result, &v)
		return v, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(data.Result, &v)
		return []sample{{Value: v}}, err
	}
	return nil, fmt.Errorf("query %q: result type %s", expr, data.ResultType)
}

// target is one scrape target of /api/v1/targets.
type target struct {
	ScrapeURL string `json:"scrapeUrl"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (s *server) targets(ctx context.Context) ([]target, error) {
	var data struct {
		ActiveTargets []target `json:"activeTargets"`
	}
	err := s.api(ctx, "targets", nil, &data)
	return data.ActiveTargets, err
}

// rule is one alerting rule of /api/v1/rules, as Prometheus evaluates it.
type rule struct {
	Name           string    `json:"name"`
	Query          string    `json:"query"`
	Health         string    `json:"health"` // ok, err, unknown (not yet evaluated)
	LastError      string    `json:"lastError"`
	State          string    `json:"state"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

func (s *server) rules(ctx context.Context) ([]rule, error) {
	var data struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := s.api(ctx, "rules?type=alert", nil, &data); err != nil {
		return nil, err
	}
	var out []rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// alert is one active (pending or firing) alert of /api/v1/alerts.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (s *server) alerts(ctx context.Context) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	err := s.api(ctx, "alerts", nil, &data)
	return data.Alerts, err
}

// syncBuffer collects a process's output, written from the goroutines
// os/exec copies it with.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
