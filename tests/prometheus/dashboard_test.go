package prometheus_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard Cairn ships.
const dashboardFile = "docs/monitoring/cairn-dashboard.json"

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// panelQuery is one query of one panel, named "panel title/refId".
type panelQuery struct {
	Name, Expr string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(repoFile(t, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// queries lists every panel's queries, rows aside.
func (d dashboard) queries() []panelQuery {
	var out []panelQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{Name: p.Title + "/" + tg.RefID, Expr: tg.Expr})
		}
	}
	return out
}

// grafanaVars stand in for what Grafana substitutes before it sends a
// query: the test's job, every instance, and a rate window of a few of
// the test's 1 s scrapes (Grafana's $__rate_interval is at least four).
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "15s",
	"$job", "etcd",
	"$instance", ".+",
)

// metricName matches the metric names of a query (the ones the
// dashboard uses all start with one of these prefixes).
var metricName = regexp.MustCompile(`\b(?:etcd|grpc|process|cairn)_[a-z_]+`)

// TestDashboardHasAQueryInEveryPanel: the Cairn dashboard is JSON that
// Grafana imports (schema ~39, a Prometheus datasource variable, job and
// instance variables) and every panel but the rows has a Prometheus
// query through that variable.
func TestDashboardHasAQueryInEveryPanel(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want a current one (39)", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("templating variable %q: type %q, want %q", name, vars[name], typ)
		}
	}
	n := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		n++
		if p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q query %s is empty", p.Title, tg.RefID)
			}
			if !strings.Contains(tg.Expr, `job=~"$job"`) || !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q query %s does not select $job and $instance: %s", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no panels")
	}
}
