package processor

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/metrics"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// staticMatch matches every event to the same actions and runs them
// through a real dispatcher, so a benchmark needs no PostgreSQL.
type staticMatch struct {
	*dispatch.Dispatcher
	actions []dispatch.Action
}

func (s staticMatch) AppendMatches(_ context.Context, dst []dispatch.Action, _ *event.Event) ([]dispatch.Action, error) {
	return append(dst, s.actions...), nil
}

// warnLogger is a production-like logger (JSON, warn level) that writes
// nowhere: loggers built per event cost what they cost in a worker.
func warnLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.WarnLevel))
}

// noopBench is what the processor benchmarks share: a real dispatcher with
// a "noop" handler, the one action that runs it (matched by staticMatch),
// their metrics and a production-like logger.
type noopBench struct {
	d   *dispatch.Dispatcher
	act dispatch.Action
	m   *metrics.Worker
	log *zap.Logger
}

func newNoopBench(b *testing.B) noopBench {
	log := warnLogger()
	reg := handler.NewRegistry()
	reg.MustRegister("noop", handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil }))
	m := metrics.NewWorker(prometheus.NewRegistry())
	d := dispatch.New(nil, dispatch.Options{Registry: reg, Metrics: m, Group: "g", Logger: log})
	b.Cleanup(d.Close)
	act := dispatch.Action{ID: uuid.New(), Schema: "tenant_acme", Name: "bench_noop", Type: "custom",
		HandlerName: "noop", Timeout: 10 * time.Second, MaxConcurrent: 100000, Source: dispatch.SourceAction}
	return noopBench{d: d, act: act, m: m, log: log}
}

// processor returns a processor of group for nb's action (no status writes).
func (nb noopBench) processor(rdb redis.UniversalClient, prefix, group string) *Processor {
	return New(rdb, nil, staticMatch{Dispatcher: nb.d, actions: []dispatch.Action{nb.act}}, nil, Options{
		Prefix: prefix, Group: group, WorkerID: "w", Logger: nb.log, Metrics: nb.m,
	})
}

// benchData is a typical event payload of about 256 bytes.
var benchData = json.RawMessage(`{"bench":true,"pad":"` + strings.Repeat("x", 230) + `"}`)

// BenchmarkProcess is the worker's per-event path without status writes:
// decode the entry go-redis returned, match one noop action, run it,
// acknowledge through the batcher (real Redis; 32 × GOMAXPROCS events in flight, 64 on 2 cores, so
// acknowledgements share pipelines as in a worker).
func BenchmarkProcess(b *testing.B) {
	tu.SkipIfShort(b)
	rdb, prefix := tu.NewRedis(b)
	nb := newNoopBench(b)
	p := nb.processor(rdb, prefix, "g")
	b.Cleanup(p.Close)

	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), benchData)
	if err != nil {
		b.Fatal(err)
	}
	fields, err := ev.AppendEntry(nil)
	if err != nil {
		b.Fatal(err)
	}
	stream := prefix + ":tenants:users:0"
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32)
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Process(ctx, consumer.Delivery{Stream: stream, ID: "1-1", Fields: fields})
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	var got dto.Metric
	if err := nb.m.EventsTotal.WithLabelValues("g", "users.created", metrics.OutcomeSuccess).Write(&got); err != nil {
		b.Fatal(err)
	}
	if n := got.GetCounter().GetValue(); n < float64(b.N) {
		b.Fatalf("%v events succeeded, want %d", n, b.N)
	}
}

// processCPU is the CPU time the process has used (user and system, every
// goroutine, GC included). Per op it is what an event costs the worker,
// which wall time per op on a shared machine is not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
