package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/builtin"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/fleet"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/streaminfo"
)

// fleetRun is cfg.Workers in-process fleet members, each with its own
// metrics registry so the bench can read what they finished.
type fleetRun struct {
	regs   []*prometheus.Registry
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func (e *env) workerConfig(i int) config.Config {
	c := config.Default()
	c.Redis.URL = e.cfg.RedisURL
	c.Postgres.URL = e.dbURL
	c.Streams.Prefix = e.prefix
	c.Streams.Partitions = e.cfg.Partitions
	c.Worker.Group = benchGroup
	c.Worker.Consumer = "bench-worker-" + strconv.Itoa(i)
	if e.cfg.Concurrency > 0 {
		c.Worker.Concurrency = e.cfg.Concurrency
	}
	c.Worker.Block = 100 * time.Millisecond
	c.Worker.ClaimInterval = time.Second
	c.Worker.UpdateStatus = e.cfg.UpdateStatus
	c.HTTP.Addr = ""
	c.Log.Level = "warn"
	return c
}

// startWorkers runs the fleet until stop.
func (e *env) startWorkers() (*fleetRun, error) {
	reg := handler.NewRegistry()
	if err := builtin.Register(reg); err != nil {
		return nil, err
	}
	log := e.cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleetRun{cancel: cancel}
	for i := 0; i < e.cfg.Workers; i++ {
		mreg := prometheus.NewRegistry()
		w, err := fleet.New(e.workerConfig(i), fleet.Options{Registry: reg, Logger: log, Metrics: mreg})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		f.regs = append(f.regs, mreg)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := w.Run(ctx); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
		}()
	}
	return f, nil
}

// stop shuts every worker down in order (flushing status writes).
func (f *fleetRun) stop() error {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// processed sums the events the workers finished successfully.
func (f *fleetRun) processed() int64 {
	var n float64
	f.eachFamily(func(mf *dto.MetricFamily) { n += successes(mf) })
	return int64(n)
}

// flushes summarizes the in-process workers' status writes.
func (f *fleetRun) flushes(processed int64) *FlushStats {
	var h flushHist
	f.eachFamily(h.add)
	return h.stats(processed)
}

// eachFamily calls fn with every metric family of every worker's registry
// (a registry that fails to gather is skipped).
func (f *fleetRun) eachFamily(fn func(*dto.MetricFamily)) {
	for _, reg := range f.regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			fn(mf)
		}
	}
}

// successes sums worker_events_total{outcome="success"} in mf (0 for any
// other family): what the workers finished, in-process or scraped.
func successes(mf *dto.MetricFamily) float64 {
	if mf.GetName() != metrics.Namespace+"_worker_events_total" {
		return 0
	}
	var n float64
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "outcome" && lp.GetValue() == metrics.OutcomeSuccess {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// backlog is the bench group's lag plus pending over every stream.
func (e *env) backlog(ctx context.Context) (int64, error) {
	infos, err := streaminfo.Inspect(ctx, e.rdb, e.prefix)
	if err != nil {
		return 0, err
	}
	return streaminfo.GroupBacklog(infos, benchGroup), nil
}

// entries sums XLEN over the registered streams.
func (e *env) entries(ctx context.Context) (int64, error) {
	infos, err := streaminfo.Inspect(ctx, e.rdb, e.prefix)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range infos {
		n += s.Length
	}
	return n, nil
}

// drain waits until the workers have finished want events (or the backlog
// stayed empty for two seconds, which means the rest will never come, or
// the drain timeout passed). It returns when the last event was finished.
func (e *env) drain(ctx context.Context, f workerSet, want int64) time.Time {
	deadline := time.Now().Add(e.cfg.DrainTimeout)
	last, lastN := time.Now(), f.processed()
	var emptySince, checked time.Time
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		n := f.processed()
		if n >= want {
			if n != lastN {
				last = time.Now()
			}
			return last
		}
		if n != lastN {
			last, lastN, emptySince = time.Now(), n, time.Time{}
			continue
		}
		// Stalled: is anything left to deliver? Inspecting every stream
		// is not free, so only a few times a second.
		if time.Since(checked) < 250*time.Millisecond {
			continue
		}
		checked = time.Now()
		if b, err := e.backlog(ctx); err != nil || b > 0 {
			emptySince = time.Time{}
		} else if emptySince.IsZero() {
			emptySince = checked
		} else if time.Since(emptySince) > 2*time.Second {
			return last
		}
	}
	return last
}
