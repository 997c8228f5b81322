package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/publisher"
)

// Run performs one bench run in its own database and key prefix, removed
// afterwards unless cfg.Keep. The Result is returned whenever the run got
// as far as measuring; the error wraps ErrVerification when the checks
// found lost, duplicated or unfinished events.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench setup: %w", err)
	}
	defer func() {
		if cerr := e.close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("bench cleanup: %w", cerr))
		}
	}()
	res = &Result{Mode: cfg.Mode, Config: cfg, Database: e.dbName, Prefix: e.prefix}
	res.RSS.Start = rssMiB()
	res.RSS.Max = res.RSS.Start
	modes := map[Mode]func(context.Context, *env, *Result) error{
		ModePublish: runPublish, ModeRedisOnly: runRedisOnly, ModeWorker: runWorker, ModeE2E: runE2E,
	}
	if err := modes[cfg.Mode](ctx, e, res); err != nil {
		return res, fmt.Errorf("bench %s: %w", cfg.Mode, err)
	}
	res.RSS.End = rssMiB()
	res.RSS.Max = max(res.RSS.Max, res.RSS.End)
	res.RSS.summarize()
	if cfg.Baseline {
		if err := e.baseline(ctx, res); err != nil {
			return res, fmt.Errorf("bench baseline: %w", err)
		}
	}
	if res.judge(); !res.OK {
		return res, fmt.Errorf("%w: %s", ErrVerification, res.Failure)
	}
	return res, nil
}

// judge decides OK from what verification counted.
func (r *Result) judge() {
	var why []string
	add := func(bad bool, format string, args ...any) {
		if bad {
			why = append(why, fmt.Sprintf(format, args...))
		}
	}
	add(r.Lost > 0, "%d lost events", r.Lost)
	add(r.Duplicates > 0, "%d duplicate executions", r.Duplicates)
	add(r.Verify.MissingExecutions > 0, "%d missing executions", r.Verify.MissingExecutions)
	add(r.Errors > 0, "%d publish errors", r.Errors)
	add(r.Verify.Backlog > 0, "backlog %d after the drain", r.Verify.Backlog)
	add(r.Published == 0, "nothing was published")
	r.OK = len(why) == 0
	r.Failure = strings.Join(why, "; ")
}

// loadPhase drives the load into l and records its figures in res.
func (e *env) loadPhase(ctx context.Context, res *Result, l *load, send sink) {
	drive(ctx, e.cfg, newGenerator(e.schemas, e.cfg.PayloadBytes), send, l)
	res.Published = l.published.Load()
	res.Errors = l.errors.Load()
	if err, ok := l.firstErr.Load().(error); ok && e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, "first publish error: %v\n", err)
	}
	res.PublishLatency = l.latency.Percentiles()
	if e.cfg.Rate > 0 {
		lag := l.lag.Percentiles()
		res.SendLag = &lag
	}
	res.LoadSeconds = l.elapsed().Seconds()
	res.PublishedPerSec = perSec(res.Published, l.elapsed())
}

func (e *env) startProgress(ctx context.Context, res *Result, f workerSet, l *load) (stop func()) {
	c := counters{published: l.published.Load, errors: l.errors.Load}
	if f != nil {
		c.processed, c.backlog = f.processed, e.backlog
	}
	if p, ok := f.(*procRun); ok {
		c.workerRSS = p.rss
		res.WorkerRSS = &RSS{Start: p.rssStart, Max: p.rssStart}
		res.WorkerAnonRSS = &RSS{Start: p.anonStart, Max: p.anonStart}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(pctx, e.cfg.Progress, c, &res.RSS, res.WorkerRSS, res.WorkerAnonRSS)
	}()
	return func() {
		cancel()
		<-done
		if res.WorkerRSS != nil {
			total, anon := c.workerRSS()
			res.WorkerRSS.End, res.WorkerAnonRSS.End = total, anon
			res.WorkerRSS.Max = max(res.WorkerRSS.Max, total)
			res.WorkerAnonRSS.Max = max(res.WorkerAnonRSS.Max, anon)
			res.WorkerRSS.summarize()
			res.WorkerAnonRSS.summarize()
		}
	}
}

func (e *env) newPublisher() (*publisher.Publisher, error) {
	return publisher.New(e.pool, e.rdb, publisher.Options{
		Prefix: e.prefix, Partitions: e.cfg.Partitions, Registerer: prometheus.NewRegistry(),
	})
}

func runPublish(ctx context.Context, e *env, res *Result) error {
	pub, err := e.newPublisher()
	if err != nil {
		return err
	}
	l := &load{}
	stop := e.startProgress(ctx, res, nil, l)
	cpu := e.sampleCPU(ctx, nil)
	e.loadPhase(ctx, res, l, func(ctx context.Context, schema string, evs []*event.Event) error {
		return pub.Publish(ctx, schema, evs...)
	})
	stop()
	if err := pub.Close(); err != nil {
		return fmt.Errorf("close publisher: %w", err)
	}
	res.account(cpu, e.sampleCPU(ctx, nil), res.Published)
	if err := e.injectRows(ctx, res); err != nil {
		return err
	}
	return e.verifyRecorded(ctx, res, true)
}

func runRedisOnly(ctx context.Context, e *env, res *Result) error {
	x := xadder{rdb: e.rdb, prefix: e.prefix, partitions: e.cfg.Partitions}
	l := &load{}
	stop := e.startProgress(ctx, res, nil, l)
	cpu := e.sampleCPU(ctx, nil)
	e.loadPhase(ctx, res, l, func(ctx context.Context, _ string, evs []*event.Event) error {
		return x.add(ctx, evs)
	})
	stop()
	res.account(cpu, e.sampleCPU(ctx, nil), res.Published)
	// An injected loss here is an event counted as sent that never was.
	res.Published += int64(e.cfg.InjectLost)
	return e.verifyRecorded(ctx, res, false)
}

// verifyRecorded checks that every published event has its stream entry
// and, withRows, its row.
func (e *env) verifyRecorded(ctx context.Context, res *Result, withRows bool) error {
	n, err := e.entries(ctx)
	if err != nil {
		return fmt.Errorf("count stream entries: %w", err)
	}
	res.Verify.Checked, res.Verify.Entries = true, n
	have := n
	if withRows {
		pg, err := e.countEvents(ctx)
		if err != nil {
			return err
		}
		res.Verify.Rows = pg.rows
		have = min(have, pg.rows)
	}
	res.Lost = max(res.Published-have, 0)
	return nil
}

// injectRows commits cfg.InjectLost rows that never reach a stream (and
// have no outbox row, so the relay cannot save them), and counts them as
// published: the verification must report each as lost.
func (e *env) injectRows(ctx context.Context, res *Result) error {
	if e.cfg.InjectLost == 0 {
		return nil
	}
	gen := newGenerator(e.schemas, e.cfg.PayloadBytes)
	schema := e.schemas[0]
	evs := make([]*event.Event, e.cfg.InjectLost)
	for i := range evs {
		ev, err := gen.make(int64(i), schema, time.Now())
		if err != nil {
			return err
		}
		evs[i] = ev
	}
	if _, err := store.InsertEvents(ctx, e.pool, schema, evs); err != nil {
		return fmt.Errorf("inject lost events: %w", err)
	}
	res.Published += int64(len(evs))
	return nil
}
