// Package fleet assembles one worker process of the fleet from its parts:
// the consumer (Redis), the processor, dispatch, the status writer
// (PostgreSQL), the outbox relay, the stream statistics behind the
// autoscaling metric, and the /metrics, /healthz and /readyz endpoints. It
// owns the shutdown order of DESIGN §3: stop reading, finish or release
// in-flight work within worker.shutdown_timeout, flush status writes, exit.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/processor"
	"github.com/neo-events/neo-events/internal/ratelimit"
	"github.com/neo-events/neo-events/internal/retry"
	"github.com/neo-events/neo-events/internal/status"
	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/publisher"
)

// ErrClusterUnsupported: redis.cluster_addrs is set, but the worker's
// atomic acknowledge-and-dead-letter scripts need every key on one node.
var ErrClusterUnsupported = errors.New("redis.cluster_addrs: Redis Cluster is not supported by the worker yet; use redis.url")

// Options are what a worker binary adds to the configuration.
type Options struct {
	// Registry holds the handlers; required.
	Registry *handler.Registry
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Registry for the metrics; nil means a fresh one with the Go and
	// process collectors, served on /metrics.
	Metrics *prometheus.Registry
	// StatsInterval is how often stream statistics are refreshed. Defaults to 5s.
	StatsInterval time.Duration
	// TrimInterval is how often the streams are trimmed of entries every
	// group has acknowledged. Defaults to 30s.
	TrimInterval time.Duration
	// BreakerThreshold and BreakerCooldown tune the per-action circuit
	// breakers; zero takes dispatch's defaults (5 failures in a row, 30s).
	BreakerThreshold int
	BreakerCooldown  time.Duration
}

// Worker is one fleet member.
type Worker struct {
	cfg   config.Config
	opt   Options
	log   *zap.Logger
	reg   *prometheus.Registry
	m     *metrics.Worker
	ready atomic.Bool

	addrMu sync.Mutex
	addr   string
}

// New validates the configuration and prepares a worker; Run starts it.
func New(cfg config.Config, opt Options) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Redis.ClusterAddrs) > 0 {
		return nil, ErrClusterUnsupported
	}
	if opt.Registry == nil {
		return nil, errors.New("fleet: a handler registry is required")
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.StatsInterval <= 0 {
		opt.StatsInterval = 5 * time.Second
	}
	if opt.TrimInterval <= 0 {
		opt.TrimInterval = 30 * time.Second
	}
	reg := opt.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(gcMetrics)),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return &Worker{cfg: cfg, opt: opt, log: opt.Logger.With(zap.String("group", cfg.Worker.Group),
		zap.String("consumer", cfg.Worker.Consumer)), reg: reg, m: metrics.NewWorker(reg)}, nil
}

// gcMetrics adds the collector's own figures to the Go metrics a worker
// serves: go_gc_heap_live_bytes (the heap the last collection marked),
// go_gc_heap_goal_bytes (where the next one starts), go_gc_scan_stack_bytes
// and go_gc_scan_globals_bytes (counted into the goal), go_gc_gogc_percent
// and go_gc_gomemlimit_bytes. A worker's RSS follows the goal, not its live
// heap, so these tell a leak (live rising) from a goal that rose with the
// load (docs/PERFORMANCE.md, session 11). The size-class histograms of
// the /gc/ group are left out: many series, little use.
var gcMetrics = collectors.GoRuntimeMetricsRule{
	Matcher: regexp.MustCompile(`^/gc/(heap/(live|goal):bytes|scan/(stack|globals):bytes|gogc:percent|gomemlimit:bytes)$`),
}

// Addr is the address the HTTP endpoint listens on, once Run has started it.
func (w *Worker) Addr() string {
	w.addrMu.Lock()
	defer w.addrMu.Unlock()
	return w.addr
}

// Run works until ctx ends (SIGTERM), then shuts down in order and returns
// nil when nothing was lost.
func (w *Worker) Run(ctx context.Context) error {
	cfg := w.cfg
	ropt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	ropt.PoolSize = max(ropt.PoolSize, cfg.Worker.Concurrency+16)
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	pcfg, err := pgxpool.ParseConfig(cfg.Postgres.URL)
	if err != nil {
		return fmt.Errorf("postgres.url: %w", err)
	}
	if !strings.Contains(cfg.Postgres.URL, "pool_max_conns") {
		// Two status flushes, the statistics, dispatch's action loads, the
		// outbox relay and redelivery checks share the pool; pgx's default
		// (the number of CPUs, at least 4) would make them queue.
		pcfg.MaxConns = max(pcfg.MaxConns, 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()

	disp := dispatch.New(pool, dispatch.Options{
		Registry: w.opt.Registry, Bindings: cfg.Handlers,
		Limiter: ratelimit.New(rdb, cfg.Streams.Prefix), Health: dispatch.NewPGHealth(pool),
		Logger: w.log, Metrics: w.m, Group: cfg.Worker.Group,
		BreakerThreshold: w.opt.BreakerThreshold, BreakerCooldown: w.opt.BreakerCooldown,
	})
	defer disp.Close()

	var writer *status.Writer
	var sw processor.StatusWriter
	var statusPool *pgxpool.Pool
	if cfg.Worker.UpdateStatus {
		writer = status.New(pool, status.Options{Logger: w.log, Metrics: w.m, Group: cfg.Worker.Group})
		sw, statusPool = writer, pool
	}
	proc := processor.New(rdb, statusPool, disp, sw, processor.Options{
		Prefix: cfg.Streams.Prefix, Group: cfg.Worker.Group, WorkerID: cfg.Worker.Consumer,
		Fallback: retry.FromConfig(cfg.Retry), RetryLease: cfg.Worker.ClaimMinIdle,
		Logger: w.log, Metrics: w.m,
	})
	cons, err := consumer.New(rdb, consumer.Options{
		Prefix: cfg.Streams.Prefix, Group: cfg.Worker.Group, Consumer: cfg.Worker.Consumer,
		Subscriptions: cfg.Worker.Subscriptions, Concurrency: cfg.Worker.Concurrency,
		BatchSize: cfg.Worker.BatchSize, Block: cfg.Worker.Block, ClaimMinIdle: cfg.Worker.ClaimMinIdle,
		ClaimInterval: cfg.Worker.ClaimInterval, Logger: w.log, Metrics: w.m,
	}, proc)
	if err != nil {
		return err
	}
	relay, err := publisher.New(pool, rdb, publisher.Options{
		Prefix: cfg.Streams.Prefix, Partitions: cfg.Streams.Partitions, Logger: w.log,
		Registerer: w.reg, // neo_events_outbox_relayed_total on the worker's /metrics
	})
	if err != nil {
		return err
	}
	defer relay.Close()

	srv, err := w.serveHTTP(rdb, pool, cons)
	if err != nil {
		return err
	}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); relay.RunRelay(readCtx, cfg.Outbox.Interval, cfg.Outbox.MinAge) }()
	go func() { defer bg.Done(); w.collectStats(readCtx, rdb) }()
	go func() { defer bg.Done(); w.trimStreams(readCtx, rdb) }()
	go func() { defer bg.Done(); proc.RunRetries(readCtx, workCtx, cons) }()

	w.log.Info("worker started", zap.Strings("subscriptions", cfg.Worker.Subscriptions),
		zap.Int("concurrency", cfg.Worker.Concurrency), zap.Bool("update_status", cfg.Worker.UpdateStatus),
		zap.Strings("handlers", w.opt.Registry.Names()))
	w.ready.Store(true)

	consumed := make(chan struct{})
	go func() { _ = cons.Run(readCtx, workCtx); close(consumed) }()

	<-ctx.Done()
	w.ready.Store(false)
	w.log.Info("stopping: no new reads; finishing in-flight work", zap.Duration("timeout", cfg.Worker.ShutdownTimeout))
	stopReading()
	deadline := time.NewTimer(cfg.Worker.ShutdownTimeout)
	defer deadline.Stop()
	select {
	case <-consumed:
	case <-deadline.C:
		w.log.Warn("shutdown timeout: cancelling in-flight handlers; their entries stay pending and will be reclaimed")
		stopWork()
		<-consumed
	}
	bg.Wait()
	proc.Close()
	var flushErr error
	if writer != nil {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		flushErr = writer.Close(fctx)
		cancel()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	if flushErr != nil {
		return fmt.Errorf("flush status writes: %w", flushErr)
	}
	w.log.Info("worker stopped cleanly")
	return nil
}

func (w *Worker) serveHTTP(rdb *redis.Client, pool *pgxpool.Pool, cons *consumer.Consumer) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{Registry: w.reg}))
	if w.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		var problems []string
		if !w.ready.Load() || !cons.Ready() {
			problems = append(problems, "not consuming (starting or stopping)")
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			problems = append(problems, "redis: "+err.Error())
		}
		if err := pool.Ping(ctx); err != nil {
			problems = append(problems, "postgres: "+err.Error())
		}
		if len(problems) > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			for _, p := range problems {
				_, _ = fmt.Fprintln(rw, p)
			}
			return
		}
		_, _ = rw.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if w.cfg.HTTP.Addr == "" {
		return srv, nil
	}
	ln, err := net.Listen("tcp", w.cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", w.cfg.HTTP.Addr, err)
	}
	w.addrMu.Lock()
	w.addr = ln.Addr().String()
	w.addrMu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("http server", zap.Error(err))
		}
	}()
	return srv, nil
}

// trimStreams keeps Redis memory bounded: every TrimInterval it removes
// the entries that every group of a stream has acknowledged (DESIGN §2:
// nothing unacknowledged is ever trimmed). Every worker does it; XTRIM
// MINID is idempotent, so they need no coordination.
func (w *Worker) trimStreams(ctx context.Context, rdb *redis.Client) {
	t := time.NewTicker(w.opt.TrimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		trimmed, err := streaminfo.Trim(ctx, rdb, w.cfg.Streams.Prefix)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("trim acknowledged stream entries", zap.Error(err))
		}
		var n int64
		for _, c := range trimmed {
			n += c
		}
		if n > 0 {
			w.log.Debug("trimmed acknowledged stream entries", zap.Int64("entries", n), zap.Int("streams", len(trimmed)))
		}
	}
}

// collectStats refreshes the stream gauges of this worker's group; the
// summed backlog is the autoscaling signal.
func (w *Worker) collectStats(ctx context.Context, rdb *redis.Client) {
	group := w.cfg.Worker.Group
	t := time.NewTicker(w.opt.StatsInterval)
	defer t.Stop()
	for {
		infos, err := streaminfo.Inspect(ctx, rdb, w.cfg.Streams.Prefix)
		if err == nil {
			for _, s := range infos {
				for _, g := range s.Groups {
					if g.Name != group {
						continue
					}
					w.m.StreamLag.WithLabelValues(s.Stream, group).Set(float64(g.Lag))
					w.m.StreamPending.WithLabelValues(s.Stream, group).Set(float64(g.Pending))
					w.m.StreamConsumers.WithLabelValues(s.Stream, group).Set(float64(g.Consumers))
					w.m.OldestPendingSeconds.WithLabelValues(s.Stream, group).Set(g.OldestPendingAge.Seconds())
				}
			}
			w.m.GroupBacklog.WithLabelValues(group).Set(float64(streaminfo.GroupBacklog(infos, group)))
		} else if ctx.Err() == nil {
			w.log.Warn("stream statistics", zap.Error(err))
		}
		if n, err := rdb.XLen(ctx, streams.DLQ(w.cfg.Streams.Prefix, group)).Result(); err == nil {
			w.m.DLQLength.WithLabelValues(group).Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
