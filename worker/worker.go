// Package worker is the entry point of a neo-events worker binary. Another
// team builds its own worker by registering its handlers and calling Main:
//
//	func main() {
//		reg := handler.NewRegistry()
//		reg.MustRegister("billing.invoice", handler.HandlerFunc(sendInvoice))
//		worker.Main(reg)
//	}
//
// The binary then takes the same flags, configuration file and
// NEO_EVENTS_* environment as cmd/worker, and gets the built-in handlers
// (`webhook`, `noop`) too.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/builtin"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/demo"
	"github.com/neo-events/neo-events/internal/fleet"
	"github.com/neo-events/neo-events/internal/gctune"
	"github.com/neo-events/neo-events/internal/logging"
)

// Main runs the worker until SIGTERM or SIGINT and exits the process: 0
// after a clean shutdown, 1 on a failure, 2 on bad flags or configuration.
func Main(reg *handler.Registry) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], reg, os.Stderr))
}

// Run is Main without the process around it: it parses args, runs until
// ctx ends and returns the exit code.
func Run(ctx context.Context, args []string, reg *handler.Registry, stderr io.Writer) int {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); NEO_EVENTS_* variables and flags override it")
	fs.String("worker.group", config.DefaultGroup, "consumer group (one per Deployment)")
	fs.String("worker.consumer", "", "consumer name (defaults to the hostname, the pod name on Kubernetes)")
	fs.String("http.addr", config.DefaultHTTPAddr, "address for /metrics, /healthz and /readyz")
	fs.Bool("http.pprof", false, "also serve Go profiles under /debug/pprof/ on http.addr (for diagnosis; keep the address private)")
	fs.String("log.level", config.DefaultLogLevel, "debug, info, warn or error")
	fs.String("log.format", config.DefaultLogFormat, "json or console")
	demoHandlers := fs.Bool("demo-handlers", false, "also register the demo handlers demo_flaky and demo_fail (for make demo only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: worker [--config FILE] [flags]\n\nProcesses neo-events streams as one member of a consumer group.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	changed := pflag.NewFlagSet("changed", pflag.ContinueOnError)
	fs.Visit(func(f *pflag.Flag) { changed.AddFlag(f) })
	cfg, err := config.Load(*path, changed)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	log.Info("garbage collector", zap.Stringer("settings", gctune.Apply()))
	if reg == nil {
		reg = handler.NewRegistry()
	}
	if err := builtin.Register(reg); err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	opts := fleet.Options{Registry: reg, Logger: log}
	if *demoHandlers {
		if err := demo.Register(reg); err != nil {
			fmt.Fprintf(stderr, "worker: %v\n", err)
			return 2
		}
		// demo_flaky fails the first attempts of every event on purpose;
		// a breaker would read that as an outage and hold the demo's calls.
		opts.BreakerThreshold = 1 << 30
	}
	w, err := fleet.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	if err := w.Run(ctx); err != nil {
		log.Error("worker failed", logging.Err(err))
		return 1
	}
	return 0
}
