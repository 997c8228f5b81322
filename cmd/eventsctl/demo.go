package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/neo-events/neo-events/internal/demo"
)

func init() {
	register("demo", verb{
		Usage: "demo setup [--reset] [--webhook-addr 127.0.0.1:0]\n" +
			"demo run [--events 3000] [--timeout 60s]",
		Summary: "for `make demo` only: reset and set up a demo database, then publish a load and report what happened",
		Flags: func(fs *pflag.FlagSet) {
			fs.Bool("reset", false, "setup: first drop every neo-events schema and every key under streams.prefix (database name and prefix must contain \"demo\")")
			fs.String("webhook-addr", "127.0.0.1:0", "setup: loopback host:port of the demo webhook receiver (port 0 picks a free one)")
			fs.Int("events", 3000, "run: events to publish, spread over admin and the demo tenants")
			fs.Duration("timeout", 60*time.Second, "run: how long to wait for every event to be final")
		},
		Run: runDemo,
	})
}

func runDemo(ctx context.Context, a *app, args []string) error {
	if len(args) != 1 {
		return usageErrorf("demo needs one subcommand: setup or run")
	}
	switch args[0] {
	case "setup":
		return demoSetup(ctx, a)
	case "run":
		return demoRun(ctx, a)
	default:
		return usageErrorf("unknown demo subcommand %q: want setup or run", args[0])
	}
}

// demoGuard refuses a database whose name lacks "demo": the demo writes
// thousands of events and (with --reset) drops schemas.
func demoGuard(ctx context.Context, a *app) error {
	pool, err := a.Postgres(ctx)
	if err != nil {
		return err
	}
	return demo.CheckDatabase(ctx, pool)
}

func demoSetup(ctx context.Context, a *app) error {
	reset, _ := a.Flags.GetBool("reset")
	addr, _ := a.Flags.GetString("webhook-addr")
	wh, err := demo.NewWebhook(addr)
	if err != nil {
		return usageErrorf("--webhook-addr: %v", err)
	}
	if err := demoGuard(ctx, a); err != nil {
		return err
	}
	pool, _ := a.Postgres(ctx)
	if reset {
		rdb, err := a.Redis(ctx)
		if err != nil {
			return err
		}
		if err := demo.Reset(ctx, pool, rdb, a.Config.Streams.Prefix); err != nil {
			return err
		}
		fmt.Fprintf(a.Stdout, "reset: dropped the neo-events schemas and the keys %s:*\n", a.Config.Streams.Prefix)
	}
	applied, err := demo.Setup(ctx, pool, wh)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "migrated (%d steps applied); schemas %s; actions %s, %s, %s in each\n",
		len(applied), strings.Join(demo.Schemas(), ", "), demo.ActionWebhook, demo.ActionFlaky, demo.ActionBroken)
	fmt.Fprintf(a.Stdout, "webhook receiver for `demo run`: %s (signed with a fresh secret)\n", wh.URL)
	return nil
}

func demoRun(ctx context.Context, a *app) error {
	n, _ := a.Flags.GetInt("events")
	timeout, _ := a.Flags.GetDuration("timeout")
	if n < 1 || n > 1_000_000 {
		return usageErrorf("--events %d: want 1..1000000", n)
	}
	if timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	if err := demoGuard(ctx, a); err != nil {
		return err
	}
	pool, _ := a.Postgres(ctx)
	rdb, err := a.Redis(ctx)
	if err != nil {
		return err
	}
	c := a.Config
	fmt.Fprintf(a.Stdout, "publishing %d events to %s (prefix %s), waiting for group %s...\n",
		n, strings.Join(demo.Schemas(), ", "), c.Streams.Prefix, c.Worker.Group)
	s, err := demo.Run(ctx, demo.RunOptions{
		Pool: pool, Redis: rdb, Prefix: c.Streams.Prefix, Group: c.Worker.Group, Partitions: c.Streams.Partitions,
		Events: n, Timeout: timeout, Progress: a.Stdout,
	})
	if err != nil {
		return err
	}
	s.Write(a.Stdout)
	return s.Err()
}
