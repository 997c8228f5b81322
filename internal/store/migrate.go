package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/neo-events/neo-events/event"
)

// OwnSchema holds what neo-events adds to the platform: the migrations
// ledger and the publisher's outbox.
const OwnSchema = "neo_events"

// migrateLockKey is the pg_advisory_lock key that serializes migrators
// ("neo-evnt" in ASCII, so it does not collide with small integers other
// tools pick).
const migrateLockKey int64 = 0x6e656f2d65766e74

var (
	//go:embed sql/0001_platform_common.sql
	platformCommonSQL string
	//go:embed sql/scope_tables.sql
	scopeTablesSQL string
)

// migration is one numbered, tracked step. Steps are additive and never edited
// once released: a change is a new step.
type migration struct {
	version string
	apply   func(ctx context.Context, tx pgx.Tx) error
}

// migrations lists every step in order.
var migrations = []migration{
	{version: "0001_platform_common", apply: execSQL(platformCommonSQL)},
	{version: "0002_platform_admin", apply: execSQL(scopeTables(event.AdminSchema))},
	{version: "0003_platform_tenant_template", apply: execSQL(scopeTables(event.TemplateSchema))},
	{version: "0004_replay_indexes", apply: replayIndexes},
	{version: "0005_outbox", apply: execSQL(outboxSQL)},
}

// scopeTables fills the scope template for admin or tenant_template; the two
// differ only in the tenant/organization columns (DESIGN §1).
func scopeTables(schema string) string {
	eventsCols, subFilters := "", "user_filter uuid[],"
	if schema == event.AdminSchema {
		eventsCols = "tenant_id uuid,\n            organization_id uuid,"
		subFilters = "tenant_filter uuid[],\n            organization_filter uuid[],"
	}
	return strings.NewReplacer(
		"__SCHEMA__", schema,
		"__EVENTS_SCOPE_COLUMNS__", eventsCols,
		"__SUBSCRIPTION_FILTERS__", subFilters,
	).Replace(scopeTablesSQL)
}

const outboxSQL = `
CREATE TABLE IF NOT EXISTS neo_events.outbox (
    batch_id uuid PRIMARY KEY,
    schema_name text NOT NULL,
    event_ids uuid[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_created_at_idx ON neo_events.outbox (created_at);
COMMENT ON TABLE neo_events.outbox IS
    'One row per publisher batch committed to Postgres but not yet confirmed on a stream; the relay re-publishes old rows.';
`

// replayIndexes adds the lookups of replay, causality chains and keyset
// pagination to every events table that exists now. Tenants created later
// inherit them from tenant_template (CreateTenant copies indexes).
func replayIndexes(ctx context.Context, tx pgx.Tx) error {
	schemas, err := ListSchemas(ctx, tx)
	if err != nil {
		return err
	}
	schemas = append(schemas, event.TemplateSchema)
	for _, s := range schemas {
		if s != event.TemplateSchema {
			if err := event.ValidateSchema(s); err != nil {
				return err
			}
		}
		t := event.QuoteIdent(s) + ".events"
		sql := fmt.Sprintf(`
CREATE INDEX IF NOT EXISTS neo_events_correlation_id_idx ON %[1]s (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS neo_events_causation_id_idx ON %[1]s (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS neo_events_aggregate_idx ON %[1]s (aggregate_type, aggregate_id, created_at);
CREATE INDEX IF NOT EXISTS neo_events_created_at_id_idx ON %[1]s (created_at, id);`, t)
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("replay indexes on %s: %w", s, err)
		}
	}
	return nil
}

func execSQL(sql string) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql)
		return err
	}
}

// Migrate brings the database up to date and returns the versions it
// applied, in order; none means it was up to date. Platform objects
// (platform_common, admin, tenant_template) are created only where missing,
// so a database built by the platform's own migrations keeps them as they
// are. Concurrent migrators wait for each other on an advisory lock; each
// step commits with its ledger row, so a failed run resumes where it stopped.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied []string, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the caller's may be cancelled, and a lock left on a
		// pooled connection would block every later migrator.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
			err = errors.Join(err, fmt.Errorf("migrate: release advisory lock: %w", uerr))
		}
	}()
	done, err := ensureLedger(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if err := applyOne(ctx, conn.Conn(), m); err != nil {
			return applied, err
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// ensureLedger creates neo_events.schema_migrations if needed and returns the
// versions already applied.
func ensureLedger(ctx context.Context, conn *pgx.Conn) (map[string]bool, error) {
	const ddl = `
CREATE SCHEMA IF NOT EXISTS neo_events;
CREATE TABLE IF NOT EXISTS neo_events.schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);`
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("migrate: create ledger: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT version FROM neo_events.schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read ledger: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("migrate: read ledger: %w", err)
	}
	done := make(map[string]bool, len(versions))
	for _, v := range versions {
		done[v] = true
	}
	return done, nil
}

func applyOne(ctx context.Context, conn *pgx.Conn, m migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := m.apply(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO neo_events.schema_migrations (version) VALUES ($1)", m.version)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: apply %s: %w", m.version, err)
	}
	return nil
}

// Versions lists every migration version this build knows, in order.
func Versions() []string {
	vs := make([]string, len(migrations))
	for i, m := range migrations {
		vs[i] = m.version
	}
	return vs
}
