package store_test

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// migratedDB returns a pool on a fresh, migrated database.
func migratedDB(t testing.TB) (context.Context, *pgxpool.Pool) {
	t.Helper()
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	return ctx, pool
}

// newTenant creates a tenant schema in a migrated database.
func newTenant(t testing.TB, ctx context.Context, pool *pgxpool.Pool) string {
	t.Helper()
	schema, err := store.CreateTenant(ctx, pool, strings.TrimPrefix(testutil.RandomName("t"), "t_"))
	require.NoError(t, err)
	return schema
}

// mkEvent returns a valid event in schema, created at base+offset.
func mkEvent(t testing.TB, schema, typ string, createdAt time.Time) *event.Event {
	t.Helper()
	e, err := event.New(schema, typ, "user", uuid.New(), json.RawMessage(`{"n":1}`))
	require.NoError(t, err)
	e.CreatedAt, e.UpdatedAt = createdAt, createdAt
	return e
}

// jsonEqual compares JSON by meaning: Postgres' jsonb re-spaces and
// re-orders object keys.
var jsonEqual = cmp.FilterValues(func(a, b json.RawMessage) bool { return true },
	cmp.Comparer(func(a, b json.RawMessage) bool {
		if len(a) == 0 || len(b) == 0 {
			return len(a) == len(b)
		}
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
	}))

func requireEvents(t testing.TB, want, got []*event.Event) {
	t.Helper()
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Fatalf("events mismatch (-want +got):\n%s", diff)
	}
}

// snapshot describes every object of the given schemas from pg_catalog, one
// line per object, sorted: the test of "migrating changes nothing".
func snapshot(t testing.TB, ctx context.Context, db store.DB, schemas ...string) []string {
	t.Helper()
	const q = `
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY($1))
SELECT 'table ' || ns.nspname || '.' || c.relname || ' kind=' || c.relkind::text || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'S')
UNION ALL
SELECT 'column ' || ns.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
       || ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || ns.nspname || '.' || i.relname || ': ' || pg_get_indexdef(i.oid)
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN ns ON ns.oid = i.relnamespace
UNION ALL
SELECT 'constraint ' || ns.nspname || '.' || c.relname || '.' || k.conname || ': ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns ON ns.oid = c.relnamespace
UNION ALL
SELECT 'trigger ' || ns.nspname || '.' || c.relname || '.' || g.tgname || ': ' || pg_get_triggerdef(g.oid)
  FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN ns ON ns.oid = c.relnamespace WHERE NOT g.tgisinternal
UNION ALL
SELECT 'function ' || ns.nspname || '.' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') '
       || pg_get_function_result(p.oid) || ' lang=' || l.lanname || ' volatile=' || p.provolatile::text || ' src=' || md5(p.prosrc)
       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT 'enum ' || ns.nspname || '.' || t.typname || ': ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY ns.nspname, t.typname
UNION ALL
SELECT 'schema ' || ns.nspname || ' comment=' || coalesce(obj_description(ns.oid, 'pg_namespace'), '') FROM ns
ORDER BY 1`
	rows, err := db.Query(ctx, q, schemas)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return lines
}

// loadFixture runs testdata/platform_fixture.sql, the platform's own migrations.
func loadFixture(t testing.TB, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	sql, err := os.ReadFile("testdata/platform_fixture.sql")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, string(sql))
	require.NoError(t, err)
}

func sortStrings(s []string) { sort.Strings(s) }
