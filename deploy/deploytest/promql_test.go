package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promExpr is one PromQL expression of the alert rules or the dashboard,
// and where it is written, for messages.
type promExpr struct {
	where string
	expr  string
	// alert: the expression of an alerting rule, which must be a vector.
	alert bool
}

// selector is one series selector of an expression: a metric name and the
// labels its matchers name.
type selector struct {
	metric string
	labels []string
}

// promParser is Prometheus' own PromQL parser, with the options a default
// Prometheus server runs with.
var promParser = parser.NewParser(parser.Options{})

// parsePromQL parses e with Prometheus' parser and returns its series
// selectors; a parse error, an alert that is no vector, or a selector with
// no metric name fails t.
func parsePromQL(t *testing.T, e promExpr) []selector {
	t.Helper()
	expr, err := promParser.ParseExpr(e.expr)
	if err != nil {
		t.Errorf("%s: PromQL %q does not parse: %v", e.where, e.expr, err)
		return nil
	}
	if e.alert && expr.Type() != parser.ValueTypeVector {
		t.Errorf("%s: PromQL %q is a %s; an alert's expression must be an instant vector", e.where, e.expr, expr.Type())
	}
	var sels []selector
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			switch {
			case m.Name == labels.MetricName && m.Type == labels.MatchEqual:
				s.metric = m.Value
			case m.Name != labels.MetricName:
				s.labels = append(s.labels, m.Name)
			}
		}
		if s.metric == "" {
			t.Errorf("%s: selector %s in %q names no metric", e.where, vs, e.expr)
			return nil
		}
		sels = append(sels, s)
		return nil
	})
	return sels
}

// ruleExprs are the expressions of the PrometheusRule that deploy/k8s/base
// builds (the overlays do not change it).
func ruleExprs(t *testing.T) []promExpr {
	t.Helper()
	var out []promExpr
	for _, r := range build(t, "base").rules {
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				name := rule.Alert
				if name == "" {
					name = "record " + rule.Record
				}
				out = append(out, promExpr{where: "PrometheusRule " + r.Name + ": " + name, expr: rule.Expr, alert: rule.Alert != ""})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the base builds no PrometheusRule with rules")
	}
	return out
}

// The Grafana dashboard, as much of its JSON model as the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type templateVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *datasourceRef  `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	AllValue   string          `json:"allValue"`
}

// query is a query variable's PromQL: Grafana stores it as a string or
// as {"query": "..."}.
func (v templateVar) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

const dashboardFile = "deploy/grafana/slotwatch.json"

// dsInput is the datasource input the dashboard asks for on import.
const dsInput = "DS_PROMETHEUS"

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels are the dashboard's panels, those inside collapsed rows too.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaBuiltins are the variables Grafana fills in by itself, each with
// a value of the kind it stands for, so the expression parses as it would
// once Grafana has filled it in.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m", "__interval": "30s", "__range": "6h",
	"__interval_ms": "30000", "__range_s": "21600", "__range_ms": "21600000",
}

var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// expandGrafana fills in the dashboard's variables (a multi-value variable
// with its allValue, as "All" selects) and Grafana's own; a variable the
// dashboard does not define fails t.
func expandGrafana(t *testing.T, where, expr string, vars map[string]string) string {
	t.Helper()
	return grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		t.Errorf("%s: %q uses $%s, which neither the dashboard nor Grafana defines", where, expr, name)
		return m
	})
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)

// dashboardExprs are the PromQL expressions of every panel and query
// variable of the dashboard, its variables filled in. A variable's
// label_values(selector, label) contributes its selector, label included.
func dashboardExprs(t *testing.T, d dashboard) []promExpr {
	t.Helper()
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = cmpOr(v.AllValue, ".*")
	}
	var out []promExpr
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("%s: variable %s", dashboardFile, v.Name)
		m := labelValuesRE.FindStringSubmatch(v.query())
		if m == nil {
			t.Errorf("%s: query %q is not label_values(<selector>, <label>)", where, v.query())
			continue
		}
		sel := expandGrafana(t, where, m[1], vars)
		if !strings.Contains(sel, "{") {
			sel += "{}"
		}
		// The label must be one the series carry: select on it.
		out = append(out, promExpr{where: where, expr: strings.TrimSuffix(sel, "}") + sepIfLabels(sel) + m[2] + `!=""}`})
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s: panel %q query %s", dashboardFile, p.Title, tg.RefID)
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: no expr", where)
				continue
			}
			out = append(out, promExpr{where: where, expr: expandGrafana(t, where, tg.Expr, vars)})
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sepIfLabels is the comma that goes before one more matcher in sel.
func sepIfLabels(sel string) string {
	if strings.HasSuffix(strings.TrimSpace(sel), "{}") {
		return ""
	}
	return ","
}

// docsFile is the runbook, whose promql blocks operators paste.
const docsFile = "docs/OPERATIONS.md"

// docsExprs are the lines of every ```promql block of the runbook, one
// expression a line ('#' comments are PromQL's own).
func docsExprs(t *testing.T) []promExpr {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), docsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []promExpr
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```promql"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "":
			out = append(out, promExpr{where: fmt.Sprintf("%s:%d", docsFile, i+1), expr: line})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no promql block", docsFile)
	}
	return out
}

// TestRunbookPromQLParses: what operators paste from the runbook parses.
func TestRunbookPromQLParses(t *testing.T) {
	t.Parallel()
	for _, e := range docsExprs(t) {
		parsePromQL(t, e)
	}
}

// TestParsePromQLFindsEverySelector guards the walk the metric check is
// built on: if it stopped finding selectors, that check would pass on
// anything.
func TestParsePromQLFindsEverySelector(t *testing.T) {
	t.Parallel()
	got := parsePromQL(t, promExpr{where: "guard", expr: `sum by (mission) (rate(a_total{outcome="x", mission=~".*"}[5m]))
		/ on() group_left max(b) and histogram_quantile(0.9, sum by (le) (rate({__name__="c_bucket"}[5m])))`})
	want := []selector{{"a_total", []string{"outcome", "mission"}}, {"b", nil}, {"c_bucket", nil}}
	if !slices.EqualFunc(got, want, func(a, b selector) bool { return a.metric == b.metric && slices.Equal(a.labels, b.labels) }) {
		t.Errorf("selectors = %v, want %v", got, want)
	}
	if _, err := promParser.ParseExpr(`sum(rate(a_total[5m])`); err == nil {
		t.Error("the parser accepts unbalanced parentheses")
	}
}

// TestDashboardIsImportable: the dashboard JSON is what Grafana's import
// takes, asking for the Prometheus datasource, with panels that fit the
// grid and do not overlap, and it shows what the operators asked for.
func TestDashboardIsImportable(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed (links and provisioning use the uid)", d.UID, d.Title)
	}
	// Grafana 9.x and later write schemaVersion 36 and above; older ones
	// migrate the panels on import.
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want 36 or above", d.SchemaVersion)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != dsInput || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one Prometheus datasource input %s", d.Inputs, dsInput)
	}
	wantDS := func(where string, ds *datasourceRef) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != "${"+dsInput+"}" {
			t.Errorf("%s: datasource %+v, want {prometheus ${%s}}", where, ds, dsInput)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			wantDS("variable "+v.Name, v.Datasource)
		}
	}
	ids := map[int]bool{}
	var placed []panel
	for _, p := range d.allPanels() {
		what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("%s: id missing or used twice", what)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is outside the 24-column grid", what, g)
		}
		for _, o := range placed {
			og := o.GridPos
			if g.X < og.X+og.W && og.X < g.X+g.W && g.Y < og.Y+og.H && og.Y < g.Y+g.H {
				t.Errorf("%s overlaps panel %d %q", what, o.ID, o.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		wantDS(what, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", what)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			wantDS(what+" query "+tg.RefID, tg.Datasource)
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q missing or used twice", what, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}

	shown := map[string]bool{}
	for _, e := range dashboardExprs(t, d) {
		for _, s := range parsePromQL(t, e) {
			shown[s.metric] = true
		}
	}
	for _, want := range []string{
		"slotwatch_pool_accounts",                         // pool states over time
		"slotwatch_pool_acquire_total",                    // leases per second
		"slotwatch_pool_releases_total",                   // release outcomes
		"slotwatch_checker_checks_total",                  // checks per minute per mission, unknown-page share
		"slotwatch_checker_check_duration_seconds_bucket", // check latency
		"slotwatch_requests_claim_lag_seconds_bucket",     // claim lag
		"pgxpool_acquired_conns",                          // the Postgres pool
		"slotwatch_build_info",                            // which build runs
	} {
		if !shown[want] {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
}
