package prometheus_test

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v2"
)

// The etcd mixin's rules as Cairn ships them, and the mixin's promtool
// unit tests of them.
const (
	rulesFile     = "docs/monitoring/etcd-mixin-alerts.yaml"
	rulesTestFile = "docs/monitoring/etcd-mixin-test.yaml"
)

// alertRule is one rule of a Prometheus rules file.
type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
	For   string `yaml:"for"`
}

func loadRules(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(repoFile(t, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return out
}

// ruleExpr is the expression of the alert named name.
func ruleExpr(t *testing.T, rules []alertRule, name string) string {
	t.Helper()
	for _, r := range rules {
		if r.Alert == name {
			return r.Expr
		}
	}
	t.Fatalf("%s has no alert %s", rulesFile, name)
	return ""
}

// TestMixinRulesPassPromtool: promtool accepts the rendered rules and
// they pass the etcd mixin's own unit tests.
func TestMixinRulesPassPromtool(t *testing.T) {
	_, promtool := tools(t)
	t.Log(run(t, promtool, "check", "rules", repoFile(t, rulesFile)))
	t.Log(run(t, promtool, "test", "rules", repoFile(t, rulesTestFile)))
}
