package processor

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// countingProcessor counts the deliveries its Processor finished.
type countingProcessor struct {
	*Processor
	done atomic.Int64
}

func (c *countingProcessor) Process(ctx context.Context, d consumer.Delivery) {
	c.Processor.Process(ctx, d)
	c.done.Add(1)
}

// BenchmarkDrain is a worker's read path end to end, as the bench's worker
// mode without status writes runs it, in a Go benchmark: a consumer with
// the config defaults (concurrency 256, batches of 256) and a processor
// with one noop action drain 20000 typical entries pre-filled over 8
// streams. cpu-ns/event is this process's CPU (collector included; Redis
// is another process) from the consumer's start until the last event is
// done, per event; the pre-fill is not counted.
func BenchmarkDrain(b *testing.B) {
	tu.SkipIfShort(b)
	rdb, prefix := tu.NewRedis(b)
	ctx := context.Background()
	nb := newNoopBench(b)
	const n, parts = 20000, 8
	keys := make([]string, parts)
	for i := range keys {
		keys[i] = streams.KeyFor(prefix, "tenants", "users", i)
	}
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pipe := rdb.Pipeline()
		for k := range n {
			ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), benchData)
			if err != nil {
				b.Fatal(err)
			}
			ev.CorrelationID = uuid.New()
			kv, err := ev.AppendEntry(nil)
			if err != nil {
				b.Fatal(err)
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys[k%parts], Values: kv})
			if pipe.Len() == 1000 {
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		pipe.SAdd(ctx, streams.Registry(prefix), keys)
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		group := fmt.Sprint("g", i)
		p := &countingProcessor{Processor: nb.processor(rdb, prefix, group)}
		c, err := consumer.New(rdb, consumer.Options{
			Prefix: prefix, Group: group, Consumer: "c", Subscriptions: []string{"tenants:*"},
			Concurrency: 256, BatchSize: 256, Block: time.Second, ClaimMinIdle: time.Minute, ClaimInterval: time.Minute,
			Logger: nb.log, Metrics: nb.m,
		}, p)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := processCPU()
		runCtx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { _ = c.Run(runCtx, ctx); close(stopped) }()
		for p.done.Load() < n {
			time.Sleep(time.Millisecond)
		}
		cpu += processCPU() - start
		b.StopTimer()
		cancel()
		<-stopped
		p.Close()
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu)/float64(b.N*n), "cpu-ns/event")
}
