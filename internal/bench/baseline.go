package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// Baseline keys of Result.Baseline.
const (
	CeilingCopy     = "copy_rows_per_sec"
	CeilingUpdate   = "update_rows_per_sec"
	CeilingXAdd     = "xadd_per_sec"
	CeilingReadAck  = "xreadgroup_xack_per_sec"
	CeilingPipeline = "pipeline_estimate_per_sec"
)

// Sizes of one baseline round trip, the same as the publisher's and the
// status writer's batches, and the concurrency of each probe.
const (
	baselineCopyBatch   = 2000
	baselineUpdateBatch = 1000
	baselinePipe        = 1000
	baselineConc        = 2 // Postgres probes: the publisher's flushers
	baselineRedisConc   = 8 // Redis probes: enough pipelines to saturate one Redis
	baselineStreams     = 8
)

// baseline measures the raw ceilings of this machine in the same run:
// COPY of the same rows into a scratch tenant (the same table and
// indexes), batched status UPDATE of those rows, pipelined XADD of the
// same entries, and XREADGROUP+XACK of them. Each is measured alone, with
// nothing of ours in between, then this run's throughput is divided by it.
func (e *env) baseline(ctx context.Context, res *Result) error {
	schema, err := store.CreateTenant(ctx, e.pool, "bench_scratch")
	if err != nil {
		return fmt.Errorf("scratch tenant: %w", err)
	}
	gen := newGenerator([]string{schema}, e.cfg.PayloadBytes)
	evs := make([]*event.Event, e.cfg.BaselineEvents)
	for i := range evs {
		if evs[i], err = gen.make(int64(i), schema, time.Now()); err != nil {
			return err
		}
	}
	b := map[string]float64{}
	xadds, err := xaddCommands(evs, e.baselineKey)
	if err != nil {
		return err
	}
	probes := []struct {
		key string
		run func(context.Context, string, []*event.Event) error
	}{
		{CeilingCopy, e.probeCopy}, {CeilingUpdate, e.probeUpdate},
		{CeilingXAdd, func(ctx context.Context, _ string, _ []*event.Event) error { return e.probeXAdd(ctx, xadds) }},
		{CeilingReadAck, e.probeReadAck},
	}
	cpu := map[string]map[string]float64{}
	for _, p := range probes {
		before := e.sampleCPU(ctx, nil)
		start := time.Now()
		if err := p.run(ctx, schema, evs); err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		b[p.key] = perSec(int64(len(evs)), time.Since(start))
		after := e.sampleCPU(ctx, nil)
		c := perEvent(before, after, int64(len(evs)))
		if m := before.machineUntil(after, int64(len(evs))); m != nil {
			c[cpuMachine] = m.USPerEvent // perEvent's map: events > 0 here, as machineUntil needs
		}
		if len(c) > 0 {
			cpu[p.key] = c
		}
	}
	b[CeilingPipeline] = 1 / (1/b[CeilingCopy] + 1/b[CeilingUpdate] + 1/b[CeilingXAdd] + 1/b[CeilingReadAck])
	res.Baseline = b
	if len(cpu) > 0 {
		res.BaselineCPU = cpu
	}
	res.Ratios = ratios(res, b)
	return nil
}

// ratios divides the run's throughput by the ceiling of the step it stands
// for. An open-loop run (--rate) gets none: its throughput is the rate it
// was offered, so its ratio would say nothing about the code (make bench
// printed 0.07 for publish at 10K/s).
func ratios(res *Result, b map[string]float64) map[string]float64 {
	if res.Config.Rate > 0 {
		return nil
	}
	r := map[string]float64{}
	switch res.Mode {
	case ModePublish:
		r["published_vs_copy"] = res.PublishedPerSec / b[CeilingCopy]
	case ModeRedisOnly:
		r["published_vs_xadd"] = res.PublishedPerSec / b[CeilingXAdd]
	case ModeWorker:
		r["processed_vs_xreadgroup_xack"] = res.ProcessedPerSec / b[CeilingReadAck]
		if res.Config.UpdateStatus {
			r["processed_vs_update"] = res.ProcessedPerSec / b[CeilingUpdate]
		}
	case ModeE2E:
		r["processed_vs_update"] = res.ProcessedPerSec / b[CeilingUpdate]
		r["processed_vs_copy"] = res.ProcessedPerSec / b[CeilingCopy]
		r["processed_vs_pipeline_estimate"] = res.ProcessedPerSec / b[CeilingPipeline]
	}
	return r
}

// chunks runs fn over evs in batches of size with conc goroutines.
func chunks(ctx context.Context, evs []*event.Event, size, conc int, fn func(context.Context, []*event.Event) error) error {
	g, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	next := 0
	for i := 0; i < conc; i++ {
		g.Go(func() error {
			for {
				mu.Lock()
				lo := next
				next = min(next+size, len(evs))
				mu.Unlock()
				if lo >= len(evs) {
					return nil
				}
				if err := fn(ctx, evs[lo:min(lo+size, len(evs))]); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// probeCopy COPYs the rows with the publisher's own encoder
// (store.CopyValidatedEvents, binary COPY written without pgx's per-value
// encoding), one autocommitted COPY per batch, so the ratio compares the
// publisher with the bare COPY it is built on. The rows are valid (the
// generator validates them), so, like the publisher's flushers, the probe
// does not validate them again.
func (e *env) probeCopy(ctx context.Context, schema string, evs []*event.Event) error {
	// One reused stream buffer per probe goroutine, as each flusher has.
	bufs := make(chan []byte, baselineConc)
	for range baselineConc {
		bufs <- nil
	}
	return chunks(ctx, evs, baselineCopyBatch, baselineConc, func(ctx context.Context, b []*event.Event) error {
		conn, err := e.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		buf := <-bufs
		_, buf, err = store.CopyValidatedEvents(ctx, conn.Conn().PgConn(), schema, b, buf)
		bufs <- buf
		return err
	})
}

func (e *env) probeUpdate(ctx context.Context, schema string, evs []*event.Event) error {
	sql := `UPDATE ` + event.QuoteIdent(schema) + `.events
		SET status = 'completed', processing_started_at = now(), processing_completed_at = now(),
		    processing_duration_ms = 0
		WHERE id = ANY($1)`
	return chunks(ctx, evs, baselineUpdateBatch, baselineConc, func(ctx context.Context, b []*event.Event) error {
		// [16]byte, not uuid.UUID: pgx encodes uuid.UUID slices through
		// driver.Valuer after a failed plan (an error built per element).
		ids := make([][16]byte, len(b))
		for i, ev := range b {
			ids[i] = ev.ID
		}
		_, err := e.pool.Exec(ctx, sql, ids)
		return err
	})
}

func (e *env) baselineKey(i int) string { return e.prefix + ":baseline:" + strconv.Itoa(i) }

// xaddCommands builds the XADD command of every event in advance, with
// its entry encoded as the publisher encodes it: the XADD probe times
// Redis and the wire alone, so its ceiling is one our own transport
// (redis-only mode: encoding included) can be held against.
func xaddCommands(evs []*event.Event, key func(int) string) ([][]any, error) {
	cmds := make([][]any, len(evs))
	for i, ev := range evs {
		f, err := ev.AppendEntry(nil)
		if err != nil {
			return nil, err
		}
		cmd := make([]any, 0, 3+len(f))
		cmd = append(cmd, "XADD", key(i%baselineStreams), "*")
		for _, v := range f {
			cmd = append(cmd, v)
		}
		cmds[i] = cmd
	}
	return cmds, nil
}

// probeXAdd sends the prepared XADDs in pipelines of baselinePipe, from
// baselineRedisConc connections at once.
func (e *env) probeXAdd(ctx context.Context, cmds [][]any) error {
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for c := 0; c < baselineRedisConc; c++ {
		g.Go(func() error {
			for {
				hi := next.Add(baselinePipe)
				lo := hi - baselinePipe
				if lo >= int64(len(cmds)) {
					return nil
				}
				pipe := e.rdb.Pipeline()
				for _, cmd := range cmds[lo:min(hi, int64(len(cmds)))] {
					pipe.Do(ctx, cmd...)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// probeReadAck reads every entry probeXAdd wrote through a group and acks it.
func (e *env) probeReadAck(ctx context.Context, _ string, evs []*event.Event) error {
	streams := make([]string, 0, 2*baselineStreams)
	for i := 0; i < baselineStreams; i++ {
		if err := e.rdb.XGroupCreateMkStream(ctx, e.baselineKey(i), "baseline", "0").Err(); err != nil {
			return err
		}
		streams = append(streams, e.baselineKey(i))
	}
	for i := 0; i < baselineStreams; i++ {
		streams = append(streams, ">")
	}
	g, ctx := errgroup.WithContext(ctx)
	for c := 0; c < baselineRedisConc; c++ {
		g.Go(func() error { return e.readAck(ctx, streams, "c"+strconv.Itoa(c)) })
	}
	return g.Wait()
}

func (e *env) readAck(ctx context.Context, streams []string, consumer string) error {
	for {
		res, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: "baseline", Consumer: consumer, Streams: streams, Count: baselinePipe / baselineStreams, Block: -1,
		}).Result()
		if err == redis.Nil || (err == nil && empty(res)) {
			return nil
		}
		if err != nil {
			return err
		}
		pipe := e.rdb.Pipeline()
		for _, s := range res {
			ids := make([]string, len(s.Messages))
			for i, m := range s.Messages {
				ids[i] = m.ID
			}
			if len(ids) > 0 {
				pipe.XAck(ctx, s.Stream, "baseline", ids...)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
}

func empty(res []redis.XStream) bool {
	for _, s := range res {
		if len(s.Messages) > 0 {
			return false
		}
	}
	return true
}
