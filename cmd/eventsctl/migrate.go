package main

import (
	"context"
	"fmt"

	"github.com/neo-events/neo-events/internal/store"
)

func init() {
	register("migrate", verb{
		Usage: "migrate",
		Summary: "create or update the database objects neo-events needs (safe to re-run; " +
			"platform-owned objects that already exist are left alone)",
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
	return nil
}
