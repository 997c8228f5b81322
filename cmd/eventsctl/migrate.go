package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/neo-events/neo-events/internal/store"
)

func init() {
	register("migrate", verb{
		Usage: "migrate [--tune]",
		Summary: "create or update the database objects neo-events needs (safe to re-run; " +
			"platform-owned objects that already exist are left alone)",
		Flags: func(fs *pflag.FlagSet) {
			fs.Bool("tune", false, "also apply the optional throughput tuning: drop the events indexes that read "+
				"status and set fillfactor "+strconv.Itoa(store.TunedFillfactor)+", so status updates are HOT (see docs/PERFORMANCE.md; "+
				"costs: no index for filtering events by status)")
		},
		Run: runMigrate,
	})
}

func runMigrate(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usageErrorf("migrate takes no arguments, got %q", args)
	}
	pool, err := a.Postgres(ctx)
	if err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, pool)
	for _, v := range applied {
		fmt.Fprintf(a.Stdout, "applied %s\n", v)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(a.Stdout, "up to date (%d migrations)\n", len(store.Versions()))
	}
	if tune, _ := a.Flags.GetBool("tune"); tune {
		changed, err := store.Tune(ctx, pool)
		if err != nil {
			return err
		}
		for _, c := range changed {
			fmt.Fprintln(a.Stdout, c)
		}
		if len(changed) == 0 {
			fmt.Fprintln(a.Stdout, "tuning already applied")
		}
	}
	return nil
}
