package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// execDB returns a migrated database, a fresh tenant schema in it, one
// stored event and one action.
func execDB(t *testing.T) (context.Context, *pgxpool.Pool, string, *event.Event, uuid.UUID) {
	t.Helper()
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	schema, err := store.CreateTenant(ctx, pool, strings.TrimPrefix(testutil.RandomName("x"), "x_"))
	require.NoError(t, err)
	ev := execEvent(t, schema)
	_, err = store.InsertEvents(ctx, pool, schema, []*event.Event{ev})
	require.NoError(t, err)
	return ctx, pool, schema, ev, execAction(t, ctx, pool, schema, "send_welcome")
}

func execEvent(t testing.TB, schema string) *event.Event {
	t.Helper()
	ev, err := event.New(schema, "users.created", "user", uuid.New(), json.RawMessage(`{"a":1}`))
	require.NoError(t, err)
	return ev
}

// execAction inserts an action row and returns its id.
func execAction(t testing.TB, ctx context.Context, db store.DB, schema, name string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	err := db.QueryRow(ctx, "INSERT INTO "+event.QuoteIdent(schema)+
		".actions (name, action_type, handler_class, event_patterns) VALUES ($1, 'webhook', 'webhook', '{users.*}') RETURNING id",
		name).Scan(&id)
	require.NoError(t, err)
	return id
}

func i32(n int32) *int32 { return &n }

// fullExecution sets every field to a non-zero value.
func fullExecution(t testing.TB, eventID, actionID, parent uuid.UUID) store.Execution {
	t.Helper()
	id, err := event.NewID()
	require.NoError(t, err)
	q := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	return store.Execution{
		ID: id, EventID: eventID, ActionID: actionID, Status: store.ExecFailed,
		QueuedAt: q, StartedAt: q.Add(time.Millisecond), CompletedAt: q.Add(43 * time.Millisecond),
		DurationMS: i32(42), Attempt: 2, IsRetry: true, ParentExecutionID: parent,
		ErrorMessage: "boom ü", ErrorDetails: json.RawMessage(`{"code": 503}`), ErrorStackTrace: "main.go:1\nmain.go:2",
		QueueMessageID: "1700000000000-1", WorkerID: "worker-0", MemoryUsageMB: i32(12), CPUTimeMS: i32(7),
		InputData: json.RawMessage(`{"in": [1, 2]}`), OutputData: json.RawMessage(`{"out": "x"}`),
		ExecutionContext: json.RawMessage(`{"trace": "abc"}`),
		CreatedAt:        q.Add(time.Second), UpdatedAt: q.Add(2 * time.Second),
	}
}

func TestExecutionRoundTripEveryField(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, action := execDB(t)
	parent := fullExecution(t, ev.ID, action, uuid.Nil)
	parent.Attempt, parent.IsRetry, parent.Status = 1, false, store.ExecRetrying
	child := fullExecution(t, ev.ID, action, parent.ID)
	child.Status = store.ExecCompleted
	// A minimal row: zero values are NULL or the column defaults.
	minimal := store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: action, Status: store.ExecPending, Attempt: 3}

	// Parent and child in one batch: the self-reference is checked at the end of the statement.
	n, err := store.InsertExecutions(ctx, pool, schema, []store.Execution{child, parent, minimal})
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	got, err := store.ExecutionsForEvent(ctx, pool, schema, ev.ID)
	require.NoError(t, err)
	require.Len(t, got, 3)
	if diff := cmp.Diff([]store.Execution{parent, child}, got[:2]); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	m := got[2]
	require.Equal(t, minimal.ID, m.ID)
	require.Nil(t, m.DurationMS)
	require.Nil(t, m.ErrorDetails)
	require.Nil(t, m.InputData)
	require.True(t, m.StartedAt.IsZero())
	require.False(t, m.QueuedAt.IsZero(), "queued_at defaults to the insert time")
	require.WithinDuration(t, time.Now(), m.CreatedAt, time.Minute)
}

func TestInsertExecutionsIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, action := execDB(t)
	x := fullExecution(t, ev.ID, action, uuid.Nil)
	x.Attempt, x.IsRetry = 1, false
	n, err := store.InsertExecutions(ctx, pool, schema, []store.Execution{x})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// A redelivery submits the same attempt again, even with other values: nothing changes.
	again := x
	again.Status, again.ErrorMessage = store.ExecCompleted, "different"
	y := x
	y.ID = uuid.New()
	n, err = store.InsertExecutions(ctx, pool, schema, []store.Execution{again, y})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the new id is inserted")

	got, err := store.ExecutionsForEvent(ctx, pool, schema, ev.ID)
	require.NoError(t, err)
	require.Len(t, got, 2)
	byID := map[uuid.UUID]store.Execution{got[0].ID: got[0], got[1].ID: got[1]}
	require.Equal(t, store.ExecFailed, byID[x.ID].Status)
	require.Equal(t, "boom ü", byID[x.ID].ErrorMessage)
}

type actionCounters struct{ total, ok, bad, avg int64 }

func readCounters(t testing.TB, ctx context.Context, db store.DB, schema string, id uuid.UUID) actionCounters {
	t.Helper()
	var c actionCounters
	err := db.QueryRow(ctx, "SELECT total_executions, successful_executions, failed_executions, avg_execution_time_ms FROM "+
		event.QuoteIdent(schema)+".actions WHERE id = $1", id).Scan(&c.total, &c.ok, &c.bad, &c.avg)
	require.NoError(t, err)
	return c
}

func TestAddActionStatsArithmetic(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, _, a := execDB(t)
	b := execAction(t, ctx, pool, schema, "other")
	steps := []struct {
		name  string
		in    []store.ActionStats
		wantA actionCounters
		wantB actionCounters
	}{
		{"first batch", []store.ActionStats{{ActionID: a, Total: 2, Successful: 1, Failed: 1, SumDurationMS: 30}},
			actionCounters{2, 1, 1, 15}, actionCounters{0, 0, 0, 0}},
		// avg = (15*2 + 60) / (2+2) = 22.5 -> 23; duplicates of one action are summed.
		{"summed duplicates", []store.ActionStats{
			{ActionID: a, Total: 1, Successful: 1, SumDurationMS: 20},
			{ActionID: b, Total: 1, Failed: 1, SumDurationMS: 100},
			{ActionID: a, Total: 1, Successful: 1, SumDurationMS: 40}},
			actionCounters{4, 3, 1, 23}, actionCounters{1, 0, 1, 100}},
		// Unknown actions are ignored.
		{"unknown action", []store.ActionStats{{ActionID: uuid.New(), Total: 1, Successful: 1}},
			actionCounters{4, 3, 1, 23}, actionCounters{1, 0, 1, 100}},
	}
	for _, s := range steps {
		require.NoError(t, store.AddActionStats(ctx, pool, schema, s.in), s.name)
		require.Equal(t, s.wantA, readCounters(t, ctx, pool, schema, a), s.name)
		require.Equal(t, s.wantB, readCounters(t, ctx, pool, schema, b), s.name)
	}
}

func TestRecordExecutionsCountsEachAttemptOnce(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, a := execDB(t)
	mk := func(status string, ms int32) store.Execution {
		return store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: a, Status: status, Attempt: 1, DurationMS: i32(ms)}
	}
	xs := []store.Execution{
		mk(store.ExecCompleted, 10), mk(store.ExecFailed, 20), mk(store.ExecTimeout, 30),
		mk(store.ExecRetrying, 40), mk(store.ExecRunning, 1000), mk(store.ExecSkipped, 1000),
	}
	n, actions, err := store.RecordExecutions(ctx, pool, schema, xs)
	require.NoError(t, err)
	require.EqualValues(t, 6, n)
	require.EqualValues(t, 1, actions)
	want := actionCounters{4, 1, 3, 25}
	require.Equal(t, want, readCounters(t, ctx, pool, schema, a))
	require.Equal(t, []store.ActionStats{{ActionID: a, Total: 4, Successful: 1, Failed: 3, SumDurationMS: 100}}, store.StatsOf(xs))

	// Submitting the same attempts again inserts and counts nothing.
	n, actions, err = store.RecordExecutions(ctx, pool, schema, xs)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, actions)
	require.Equal(t, want, readCounters(t, ctx, pool, schema, a))
}

func TestCompletedActions(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, a := execDB(t)
	b := execAction(t, ctx, pool, schema, "b")
	c := execAction(t, ctx, pool, schema, "c")
	ev2 := execEvent(t, schema)
	_, err := store.InsertEvents(ctx, pool, schema, []*event.Event{ev2})
	require.NoError(t, err)
	mk := func(e, act uuid.UUID, status string, attempt int) store.Execution {
		return store.Execution{ID: uuid.New(), EventID: e, ActionID: act, Status: status, Attempt: attempt}
	}
	_, err = store.InsertExecutions(ctx, pool, schema, []store.Execution{
		mk(ev.ID, a, store.ExecFailed, 1), mk(ev.ID, a, store.ExecCompleted, 2),
		mk(ev.ID, b, store.ExecFailed, 1), mk(ev.ID, c, store.ExecCompleted, 1),
		mk(ev2.ID, b, store.ExecCompleted, 1),
	})
	require.NoError(t, err)
	got, err := store.CompletedActions(ctx, pool, schema, []uuid.UUID{ev.ID, ev2.ID, uuid.New()})
	require.NoError(t, err)
	want := map[uuid.UUID][]uuid.UUID{ev.ID: sortedIDs(a, c), ev2.ID: {b}}
	require.Equal(t, want, got)
}

func sortedIDs(ids ...uuid.UUID) []uuid.UUID {
	if strings.Compare(ids[0].String(), ids[1].String()) > 0 {
		ids[0], ids[1] = ids[1], ids[0]
	}
	return ids
}

func TestInsertExecutionsRefusesBadInput(t *testing.T) {
	t.Parallel()
	ok := store.Execution{ID: uuid.New(), EventID: uuid.New(), ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 1}
	now := time.Now()
	cases := []struct {
		name   string
		schema string
		edit   func(x *store.Execution)
		want   error
	}{
		{"hostile schema", `tenant_x"; DROP TABLE admin.events; --`, func(*store.Execution) {}, event.ErrInvalidSchema},
		{"public schema", "public", func(*store.Execution) {}, event.ErrInvalidSchema},
		{"nil id", "admin", func(x *store.Execution) { x.ID = uuid.Nil }, store.ErrInvalidArgument},
		{"nil action", "admin", func(x *store.Execution) { x.ActionID = uuid.Nil }, store.ErrInvalidArgument},
		{"unknown status", "admin", func(x *store.Execution) { x.Status = "done'; --" }, store.ErrInvalidArgument},
		{"attempt 0", "admin", func(x *store.Execution) { x.Attempt = 0 }, store.ErrInvalidArgument},
		{"own parent", "admin", func(x *store.Execution) { x.ParentExecutionID = x.ID }, store.ErrInvalidArgument},
		{"NUL in text", "admin", func(x *store.Execution) { x.ErrorMessage = "a\x00b" }, store.ErrInvalidArgument},
		{"long worker id", "admin", func(x *store.Execution) { x.WorkerID = strings.Repeat("w", 101) }, store.ErrInvalidArgument},
		{"bad JSON", "admin", func(x *store.Execution) { x.OutputData = json.RawMessage(`{"a":`) }, store.ErrInvalidArgument},
		{"jsonb NUL", "admin", func(x *store.Execution) { x.InputData = json.RawMessage(`{"a":"\u0000"}`) }, store.ErrInvalidArgument},
		{"negative duration", "admin", func(x *store.Execution) { x.DurationMS = i32(-1) }, store.ErrInvalidArgument},
		{"completed before started", "admin", func(x *store.Execution) {
			x.StartedAt, x.CompletedAt = now, now.Add(-time.Second)
		}, store.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := ok
			tc.edit(&x)
			// A nil DB: validation must refuse before any query is attempted.
			_, err := store.InsertExecutions(context.Background(), nil, tc.schema, []store.Execution{x})
			require.ErrorIs(t, err, tc.want)
		})
	}
	err := store.AddActionStats(context.Background(), nil, "admin", []store.ActionStats{{ActionID: uuid.New(), Total: 1, Successful: 1, Failed: 1}})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = store.CompletedActions(context.Background(), nil, "pg_catalog", []uuid.UUID{uuid.New()})
	require.ErrorIs(t, err, event.ErrInvalidSchema)
}

func TestInsertExecutionsUnknownActionIsAForeignKeyError(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, _ := execDB(t)
	x := store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 1}
	_, err := store.InsertExecutions(ctx, pool, schema, []store.Execution{x})
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "got %v", err)
	require.Equal(t, "23503", pgErr.Code)
}

func TestMissingEvents(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, _ := execDB(t)
	a, b := uuid.New(), uuid.New()
	got, err := store.MissingEvents(ctx, pool, schema, []uuid.UUID{a, ev.ID, b})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{a, b}, got)
	got, err = store.MissingEvents(ctx, pool, schema, []uuid.UUID{ev.ID})
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = store.MissingEvents(ctx, pool, "tenant_X", []uuid.UUID{a})
	require.ErrorIs(t, err, event.ErrInvalidSchema)
}
