package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// statusIndexes lists the indexes of <schema>.events whose definition reads status.
func statusIndexes(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT indexname FROM pg_indexes
		WHERE schemaname = $1 AND tablename = 'events' AND indexdef ~ '\mstatus\M' ORDER BY 1`, schema)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

func reloptions(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema string) string {
	t.Helper()
	var opts []string
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(c.reloptions, '{}') FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'events'`, schema).Scan(&opts))
	return strings.Join(opts, ",")
}

// hotUpdates inserts n events into schema, moves them to completed in
// transactions of 20 (as the status writer's flushes do) and returns how
// many of the n updates were heap-only.
func hotUpdates(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema string, n int) int64 {
	t.Helper()
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = mkEvent(t, schema, "users.created", time.Now())
	}
	_, err := store.InsertEvents(ctx, pool, schema, evs)
	require.NoError(t, err)
	// As a worker writes them: one statement per flush covering rows
	// that were inserted together (so share heap pages), each row growing
	// by the processing columns and the stream message id. One
	// transaction, because pg_stat_get_xact_* also counts earlier
	// transactions whose statistics are not flushed yet.
	const flush = 100
	var hot int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for start := 0; start < n; start += flush {
			var ups []store.StatusUpdate
			for _, e := range evs[start:min(start+flush, n)] {
				started := event.Now()
				ms := int32(3)
				ups = append(ups, store.StatusUpdate{ID: e.ID, Status: event.StatusCompleted,
					ProcessingStartedAt: started, ProcessingCompletedAt: started.Add(3 * time.Millisecond),
					ProcessingDurationMS: &ms, MessageID: "1764245000000-0"})
			}
			if err := store.UpdateStatuses(ctx, tx, schema, ups); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT pg_stat_get_xact_tuples_hot_updated(($1 || '.events')::regclass)`, schema).Scan(&hot)
	})
	require.NoError(t, err)
	return hot
}

func TestTuneMakesStatusUpdatesHOT(t *testing.T) {
	t.Parallel()
	ctx, pool := migratedDB(t)
	before := newTenant(t, ctx, pool)
	require.Len(t, statusIndexes(t, ctx, pool, before), 2, "the platform's index set reads status twice")
	require.Zero(t, hotUpdates(t, ctx, pool, before, 200), "untuned: no status update can be HOT")

	changed, err := store.Tune(ctx, pool)
	require.NoError(t, err)
	require.Len(t, changed, 9, "2 indexes and the fillfactor in admin, the template and the tenant: %v", changed)
	again, err := store.Tune(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, again, "idempotent")

	after := newTenant(t, ctx, pool)
	for _, s := range []string{event.AdminSchema, event.TemplateSchema, before, after} {
		require.Empty(t, statusIndexes(t, ctx, pool, s), s)
		require.Equal(t, fmt.Sprintf("fillfactor=%d", store.TunedFillfactor), reloptions(t, ctx, pool, s), s)
	}
	// With fillfactor 80 only about a quarter of such updates found room
	// on their page (48 of 200 here, 39 % in the e2e bench); the bench's
	// larger rows get 100 % with fillfactor 50, these small ones over 80 %.
	hot := hotUpdates(t, ctx, pool, after, 200)
	require.GreaterOrEqual(t, hot, int64(160), "status updates of a flush find room on their own page after tuning (%d of 200 HOT)", hot)
}

func TestTuneFindsThePlatformsOwnIndexNames(t *testing.T) {
	t.Parallel()
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	loadFixture(t, ctx, pool)
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.NotEmpty(t, statusIndexes(t, ctx, pool, event.AdminSchema))
	_, err = store.Tune(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, statusIndexes(t, ctx, pool, event.AdminSchema))
	require.Empty(t, statusIndexes(t, ctx, pool, event.TemplateSchema))
}
