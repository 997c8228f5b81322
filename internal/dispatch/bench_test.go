package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/metrics"
)

// BenchmarkMatch measures the hot path: a warm schema with 20 actions (a
// few with conditions, a few reached through subscriptions) and one config
// binding; the event matches five of them, two through subscriptions.
func BenchmarkMatch(b *testing.B) {
	f := newFixture(b)
	for i := range 14 {
		f.insertAction(b, f.tenant, action{name: fmt.Sprintf("cat_%02d", i),
			patterns: []string{fmt.Sprintf("cat_%c.*", 'a'+i)}, active: true})
	}
	f.insertAction(b, f.tenant, action{name: "all", patterns: []string{"*"}, active: true, priority: "low"})
	f.insertAction(b, f.tenant, action{name: "created", patterns: []string{"*.created"}, active: true})
	f.insertAction(b, f.tenant, action{name: "admins", patterns: []string{"users.*"}, active: true,
		conditions: `{"user.role":["admin","owner"]}`})
	f.insertAction(b, f.tenant, action{name: "big_orders", patterns: []string{"users.*"}, active: true,
		conditions: `{"amount":1000}`})
	for i := range 2 {
		id := f.insertAction(b, f.tenant, action{name: fmt.Sprintf("sub_%d", i), patterns: []string{"none.none"}, active: true})
		f.insertSubscription(b, f.tenant, subscription{actionID: id, pattern: "users.created", active: true,
			sources: []string{"auth"}})
	}
	d := dispatch.New(f.pool, dispatch.Options{Bindings: []config.HandlerConfig{
		{Match: "orders.*", Handler: "webhook", Config: map[string]any{"url": "http://127.0.0.1:1/x"}},
	}})
	b.Cleanup(d.Close)
	ev := newEvent(b, f.tenant, "users.created", `{"user":{"id":7,"role":"admin"},"amount":12,"note":"hello"}`)
	ev.SourceService = "auth"
	got, err := d.Match(f.ctx, ev) // warm the cache
	require.NoError(b, err)
	require.Equal(b, []string{"admins", "created", "sub_0", "sub_1", "all"}, names(got))

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Match(f.ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunNoop measures one attempt of a handler that does nothing, as
// the worker makes it: a caller's logger naming where the event is, a
// concurrency bound, metrics. Serial and with 64 concurrent callers.
func BenchmarkRunNoop(b *testing.B) {
	reg := handler.NewRegistry()
	reg.MustRegister("noop", handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil }))
	// A production-like logger (JSON, warn level) writing nowhere, so that
	// loggers derived per call cost what they cost in a worker.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zap.WarnLevel))
	d := dispatch.New(nil, dispatch.Options{Registry: reg, Metrics: metrics.NewWorker(prometheus.NewRegistry()),
		Group: "g", Logger: log})
	b.Cleanup(d.Close)
	ev := newEvent(b, "tenant_acme", "users.created", `{"a":1}`)
	ev.CorrelationID = uuid.New()
	a := testAction("noop")
	a.MaxConcurrent = 100000
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	base := log.With(zap.String("schema", ev.Schema))
	run := func(b *testing.B) {
		r := d.Run(ctx, dispatch.RunRequest{Event: ev, Action: a, Attempt: 1, MaxAttempts: 4, Logger: base})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				run(b)
			}
		})
	})
}
