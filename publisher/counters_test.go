package publisher

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/metrics"
)

// The cached children of EventsTotal count into the series WithLabelValues
// would, and a series appears only once something was counted in it.
func TestEventCountersCountIntoTheirSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewPublisher(reg)
	ec := &eventCounters{vec: m.EventsTotal}
	for _, c := range []struct {
		schema, outcome string
		n               float64
	}{
		{"admin", metrics.OutcomeSuccess, 1},
		{"tenant_acme", metrics.OutcomeSuccess, 2},
		{"tenant_other", metrics.OutcomeSuccess, 3},
		{"tenant_acme", metrics.OutcomeError, 4},
		{"admin", metrics.OutcomeSuccess, 5},
	} {
		ec.get(c.schema, c.outcome).Add(c.n)
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "neo_events_publisher_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["scope"]+"/"+labels["outcome"]] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"admin/success": 6, "tenants/success": 5, "tenants/error": 4}, got)
}
