package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neo-events/neo-events/internal/metrics"
)

// BenchmarkHandOver is the consumer's own cost per entry: a concurrency
// slot, the hand-over to a pooled goroutine and the in-flight gauge, with a
// Processor that does nothing (no Redis).
func BenchmarkHandOver(b *testing.B) {
	var wg sync.WaitGroup
	proc := ProcessorFunc(func(context.Context, Delivery) { wg.Done() })
	c, err := New(nil, Options{
		Group: "g", Consumer: "c", Subscriptions: []string{"tenants:*"},
		Concurrency: 64, BatchSize: 64, Block: time.Second, ClaimMinIdle: time.Minute, ClaimInterval: time.Second,
		Metrics: metrics.NewWorker(prometheus.NewRegistry()),
	}, proc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	fields := []string{"n", "1"}
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		if !c.handOver(ctx, ctx, Delivery{Stream: "s", ID: "1-1", Fields: fields}) {
			b.Fatal("hand-over refused")
		}
	}
	wg.Wait()
	c.work.Wait()
	c.closePool()
}
