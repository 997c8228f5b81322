package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

// execSet builds the same executions for one event: every field set (a
// parent and its child), a typical completed attempt as a worker writes it,
// and a minimal row whose zero values become NULL or defaults.
func execSet(t *testing.T, eventID, action uuid.UUID, now time.Time) []store.Execution {
	parent := fullExecution(t, eventID, action, uuid.Nil)
	parent.Attempt, parent.IsRetry, parent.Status = 1, false, store.ExecRetrying
	child := fullExecution(t, eventID, action, parent.ID)
	child.Status = store.ExecCompleted
	typical := store.Execution{ID: uuid.Must(uuid.NewV7()), EventID: eventID, ActionID: action, Status: store.ExecCompleted,
		QueuedAt: now, StartedAt: now, CompletedAt: now.Add(3 * time.Millisecond), DurationMS: i32(3), Attempt: 1,
		QueueMessageID: "1764284000000-7", WorkerID: "worker-1", OutputData: json.RawMessage(`{"ok":true}`)}
	minimal := store.Execution{ID: uuid.New(), EventID: eventID, ActionID: action, Status: store.ExecPending, Attempt: 3}
	timedOut := store.Execution{ID: uuid.New(), EventID: eventID, ActionID: action, Status: store.ExecTimeout, Attempt: 1,
		QueuedAt: now, StartedAt: now, CompletedAt: now.Add(1500 * time.Millisecond)} // no duration: taken from the timings
	// The child before its parent: the reference is checked at the end of the statement.
	return []store.Execution{child, parent, typical, minimal, timedOut}
}

// inTx returns a connection inside a transaction.
func inTx(t *testing.T, ctx context.Context, pool *pgxpool.Pool) *pgxpool.Conn {
	t.Helper()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	_, err = conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	return conn
}

func TestExecutionsCopyWritesWhatInsertWrites(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, evA, action := execDB(t)
	evB := execEvent(t, schema)
	_, err := store.InsertEvents(ctx, pool, schema, []*event.Event{evB})
	require.NoError(t, err)

	now := event.Now()
	inserted := execSet(t, evA.ID, action, now)
	wantStats, err := store.InsertExecutionsCounted(ctx, pool, schema, inserted)
	require.NoError(t, err)

	copied := execSet(t, evB.ID, action, now)
	conn := inTx(t, ctx, pool)
	var c store.ExecutionsCopy
	gotStats, err := c.CopyAndCommit(ctx, conn.Conn().PgConn(), schema, copied)
	require.NoError(t, err)
	require.Equal(t, byte('I'), conn.Conn().PgConn().TxStatus(), "the transaction is committed")
	require.Equal(t, wantStats, gotStats, "statistics as the INSERT's RETURNING counts them")

	// Read back through another connection: committed, and equal column by
	// column to what the INSERT wrote (ids and event aside).
	a, err := store.ExecutionsForEvent(ctx, pool, schema, evA.ID)
	require.NoError(t, err)
	b, err := store.ExecutionsForEvent(ctx, pool, schema, evB.ID)
	require.NoError(t, err)
	require.Len(t, b, len(copied))
	ma, mb := linked(t, a, inserted), linked(t, b, copied)
	for i := range inserted {
		ra, rb := ma[i], mb[i]
		if inserted[i].CreatedAt.IsZero() {
			// Defaulted to the time of each write.
			require.WithinDuration(t, ra.CreatedAt, rb.CreatedAt, time.Minute)
			require.WithinDuration(t, ra.QueuedAt, rb.QueuedAt, time.Minute)
			ra.CreatedAt, rb.CreatedAt, ra.UpdatedAt, rb.UpdatedAt, ra.QueuedAt, rb.QueuedAt =
				time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Fatalf("execution %d: INSERT (-) and COPY (+) wrote different rows:\n%s", i, diff)
		}
	}
	// The parent link points at the copied parent.
	for _, x := range b {
		if x.ParentExecutionID != uuid.Nil {
			require.Equal(t, copied[1].ID, x.ParentExecutionID)
		}
	}
}

func TestExecutionsCopyFailures(t *testing.T) {
	t.Parallel()
	ctx, pool, schema, ev, action := execDB(t)
	existing := store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: action, Status: store.ExecCompleted, Attempt: 1}
	_, err := store.InsertExecutions(ctx, pool, schema, []store.Execution{existing})
	require.NoError(t, err)
	fresh := func() store.Execution {
		return store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: action, Status: store.ExecCompleted, Attempt: 1}
	}
	orphan := fresh()
	orphan.EventID = uuid.New()
	cases := []struct {
		name  string
		rows  []store.Execution
		check func(error) bool
	}{
		{"an id that exists", []store.Execution{fresh(), existing}, store.IsExecutionConflict},
		{"an event without a row", []store.Execution{fresh(), orphan}, store.IsExecutionOrphan},
		{"an unknown action", []store.Execution{func() store.Execution { x := fresh(); x.ActionID = uuid.New(); return x }()},
			func(err error) bool { var pg *pgconn.PgError; return errors.As(err, &pg) && pg.Code == "23503" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := inTx(t, ctx, pool)
			var c store.ExecutionsCopy
			_, err := c.CopyAndCommit(ctx, conn.Conn().PgConn(), schema, tc.rows)
			require.Error(t, err)
			require.True(t, tc.check(err), "unexpected error: %v", err)
			require.Equal(t, byte('E'), conn.Conn().PgConn().TxStatus(), "left in the aborted transaction")
			_, err = conn.Exec(ctx, "ROLLBACK")
			require.NoError(t, err)
			got, err := store.ExecutionsForEvent(ctx, pool, schema, ev.ID)
			require.NoError(t, err)
			require.Len(t, got, 1, "nothing of the failed COPY is written")
		})
	}

	// Refused before anything is sent: no transaction, bad input, bad schema.
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var c store.ExecutionsCopy
	_, err = c.CopyAndCommit(ctx, conn.Conn().PgConn(), schema, []store.Execution{fresh()})
	require.ErrorIs(t, err, store.ErrInvalidArgument, "outside a transaction")
	bad := fresh()
	bad.Status = "done"
	_, err = c.CopyAndCommit(ctx, nil, schema, []store.Execution{bad})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = c.CopyAndCommit(ctx, nil, `tenant_x"; DROP TABLE admin.events; --`, []store.Execution{fresh()})
	require.ErrorIs(t, err, event.ErrInvalidSchema)
	_, err = c.CopyAndCommit(ctx, nil, schema, nil)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
}

// linked orders the rows read back as set, and replaces ids by positions:
// the id and event differ between the two writes, the parent link must not.
func linked(t *testing.T, got, set []store.Execution) []store.Execution {
	t.Helper()
	require.Len(t, got, len(set))
	idx := map[uuid.UUID]int{}
	for i := range set {
		idx[set[i].ID] = i
	}
	out := make([]store.Execution, len(set))
	for _, x := range got {
		i, ok := idx[x.ID]
		require.True(t, ok, "unexpected row %s", x.ID)
		if x.ParentExecutionID != uuid.Nil {
			p, ok := idx[x.ParentExecutionID]
			require.True(t, ok, "parent %s is not in the set", x.ParentExecutionID)
			x.ParentExecutionID = uuid.UUID{byte(p + 1)}
		}
		x.ID, x.EventID = uuid.Nil, uuid.Nil
		out[i] = x
	}
	return out
}
