// Command eventsctl is the operator CLI of neo-events: database migrations,
// tenant schemas, and (in sibling files) streams and dead letters.
//
// Each verb lives in its own file and registers itself in an init function
// with register, so adding a verb never touches this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/logging"
)

// verb is one top-level command, such as `migrate` or `tenants`.
type verb struct {
	// Usage is the synopsis after "eventsctl", e.g. "tenants create <slug>".
	// Several forms go on separate lines.
	Usage string
	// Summary is one sentence for the verb list.
	Summary string
	// Flags, if set, adds the verb's own flags.
	Flags func(fs *pflag.FlagSet)
	// Run does the work. args are the positional arguments after the verb.
	// Return usageErrorf for bad arguments (exit 2), anything else exits 1.
	Run func(ctx context.Context, a *app, args []string) error
}

// verbs maps a verb's name to it; files add theirs with register.
var verbs = map[string]verb{}

func register(name string, v verb) {
	if _, dup := verbs[name]; dup {
		panic("eventsctl: verb " + name + " registered twice")
	}
	verbs[name] = v
}

// app is what a verb gets: the loaded configuration, a logger, the output
// streams and lazily opened connections, closed when the verb returns.
type app struct {
	Config config.Config
	Log    *zap.Logger
	Stdout io.Writer
	Stderr io.Writer
	Flags  *pflag.FlagSet

	pool *pgxpool.Pool
	rdb  redis.UniversalClient
}

// Postgres opens (once) a pool on postgres.url.
func (a *app) Postgres(ctx context.Context) (*pgxpool.Pool, error) {
	if a.pool != nil {
		return a.pool, nil
	}
	pool, err := pgxpool.New(ctx, a.Config.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL (postgres.url): %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL (postgres.url): %w", err)
	}
	a.pool = pool
	return pool, nil
}

// Redis opens (once) a client on redis.url, or on redis.cluster_addrs when set.
func (a *app) Redis(ctx context.Context) (redis.UniversalClient, error) {
	if a.rdb != nil {
		return a.rdb, nil
	}
	var rdb redis.UniversalClient
	if len(a.Config.Redis.ClusterAddrs) > 0 {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: a.Config.Redis.ClusterAddrs})
	} else {
		opt, err := redis.ParseURL(a.Config.Redis.URL)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		rdb = redis.NewClient(opt)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis: %w", err)
	}
	a.rdb = rdb
	return rdb, nil
}

func (a *app) close() {
	if a.pool != nil {
		a.pool.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	_ = a.Log.Sync()
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole CLI, callable in-process by tests. It returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name, ok := verbName(args)
	if !ok {
		printUsage(stderr)
		return helpOrUsage(args)
	}
	v, known := verbs[name]
	if !known {
		fmt.Fprintf(stderr, "eventsctl: unknown command %q\n\n", name)
		printUsage(stderr)
		return exitUsage
	}
	fs := newFlagSet(v)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printVerbUsage(stdout, name, v, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "eventsctl %s: %v\n\n", name, err)
		printVerbUsage(stderr, name, v, fs)
		return exitUsage
	}
	a, err := newApp(fs, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "eventsctl: %v\n", err)
		return exitUsage
	}
	defer a.close()
	pos := fs.Args()[1:] // fs.Args()[0] is the verb itself
	return report(stderr, name, v, fs, v.Run(ctx, a, pos))
}

// report turns a verb's error into a message and an exit code.
func report(stderr io.Writer, name string, v verb, fs *pflag.FlagSet, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, event.ErrInvalidSchema):
		fmt.Fprintf(stderr, "eventsctl %s: %v\n\n", name, err)
		printVerbUsage(stderr, name, v, fs)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "eventsctl %s: %v\n", name, err)
		return exitFailure
	}
}

// verbName finds the first positional argument, skipping global flags and
// their values.
func verbName(args []string) (string, bool) {
	fs := newFlagSet(verb{})
	fs.SetInterspersed(false)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return "", false
	}
	return fs.Arg(0), fs.Arg(0) != "help"
}

func helpOrUsage(args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "help" {
			return exitOK
		}
	}
	return exitUsage
}

// newFlagSet holds the global flags, every one a configuration key that
// config.Load binds, plus the verb's own.
func newFlagSet(v verb) *pflag.FlagSet {
	fs := pflag.NewFlagSet("eventsctl", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	d := config.Default()
	fs.String("config", "", "configuration file (YAML, JSON or TOML); env NEO_EVENTS_<SECTION>_<KEY> and flags override it")
	fs.String("postgres.url", d.Postgres.URL, "PostgreSQL URL")
	fs.String("redis.url", d.Redis.URL, "Redis URL")
	fs.String("streams.prefix", d.Streams.Prefix, "stream key prefix")
	fs.String("worker.group", d.Worker.Group, "consumer group")
	fs.String("log.level", "warn", "log level: debug, info, warn, error")
	fs.String("log.format", "console", "log format: json or console")
	if v.Flags != nil {
		v.Flags(fs)
	}
	return fs
}

func newApp(fs *pflag.FlagSet, stdout, stderr io.Writer) (*app, error) {
	path, _ := fs.GetString("config")
	cfg, err := config.Load(path, fs)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return &app{Config: cfg, Log: log, Stdout: stdout, Stderr: stderr, Flags: fs}, nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `eventsctl: operate neo-events (DESIGN §6)

Usage:
  eventsctl [global flags] <command> [arguments]

Commands:
`)
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].Summary)
	}
	fmt.Fprint(w, `
Global flags (also NEO_EVENTS_<SECTION>_<KEY> env vars, or keys in --config):
`)
	fmt.Fprint(w, globalFlagUsage())
	fmt.Fprint(w, `
Run "eventsctl <command> --help" for a command's arguments.
Exit codes: 0 ok, 1 the command failed, 2 the command line is wrong.
`)
}

func globalFlagUsage() string {
	return newFlagSet(verb{}).FlagUsages()
}

func printVerbUsage(w io.Writer, name string, v verb, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "eventsctl %s: %s\n\nUsage:\n", name, v.Summary)
	for _, line := range strings.Split(strings.TrimSpace(v.Usage), "\n") {
		fmt.Fprintf(w, "  eventsctl %s\n", strings.TrimSpace(line))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}
