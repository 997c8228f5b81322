package chartcheck

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/neo-events/neo-events/internal/metrics"
)

// exported scrapes the worker's metrics, as its /metrics serves them, and
// returns metric family name -> type. Vec metrics only appear once a label
// set exists, so one is made for each, whatever its arity.
func exported(t *testing.T) map[string]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	w := metrics.NewWorker(reg)
	touchAll(t, reflect.ValueOf(w).Elem())

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	types := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, types)
	return types
}

func touchAll(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		m := f.MethodByName("GetMetricWithLabelValues")
		if !m.IsValid() {
			continue
		}
		touched := false
		for arity := 0; arity <= 8 && !touched; arity++ {
			args := make([]reflect.Value, arity)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			out := m.Call(args)
			touched = out[1].IsNil()
		}
		require.True(t, touched, "could not make a label set for metrics.Worker.%s", v.Type().Field(i).Name)
	}
}

// usedExpr is one PromQL expression the chart ships, and where.
type usedExpr struct{ where, expr string }

// chartExprs collects every expression of the rendered alerts, KEDA
// prometheus triggers and dashboards.
func chartExprs(t *testing.T, objs []object) []usedExpr {
	t.Helper()
	var exprs []usedExpr
	for _, pr := range only[*PrometheusRule](objs) {
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, usedExpr{"alert " + r.Alert + r.Record, r.Expr.String()})
			}
		}
	}
	for _, so := range only[*ScaledObject](objs) {
		for _, tr := range so.Spec.Triggers {
			if tr.Type == "prometheus" {
				exprs = append(exprs, usedExpr{"ScaledObject " + so.Name, tr.Metadata["query"]})
			}
		}
	}
	for _, cm := range only[*corev1.ConfigMap](objs) {
		for key, body := range cm.Data {
			if strings.HasSuffix(key, ".json") {
				exprs = append(exprs, dashboardExprs(t, cm.Name+"/"+key, []byte(body))...)
			}
		}
	}
	return exprs
}

// dashboardExprs walks a Grafana dashboard for every "expr" of a target.
func dashboardExprs(t *testing.T, where string, body []byte) []usedExpr {
	t.Helper()
	var doc any
	require.NoError(t, json.Unmarshal(body, &doc), where)
	var exprs []usedExpr
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			title, _ := x["title"].(string)
			if title != "" {
				path = where + " panel " + fmt.Sprintf("%q", title)
			}
			for k, c := range x {
				s, isString := c.(string)
				switch {
				case isString && k == "expr":
					exprs = append(exprs, usedExpr{path, s})
				case isString && k == "definition":
					// A template variable: label_values(<metric>, <label>).
					if m := labelValues.FindStringSubmatch(s); m != nil {
						exprs = append(exprs, usedExpr{path + " variable", m[1]})
					}
				default:
					walk(path, c)
				}
			}
		case []any:
			for _, c := range x {
				walk(path, c)
			}
		}
	}
	walk(where, doc)
	return exprs
}

var labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)

// grafanaVars are the interval variables Grafana replaces before a query
// reaches Prometheus; a plain duration stands in for them.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)

var promql = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric names it selects. A
// selector without a metric name is an error: it could not be checked.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(grafanaVars.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var names []string
	var nameless error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			nameless = fmt.Errorf("%q: selector %s has no metric name", expr, vs)
			return nil
		}
		names = append(names, vs.Name)
		return nil
	})
	return names, nameless
}

var errNotExported = errors.New("metric not exported by the worker")

// checkNames returns an error naming every expression that selects a
// metric the worker does not export. Histogram series are accepted by
// their _bucket, _sum and _count names.
func checkNames(exprs []usedExpr, types map[string]string) error {
	var errs []error
	for _, u := range exprs {
		names, err := metricNames(u.expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.where, err))
			continue
		}
		for _, n := range names {
			if !known(n, types) {
				errs = append(errs, fmt.Errorf("%s: %s: %w", u.where, n, errNotExported))
			}
		}
	}
	return errors.Join(errs...)
}

func known(name string, types map[string]string) bool {
	if _, ok := types[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && types[base] == "histogram" {
			return true
		}
	}
	return false
}

func TestChartMetricsAreExported(t *testing.T) {
	types := exported(t)
	var all []usedExpr
	for _, r := range renderAll(t) {
		all = append(all, chartExprs(t, r.objs)...)
	}
	require.NotEmpty(t, all)
	where := map[string]bool{}
	for _, u := range all {
		where[strings.Fields(u.where)[0]] = true
	}
	// Each source must have contributed, or the check proves nothing.
	require.True(t, where["alert"], "no alert expressions found")
	require.True(t, where["ScaledObject"], "no KEDA prometheus query found")
	require.Len(t, where, 3, "alerts, KEDA query and dashboard expected, got %v", where)

	cases := []struct {
		name    string
		exprs   []usedExpr
		wantErr bool
	}{
		{"the chart", all, false},
		{"bogus name", []usedExpr{{"test", `rate(neo_events_worker_bogus_total[5m])`}}, true},
		{"bogus among real ones", append(all[:1:1], usedExpr{"test", `neo_events_dlq_size`}), true},
		{"histogram bucket", []usedExpr{{"test", `histogram_quantile(0.9, sum by (le) (rate(neo_events_worker_handler_duration_seconds_bucket[5m])))`}}, false},
		{"bucket of a counter", []usedExpr{{"test", `neo_events_worker_events_total_bucket`}}, true},
		{"nameless selector", []usedExpr{{"test", `{group="x"}`}}, true},
		{"syntax error", []usedExpr{{"test", `rate(neo_events_worker_events_total[5m]`}}, true},
		{"grafana interval", []usedExpr{{"test", `rate(neo_events_worker_retries_total{group=~"$group"}[$__rate_interval])`}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNames(tc.exprs, types)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
		})
	}
}

// TestDashboardFile checks the shipped dashboard JSON itself, whether or not
// a value set enables it: valid JSON, a stable uid, and the panels the
// runbook refers to.
func TestDashboardFile(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboard.json"))
	require.NoError(t, err)
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(body, &d))
	require.Equal(t, "neo-events-worker", d.UID)
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
		if p.Type != "row" {
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		}
	}
	for _, want := range []string{"Events finished by outcome", "End-to-end latency (created_at to last action done)",
		"Handler latency p95 by action", "Lag per stream", "Retries by action", "Dead letters by reason", "Errors by action"} {
		require.Contains(t, titles, want)
	}
	exprs := dashboardExprs(t, "dashboard.json", body)
	require.True(t, slices.ContainsFunc(exprs, func(u usedExpr) bool { return strings.HasSuffix(u.where, " variable") }),
		"the group variable's label_values query was not found")
	require.NoError(t, checkNames(exprs, exported(t)))
}

// TestAlertRules parses every alert expression and, where promtool is
// installed (Debian: prometheus), runs `promtool check rules` on each
// rendered rule group.
func TestAlertRules(t *testing.T) {
	promtool, lookErr := exec.LookPath("promtool")
	anchors := readmeAnchors(t)
	for _, r := range renderAll(t) {
		for _, pr := range only[*PrometheusRule](r.objs) {
			t.Run(r.set.name, func(t *testing.T) {
				alerts := map[string]bool{}
				for _, g := range pr.Spec.Groups {
					for _, rule := range g.Rules {
						_, err := promql.ParseExpr(rule.Expr.String())
						require.NoError(t, err, rule.Alert)
						require.NotEmpty(t, rule.Labels["severity"], rule.Alert)
						require.NotEmpty(t, rule.Annotations["runbook_url"], rule.Alert)
						require.NotEmpty(t, rule.Annotations["summary"], rule.Alert)
						_, anchor, _ := strings.Cut(rule.Annotations["runbook_url"], "#")
						require.True(t, anchors[anchor], "%s: runbook anchor #%s is not a heading of deploy/README.md", rule.Alert, anchor)
						alerts[rule.Alert] = true
					}
				}
				for _, want := range []string{"NeoEventsBacklogGrowing", "NeoEventsDeadLettersGrowing",
					"NeoEventsActionErrorRateHigh", "NeoEventsGroupNoConsumers", "NeoEventsOldestPendingTooOld",
					"NeoEventsActionCircuitOpen"} {
					require.True(t, alerts[want], "alert %s missing", want)
				}
				if lookErr != nil {
					t.Log("promtool not on PATH: rules parsed with the PromQL parser only")
					return
				}
				body, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
				require.NoError(t, err)
				path := filepath.Join(t.TempDir(), "rules.yaml")
				require.NoError(t, os.WriteFile(path, body, 0o600))
				out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
				require.NoError(t, err, "promtool check rules:\n%s", out)
			})
		}
	}
}

// readmeAnchors returns the GitHub anchors of deploy/README.md's headings,
// so every alert's runbook_url lands on its section.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	body, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(title, ""), " ", "-")] = true
	}
	return anchors
}
