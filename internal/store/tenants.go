package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/neo-events/neo-events/event"
)

// templateTables are the tables a tenant schema copies from tenant_template,
// in an order where every foreign key's target comes first.
var templateTables = []string{"events", "actions", "action_executions", "event_subscriptions", "queue_metrics"}

// ErrNoTemplate: tenant_template is missing; run `eventsctl migrate` first.
var ErrNoTemplate = errors.New("schema tenant_template is missing: run `eventsctl migrate` first")

// CreateTenant creates schema tenant_<slug> as a copy of tenant_template:
// every table with its columns, defaults, checks, indexes and comments, its
// foreign keys pointed at the new schema, and its triggers, all in one
// transaction. A slug outside [a-z0-9_]{1,50} is refused with
// event.ErrInvalidSchema; an existing schema with ErrTenantExists.
func CreateTenant(ctx context.Context, pool *pgxpool.Pool, slug string) (schema string, err error) {
	schema, err = event.TenantSchema(slug)
	if err != nil {
		return "", fmt.Errorf("create tenant: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return copyTemplate(ctx, tx, schema) })
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P06" { // duplicate_schema: lost a race
		err = ErrTenantExists
	}
	if err != nil {
		return "", fmt.Errorf("create tenant %s: %w", schema, err)
	}
	return schema, nil
}

func copyTemplate(ctx context.Context, tx pgx.Tx, schema string) error {
	var exists, template bool
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		to_regclass('tenant_template.events') IS NOT NULL`, schema).Scan(&exists, &template)
	switch {
	case err != nil:
		return err
	case exists:
		return ErrTenantExists
	case !template:
		return ErrNoTemplate
	}
	// Catalog definitions are read while tenant_template is the search path,
	// so references to its own tables come back unqualified and, replayed
	// under the new search path, land in the new schema.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO tenant_template"); err != nil {
		return err
	}
	ddl, err := templateDependents(ctx, tx)
	if err != nil {
		return err
	}
	q := event.QuoteIdent(schema)
	stmts := []string{"CREATE SCHEMA " + q, "SET LOCAL search_path TO " + q}
	for _, t := range templateTables {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.%s (LIKE tenant_template.%s INCLUDING ALL)", q, t, t))
	}
	stmts = append(stmts, ddl...)
	// LIKE copies indexes but not storage parameters: carry over the
	// fillfactor that Tune may have set on the template.
	ff, err := fillfactor(ctx, tx, event.TemplateSchema)
	if err != nil {
		return err
	}
	if ff > 0 {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s.events SET (fillfactor = %d)", q, ff))
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// templateDependents returns the ALTER TABLE ... ADD CONSTRAINT (foreign
// keys) and CREATE TRIGGER statements that LIKE ... INCLUDING ALL does not
// copy. The text comes from the catalog (pg_get_constraintdef and the
// "pretty" pg_get_triggerdef, which leave visible tables unqualified;
// never from input); table names are quoted.
func templateDependents(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `
SELECT 1 AS ord, c.relname, format('ALTER TABLE %I ADD CONSTRAINT %I %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE k.contype = 'f' AND c.relnamespace = 'tenant_template'::regnamespace AND c.relname = ANY($1)
UNION ALL
SELECT 2, c.relname, pg_get_triggerdef(t.oid, true)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relnamespace = 'tenant_template'::regnamespace AND c.relname = ANY($1)
 ORDER BY 1, 2, 3`, templateTables)
	if err != nil {
		return nil, fmt.Errorf("read tenant_template constraints and triggers: %w", err)
	}
	var out []string
	for rows.Next() {
		var ord int
		var table, stmt string
		if err := rows.Scan(&ord, &table, &stmt); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, stmt)
	}
	return out, rows.Err()
}

// ListSchemas returns the schemas that hold events: `admin` (when its events
// table exists) and every tenant_<slug> schema with an events table, sorted;
// tenant_template is not one. A schema whose name breaks the tenant grammar
// (say, created by hand as "tenant_Foo") is skipped, since no query may
// name it.
func ListSchemas(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.Query(ctx, `
SELECT n.nspname
  FROM pg_namespace n
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'events' AND c.relkind IN ('r', 'p')
 WHERE n.nspname = 'admin' OR (n.nspname LIKE 'tenant\_%' AND n.nspname <> 'tenant_template')`)
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if event.ValidateSchema(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
