package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// alertCase feeds series to the rendered rules for `promtool test rules`
// and says which alert must (or must not) fire by evalTime.
type alertCase struct {
	name     string
	series   map[string]string // series -> promtool expanding notation
	evalTime string
	alert    string
	fires    map[string]string // extra labels of the firing alert; nil: must not fire
}

const g = `group="orders"`

var alertCases = []alertCase{
	{"backlog growing", map[string]string{`neo_events_worker_group_backlog{` + g + `,pod="a"}`: "1000+100x40"},
		"25m", "NeoEventsBacklogGrowing", map[string]string{"severity": "critical"}},
	{"backlog high but flat", map[string]string{`neo_events_worker_group_backlog{` + g + `,pod="a"}`: "50000x40"},
		"25m", "NeoEventsBacklogGrowing", nil},
	{"backlog growing but small", map[string]string{`neo_events_worker_group_backlog{` + g + `,pod="a"}`: "0+10x40"},
		"25m", "NeoEventsBacklogGrowing", nil},
	{"dead letters growing", map[string]string{`neo_events_dlq_length{` + g + `,pod="a"}`: "0+1x40"},
		"25m", "NeoEventsDeadLettersGrowing", map[string]string{"severity": "warning"}},
	{"dead letters steady", map[string]string{`neo_events_dlq_length{` + g + `,pod="a"}`: "7x40"},
		"25m", "NeoEventsDeadLettersGrowing", nil},
	{"action errors", map[string]string{
		`neo_events_worker_action_executions_total{` + g + `,action="mail",outcome="success",pod="a"}`: "0+60x40",
		`neo_events_worker_action_executions_total{` + g + `,action="mail",outcome="retry",pod="a"}`:   "0+30x40",
	}, "25m", "NeoEventsActionErrorRateHigh", map[string]string{"severity": "critical", "action": "mail"}},
	{"action errors below ratio", map[string]string{
		`neo_events_worker_action_executions_total{` + g + `,action="mail",outcome="success",pod="a"}`: "0+600x40",
		`neo_events_worker_action_executions_total{` + g + `,action="mail",outcome="retry",pod="a"}`:   "0+1x40",
	}, "25m", "NeoEventsActionErrorRateHigh", nil},
	{"no consumers with lag", map[string]string{
		`neo_events_stream_consumers{` + g + `,stream="events:tenants:users:0",pod="a"}`: "0x20",
		`neo_events_stream_lag{` + g + `,stream="events:tenants:users:0",pod="a"}`:       "5x20",
	}, "10m", "NeoEventsGroupNoConsumers", map[string]string{"severity": "critical", "stream": "events:tenants:users:0"}},
	{"no consumers, nothing to read", map[string]string{
		`neo_events_stream_consumers{` + g + `,stream="events:tenants:users:0",pod="a"}`: "0x20",
		`neo_events_stream_lag{` + g + `,stream="events:tenants:users:0",pod="a"}`:       "0x20",
	}, "10m", "NeoEventsGroupNoConsumers", nil},
	{"oldest pending too old", map[string]string{`neo_events_stream_oldest_pending_seconds{` + g + `,stream="events:admin:users:1",pod="a"}`: "1000x20"},
		"10m", "NeoEventsOldestPendingTooOld", map[string]string{"severity": "critical", "stream": "events:admin:users:1"}},
	{"circuit open", map[string]string{`neo_events_action_circuit_open{` + g + `,action="crm",pod="a"}`: "1x20"},
		"10m", "NeoEventsActionCircuitOpen", map[string]string{"severity": "warning", "action": "crm"}},
	{"circuit closed", map[string]string{`neo_events_action_circuit_open{` + g + `,action="crm",pod="a"}`: "0x20"},
		"10m", "NeoEventsActionCircuitOpen", nil},
	{"worker absent", map[string]string{`neo_events_worker_group_backlog{group="someone_else",pod="b"}`: "0x20"},
		"15m", "NeoEventsWorkerAbsent", map[string]string{"severity": "critical"}},
	{"worker present", map[string]string{`neo_events_worker_group_backlog{` + g + `,pod="a"}`: "0x20"},
		"15m", "NeoEventsWorkerAbsent", nil},
}

// TestAlertsFire runs the rendered rules against synthetic series with
// `promtool test rules`: each alert fires on the trouble it names, and
// stays quiet on the look-alike that is not trouble.
func TestAlertsFire(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian: apt-get install prometheus)")
	}
	out, err := render(t, valueSet{name: "default"}, "--set", "prometheusRule.enabled=true")
	require.NoError(t, err)
	objs, err := decodeManifests(out)
	require.NoError(t, err)
	rules := only[*PrometheusRule](objs)
	require.Len(t, rules, 1)

	// Annotations are text for humans; promtool would make every case
	// spell them out, so the tested copy drops them.
	groups := rules[0].Spec.Groups
	for i := range groups {
		for j := range groups[i].Rules {
			groups[i].Rules[j].Annotations = nil
		}
	}
	dir := t.TempDir()
	writeYAML(t, filepath.Join(dir, "rules.yaml"), map[string]any{"groups": groups})

	var tests []any
	for _, c := range alertCases {
		var series []any
		for s, v := range c.series {
			series = append(series, map[string]string{"series": s, "values": v})
		}
		var exp []any
		if c.fires != nil {
			labels := map[string]string{"group": "orders"}
			for k, v := range c.fires {
				labels[k] = v
			}
			exp = append(exp, map[string]any{"exp_labels": labels})
		}
		tests = append(tests, map[string]any{
			"name":         c.name,
			"interval":     "1m",
			"input_series": series,
			"alert_rule_test": []any{map[string]any{
				"eval_time": c.evalTime, "alertname": c.alert, "exp_alerts": exp,
			}},
		})
	}
	writeYAML(t, filepath.Join(dir, "tests.yaml"), map[string]any{
		"rule_files": []string{"rules.yaml"}, "evaluation_interval": "1m", "tests": tests,
	})
	cmd := exec.Command(promtool, "test", "rules", "tests.yaml")
	cmd.Dir = dir
	res, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", res)
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	body, err := yaml.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, body, 0o600))
}
