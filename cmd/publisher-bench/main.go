// Command publisher-bench is the load generator and proof of throughput of
// neo-events (DESIGN §6, issue 4). It creates its own database and key
// prefix, drives the real publisher and workers (in-process, or worker
// processes with --worker-bin), verifies that nothing was lost or executed
// twice, prints a table (or, with --json, one JSON object) and removes what
// it created.
//
//	publisher-bench --mode e2e --duration 60s --rate 10000 --json
//
// Exit status: 0 when the run verified, 1 when verification failed, 2 for
// bad flags, 3 when the run could not be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/neo-events/neo-events/internal/bench"
	"github.com/neo-events/neo-events/internal/gctune"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitInternal = 3
)

func main() {
	// The in-process workers run with the worker binary's collector
	// settings (GOGC 200 unless GOGC is set), and so does everything else
	// in this process; the table and the JSON say which were used.
	gcSettings = gctune.Apply().String()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// gcSettings describes the garbage collector's settings (set by main).
var gcSettings string

// options are the flags beyond bench.Config.
type options struct {
	json       bool
	jsonOut    string
	cpuProfile string
	pprofAddr  string
	quiet      bool
}

func parseFlags(args []string, stderr io.Writer) (bench.Config, options, error) {
	var c bench.Config
	var o options
	fs := flag.NewFlagSet("publisher-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "", "publish, redis-only, worker or e2e (required; also accepted as the first argument)")
	fs.DurationVar(&c.Duration, "duration", bench.DefaultDuration, "length of the load phase (ignored with --events)")
	fs.IntVar(&c.Events, "events", 0, "stop after this many events (worker mode: the pre-filled backlog, default 100000)")
	fs.Float64Var(&c.Rate, "rate", 0, "offered events per second, open loop (0: as fast as possible)")
	fs.IntVar(&c.Publishers, "publishers", 0, "concurrent publishing goroutines (default 256; 8 pipelines for redis-only)")
	fs.IntVar(&c.Batch, "batch", 0, "events per Publish call (default 1; 256 for redis-only and worker pre-fill)")
	fs.IntVar(&c.Workers, "workers", bench.DefaultWorkers, "workers (worker, e2e): in-process, or processes with --worker-bin")
	fs.StringVar(&c.WorkerBin, "worker-bin", "", "run the workers as processes of this binary (go build -o bin/worker ./cmd/worker) and report their RSS apart")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "worker.concurrency of each worker (default: the config default)")
	fs.IntVar(&c.Tenants, "tenants", bench.DefaultTenants, "tenant schemas to spread events over (0: admin only)")
	fs.IntVar(&c.Partitions, "partitions", bench.DefaultPartitions, "partitions per stream category")
	fs.IntVar(&c.PayloadBytes, "payload-bytes", bench.DefaultPayloadBytes, "approximate size of event_data")
	fs.IntVar(&c.ActionsPerEvent, "actions-per-event", bench.DefaultActionsPerEvent, "noop actions every event matches")
	fs.BoolVar(&c.UpdateStatus, "update-status", true, "worker mode: write statuses and executions to Postgres (e2e always does)")
	fs.BoolVar(&c.Tune, "tune", false, "apply the optional tuned index set (eventsctl migrate --tune) before the run")
	fs.BoolVar(&c.Baseline, "baseline", false, "also measure the raw ceilings (COPY, UPDATE, XADD, XREADGROUP+XACK) and print ratios")
	fs.IntVar(&c.BaselineEvents, "baseline-events", bench.DefaultBaselineEvents, "rows/entries per baseline probe")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", bench.DefaultDrainTimeout, "how long to wait for workers to finish the backlog")
	fs.StringVar(&c.PostgresURL, "postgres-url", envOr("NEO_EVENTS_POSTGRES_URL", bench.DefaultPostgresURL), "PostgreSQL server (the bench creates its own database there)")
	fs.StringVar(&c.RedisURL, "redis-url", envOr("NEO_EVENTS_REDIS_URL", bench.DefaultRedisURL), "Redis (the bench uses its own key prefix)")
	fs.StringVar(&c.Database, "database", "", "name of the database to create (default neo_bench_<random>); must not exist")
	fs.BoolVar(&c.Keep, "keep", false, "keep the database and the Redis keys afterwards")
	fs.IntVar(&c.InjectLost, "inject-lost", 0, "record this many events as published that never reach a stream (checks the checker)")
	fs.BoolVar(&o.json, "json", false, "print exactly one JSON object on stdout instead of the table")
	fs.StringVar(&o.jsonOut, "json-out", "", "also write the JSON object to this file (the table still goes to stdout)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (publisher and workers) to this file")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address during the run (e.g. 127.0.0.1:6060): heap profiles of a soak, go tool pprof -base")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	// The flag package stops at the first non-flag, so a leading mode
	// ("publisher-bench e2e --rate 1000") is taken off first.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		*mode, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return c, o, err
	}
	if fs.NArg() > 0 {
		return c, o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Mode = bench.Mode(*mode)
	if !o.quiet {
		c.Progress = stderr
	}
	return c, o, c.WithDefaults().Validate()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "publisher-bench: %v\n", err)
		return exitUsage
	}
	cfg.GC = gcSettings
	if o.cpuProfile != "" {
		stopProfile, err := startProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "publisher-bench: %v\n", err)
			return exitInternal
		}
		defer stopProfile()
	}
	if o.pprofAddr != "" {
		bound, stop, err := servePprof(o.pprofAddr)
		if err != nil {
			fmt.Fprintf(stderr, "publisher-bench: %v\n", err)
			return exitUsage
		}
		defer stop()
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "pprof on http://%s/debug/pprof/\n", bound)
		}
	}
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		perr := printResult(res, o.json, stdout)
		if perr == nil && o.jsonOut != "" {
			perr = writeJSONFile(res, o.jsonOut)
		}
		if perr != nil {
			fmt.Fprintf(stderr, "publisher-bench: %v\n", perr)
			return exitInternal
		}
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, bench.ErrVerification):
		fmt.Fprintf(stderr, "publisher-bench: FAILED: %v\n", err)
		return exitFailed
	default:
		fmt.Fprintf(stderr, "publisher-bench: %v\n", err)
		return exitInternal
	}
}

func printResult(res *bench.Result, asJSON bool, w io.Writer) error {
	if asJSON {
		return res.WriteJSON(w)
	}
	return res.WriteTable(w)
}

func writeJSONFile(res *bench.Result, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("json-out: %w", err)
	}
	if err := res.WriteJSON(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("json-out: %w", err)
	}
	return f.Close()
}

// servePprof serves net/http/pprof on addr until stop is called and
// returns the address it listens on.
func servePprof(addr string) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
