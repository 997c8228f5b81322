package store_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

var ourSchemas = []string{"platform_common", "admin", "tenant_template", "neo_events"}

func TestMigrateEmptyDatabaseTwice(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))

	applied, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, store.Versions(), applied)
	first := snapshot(t, ctx, pool, ourSchemas...)
	require.NotEmpty(t, first)

	applied, err = store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, applied, "second run must apply nothing")
	require.Equal(t, first, snapshot(t, ctx, pool, ourSchemas...))

	// The enums carry exactly DESIGN §1's values, in order.
	require.Contains(t, first, "enum platform_common.event_status: pending,processing,completed,failed,retrying,cancelled,paused,blocked")
	require.Contains(t, first, "enum platform_common.event_priority: low,normal,high,very_high,critical")
	require.Contains(t, first, "enum platform_common.action_status: pending,running,completed,failed,retrying,cancelled,timeout,skipped,paused,blocked")
}

func TestMigrateRerunsPlatformBaseAsNoOp(t *testing.T) {
	// Even with the ledger gone, the platform steps must change nothing.
	ctx, pool := migratedDB(t)
	t.Parallel()
	before := snapshot(t, ctx, pool, "platform_common", "admin", "tenant_template")
	_, err := pool.Exec(ctx, "TRUNCATE neo_events.schema_migrations")
	require.NoError(t, err)
	applied, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, store.Versions(), applied)
	require.Equal(t, before, snapshot(t, ctx, pool, "platform_common", "admin", "tenant_template"))
}

func TestMigrateLeavesPlatformObjectsUnchanged(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	loadFixture(t, ctx, pool)
	// A tenant the platform created before neo-events arrived.
	_, err := pool.Exec(ctx, `CREATE SCHEMA tenant_acme;
		CREATE TABLE tenant_acme.events (LIKE tenant_template.events INCLUDING ALL);`)
	require.NoError(t, err)
	platform := []string{"platform_common", "admin", "tenant_template", "tenant_acme"}
	before := snapshot(t, ctx, pool, platform...)

	applied, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, store.Versions(), applied)
	after := snapshot(t, ctx, pool, platform...)

	for _, line := range before {
		require.Contains(t, after, line, "a platform object changed or vanished")
	}
	added := difference(after, before)
	require.Len(t, added, 3*4, "four replay indexes on each of admin, tenant_template, tenant_acme")
	for _, line := range added {
		require.True(t, strings.HasPrefix(line, "index ") && strings.Contains(line, ".neo_events_"),
			"only our tracked indexes may appear, got %q", line)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	var wg sync.WaitGroup
	results := make([][]string, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = store.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	var total []string
	for i := range results {
		require.NoError(t, errs[i])
		total = append(total, results[i]...)
	}
	require.Equal(t, store.Versions(), total, "each step applied exactly once")
}

func TestUUIDGenerateV7(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	var id uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, "SELECT platform_common.uuid_generate_v7()").Scan(&id))
	require.Equal(t, uuid.Version(7), id.Version())
	require.Equal(t, uuid.RFC4122, id.Variant())
}

func difference(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}
