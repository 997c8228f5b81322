package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

func init() {
	register("tenants", verb{
		Usage: "tenants create <slug>\n" +
			"tenants list",
		Summary: "create a tenant schema tenant_<slug> from tenant_template, or list tenant schemas",
		Run:     runTenants,
	})
}

func runTenants(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usageErrorf("tenants needs a subcommand: create <slug> or list")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create":
		if len(rest) != 1 {
			return usageErrorf("tenants create takes exactly one slug ([a-z0-9_]{1,50}), got %d arguments", len(rest))
		}
		return createTenant(ctx, a, rest[0])
	case "list":
		if len(rest) != 0 {
			return usageErrorf("tenants list takes no arguments")
		}
		return listTenants(ctx, a)
	default:
		return usageErrorf("unknown tenants subcommand %q: want create or list", sub)
	}
}

func createTenant(ctx context.Context, a *app, slug string) error {
	// Checked before connecting, so a typo is a usage error even with the database down.
	if err := event.ValidateSlug(slug); err != nil {
		return err
	}
	pool, err := a.Postgres(ctx)
	if err != nil {
		return err
	}
	schema, err := store.CreateTenant(ctx, pool, slug)
	if errors.Is(err, store.ErrTenantExists) {
		return fmt.Errorf("schema %s%s already exists; nothing changed", event.TenantPrefix, slug)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "created %s\n", schema)
	return nil
}

func listTenants(ctx context.Context, a *app) error {
	pool, err := a.Postgres(ctx)
	if err != nil {
		return err
	}
	schemas, err := store.ListSchemas(ctx, pool)
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if s != event.AdminSchema {
			fmt.Fprintln(a.Stdout, s)
		}
	}
	return nil
}
