package publisher

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// The benchmarks report events/s for the three costs of publishing:
// XADD alone, and Publish (COPY + outbox + XADD) from one caller and from
// 64 concurrent callers. COPY alone is BenchmarkInsertEventsCOPY in
// internal/store. Run them with `make bench`.

func benchEnv(b *testing.B) (*pgxpool.Pool, *redis.Client, string, string) {
	b.Helper()
	if testing.Short() {
		b.Skip("needs PostgreSQL and Redis")
	}
	ctx := context.Background()
	pool := tu.NewPool(b, tu.NewDatabase(b))
	if _, err := store.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	schema, err := store.CreateTenant(ctx, pool, "bench")
	if err != nil {
		b.Fatal(err)
	}
	rdb, prefix := tu.NewRedis(b)
	return pool, rdb, prefix, schema
}

func benchEvents(b *testing.B, schema string, n int) []*event.Event {
	b.Helper()
	data := json.RawMessage(`{"email":"someone@example.com","plan":"pro","seats":12}`)
	evs := make([]*event.Event, n)
	for i := range evs {
		e, err := event.New(schema, "users.created", "user", uuid.New(), data)
		if err != nil {
			b.Fatal(err)
		}
		e.CorrelationID = uuid.New()
		e.SourceService = "bench"
		evs[i] = e
	}
	return evs
}

func reportRate(b *testing.B, events int, took time.Duration) {
	b.ReportMetric(float64(events)/took.Seconds(), "events/s")
}

func BenchmarkXADDPipelined(b *testing.B) {
	_, rdb, prefix, schema := benchEnv(b)
	const batch = 1000
	evs := benchEvents(b, schema, batch)
	for _, e := range evs {
		e.QueueName = streams.Key(prefix, e, DefaultPartitions)
	}
	ctx := context.Background()
	// Reused scratch and a registry, as a flusher has.
	var scratch entryBatch
	reg := newRegistry()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := addToStreams(ctx, rdb, prefix, false, evs, reg, &scratch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N*batch, time.Since(start))
}

func BenchmarkPublishSingleCaller(b *testing.B) {
	pool, rdb, prefix, schema := benchEnv(b)
	p, err := New(pool, rdb, Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	evs := benchEvents(b, schema, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, schema, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N, time.Since(start))
}

func BenchmarkPublish64Callers(b *testing.B) {
	pool, rdb, prefix, schema := benchEnv(b)
	p, err := New(pool, rdb, Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	evs := benchEvents(b, schema, b.N)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := p.Publish(ctx, schema, evs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reportRate(b, b.N, time.Since(start))
}

// BenchmarkAddToStreams is the transport alone through the public
// AddToStreams, as publisher-bench redis-only calls it: 256 events per
// pipeline, validation included, no scratch or registry kept by the caller.
func BenchmarkAddToStreams(b *testing.B) {
	_, rdb, prefix, schema := benchEnv(b)
	const batch = 256
	evs := benchEvents(b, schema, batch)
	ctx := context.Background()
	opt := Options{Prefix: prefix}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := AddToStreams(ctx, rdb, opt, evs...); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N*batch, time.Since(start))
}

// BenchmarkEventsCounter is what Publish pays per call to count its
// events: the cached child against WithLabelValues, which it used to call.
func BenchmarkEventsCounter(b *testing.B) {
	m := metrics.NewPublisher(prometheus.NewRegistry())
	b.Run("cached", func(b *testing.B) {
		ec := &eventCounters{vec: m.EventsTotal}
		b.ReportAllocs()
		for b.Loop() {
			ec.get("tenant_acme", metrics.OutcomeSuccess).Add(1)
		}
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.EventsTotal.WithLabelValues(event.ScopeOf("tenant_acme"), metrics.OutcomeSuccess).Add(1)
		}
	})
}
