package consumer

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	tu "github.com/neo-events/neo-events/internal/testutil"
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
	close(c.quit)
}

// BenchmarkReadBatch reads a batch of 64 typical event entries (real Redis,
// the consumer's pending list re-read from 0, so every read returns the
// same entries) and turns it into deliveries: go-redis's XReadGroup and its
// map per entry, against the raw reply parsed by parseXRead.
func BenchmarkReadBatch(b *testing.B) {
	tu.SkipIfShort(b)
	rdb, prefix := tu.NewRedis(b)
	ctx := context.Background()
	key := prefix + ":tenants:users:0"
	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(),
		json.RawMessage(`{"bench":true,"pad":"`+strings.Repeat("x", 230)+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	kv, err := ev.AppendEntry(nil)
	if err != nil {
		b.Fatal(err)
	}
	for range 64 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: kv}).Err(); err != nil {
			b.Fatal(err)
		}
	}
	if err := rdb.XGroupCreate(ctx, key, "g", "0").Err(); err != nil {
		b.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}}).Err(); err != nil {
		b.Fatal(err)
	}
	keys := []string{key}
	if os.Getenv("BENCH_WORKER_HEAP") != "" {
		// A worker's surroundings, for the collector: ~8 MB of live
		// pointerful heap and 256 parked goroutines with grown stacks,
		// which every cycle scans (and shrinks).
		stop := workerLikeHeap()
		b.Cleanup(stop)
	}
	// cpu-ns/op is this process's CPU (GC included; Redis is another
	// process) per batch.
	b.Run("go-redis+DecodeValues", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, "0"}, Count: 64}).Result()
			if err != nil || len(res[0].Messages) != 64 {
				b.Fatal(err)
			}
			for _, m := range res[0].Messages {
				if _, err := event.DecodeValues(m.Values); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
	b.Run("raw+DecodeFields", func(b *testing.B) {
		var batch []Delivery
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			cmd := redis.NewRawCmd(ctx, "xreadgroup", "group", "g", "c", "count", 64, "streams", key, "0")
			_ = rdb.Process(ctx, cmd)
			raw, err := cmd.Result()
			if err != nil {
				b.Fatal(err)
			}
			if batch, err = parseXRead(batch[:0], raw, keys); err != nil || len(batch) != 64 {
				b.Fatal(err)
			}
			for _, d := range batch {
				if _, err := event.DecodeFields(d.Fields); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
}

// processCPU is the CPU time the process has used (user and system, every
// goroutine, GC included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var ballast [][]*[64]byte

func workerLikeHeap() func() {
	ballast = make([][]*[64]byte, 1024)
	for i := range ballast {
		ballast[i] = make([]*[64]byte, 100)
		for j := range ballast[i] {
			ballast[i][j] = new([64]byte)
		}
	}
	quit := make(chan struct{})
	for range 256 {
		go deep(20, quit)
	}
	return func() { close(quit); ballast = nil }
}

//go:noinline
func deep(n int, quit chan struct{}) byte {
	var pad [256]byte
	if n == 0 {
		<-quit
		return pad[0]
	}
	return deep(n-1, quit) + pad[n]
}
