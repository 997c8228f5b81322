package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// runWorker pre-fills the streams (and, with status writes on, the rows
// they update), then measures how fast the workers drain them.
func runWorker(ctx context.Context, e *env, res *Result) error {
	n, err := e.prefill(ctx)
	if err != nil {
		return err
	}
	res.Published = n
	if e.cfg.UpdateStatus {
		if err := e.injectRows(ctx, res); err != nil {
			return err
		}
	} else {
		// Without rows, an injected loss is an event expected but never added.
		res.Published += int64(e.cfg.InjectLost)
	}
	f, err := e.launchWorkers(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	l := &load{}
	l.published.Store(res.Published)
	stop := e.startProgress(ctx, res, f, l)
	cpu := e.sampleCPU(ctx, f)
	last := e.drain(ctx, f, res.Published)
	cpuEnd := e.sampleCPU(ctx, f)
	stop()
	if err := f.stop(); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	res.Processed = f.processed()
	res.account(cpu, cpuEnd, res.Processed)
	res.StatusFlush = f.flushes(res.Processed)
	res.DrainSeconds = last.Sub(start).Seconds()
	res.ProcessedPerSec = perSec(res.Processed, last.Sub(start))
	if e.cfg.UpdateStatus {
		return e.verifyProcessed(ctx, res)
	}
	res.Verify.Checked = true
	res.Lost = max(res.Published-res.Processed, 0)
	return e.verifyBacklog(ctx, res)
}

// prefill writes cfg.Events events: rows by COPY when statuses are
// written (so the workers update rather than insert them), entries by
// pipelined XADD of the real encoding.
func (e *env) prefill(ctx context.Context) (int64, error) {
	x := xadder{rdb: e.rdb, prefix: e.prefix, partitions: e.cfg.Partitions}
	cfg := e.cfg
	cfg.Rate, cfg.Publishers = 0, 4
	l := &load{}
	drive(ctx, cfg, newGenerator(e.schemas, cfg.PayloadBytes), func(ctx context.Context, schema string, evs []*event.Event) error {
		if cfg.UpdateStatus {
			if _, err := store.InsertEvents(ctx, e.pool, schema, evs); err != nil {
				return err
			}
		}
		return x.add(ctx, evs)
	}, l)
	if err, ok := l.firstErr.Load().(error); ok {
		return 0, fmt.Errorf("pre-fill: %w", err)
	}
	if e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, "pre-filled %d events in %.1fs\n", l.published.Load(), l.elapsed().Seconds())
	}
	return l.published.Load(), nil
}

// runE2E publishes through the real publisher while the workers process,
// then waits for the drain and verifies everything in Postgres and Redis.
func runE2E(ctx context.Context, e *env, res *Result) error {
	f, err := e.launchWorkers(ctx)
	if err != nil {
		return err
	}
	pub, err := e.newPublisher()
	if err != nil {
		return errors.Join(err, f.stop())
	}
	l := &load{}
	stop := e.startProgress(ctx, res, f, l)
	cpu := e.sampleCPU(ctx, f)
	e.loadPhase(ctx, res, l, func(ctx context.Context, schema string, evs []*event.Event) error {
		return pub.Publish(ctx, schema, evs...)
	})
	perr := pub.Close()
	res.BehindAtLoadEnd = max(res.Published-f.processed(), 0)
	ierr := e.injectRows(ctx, res)
	last := e.drain(ctx, f, res.Published)
	cpuEnd := e.sampleCPU(ctx, f)
	stop()
	if err := errors.Join(perr, ierr, f.stop()); err != nil {
		return err
	}
	res.Processed = f.processed()
	res.account(cpu, cpuEnd, res.Processed)
	res.StatusFlush = f.flushes(res.Processed)
	res.DrainSeconds = max(last.Sub(l.end).Seconds(), 0)
	res.ProcessedPerSec = perSec(res.Processed, last.Sub(l.start))
	return e.verifyProcessed(ctx, res)
}
