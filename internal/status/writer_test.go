package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/status"
	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestConcurrentWritersAreGroupCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, m := newWriter(t, e.pool, status.Options{})
	const writers, each = 50, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				// Half the rows exist (Python publisher), half do not (XADD only).
				ev := e.newEvent(t, (i+j)%2 == 0)
				errs <- w.Write(e.ctx, done(t, e.schema, ev, e.action))
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	const total = writers * each
	require.Equal(t, total, e.count(t, "SELECT count(*) FROM S.events WHERE status = 'completed' AND processing_duration_ms = 7"))
	require.Equal(t, total, e.count(t, "SELECT count(*) FROM S.action_executions WHERE status = 'completed'"))
	w.WriteStatsNow(e.ctx) // statistics are written on a ticker; do it now
	require.Equal(t, total, e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", e.action))
	require.Equal(t, total, e.count(t, "SELECT successful_executions FROM S.actions WHERE id = $1", e.action))
	require.Equal(t, 7, e.count(t, "SELECT avg_execution_time_ms FROM S.actions WHERE id = $1", e.action))
	n := flushes(m, metrics.OutcomeSuccess)
	require.Less(t, n, total/2, "writes must share flushes")
	require.Zero(t, flushes(m, metrics.OutcomeError))
	require.Equal(t, n, flushTimings(m), "every flush is timed")
	require.Zero(t, queueLength(m))
	t.Logf("%d writes in %d flushes", total, n)
}

func TestMissingRowIsInsertedFromTheEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, _ := newWriter(t, e.pool, status.Options{})
	ev := e.newEvent(t, false)
	ev.MaxRetries = 2
	ev.QueueName = "events:tenants:users:1"
	started := event.Now()
	ms := int32(12)
	up := status.Update{Schema: e.schema, Event: ev, Status: store.StatusUpdate{
		Status: event.StatusFailed, ProcessingStartedAt: started, ProcessingCompletedAt: started.Add(12 * time.Millisecond),
		ProcessingDurationMS: &ms, RetryCount: 5, ErrorMessage: "gave up", ErrorDetails: json.RawMessage(`{"action":"welcome"}`),
		MessageID: "1-0",
	}}
	require.NoError(t, w.Write(e.ctx, up))

	got, err := store.GetEvent(e.ctx, e.pool, e.schema, ev.ID)
	require.NoError(t, err)
	want := *ev
	want.Status, want.ProcessingStartedAt, want.ProcessingCompletedAt = event.StatusFailed, started, started.Add(12*time.Millisecond)
	want.ProcessingDurationMS, want.ErrorMessage, want.ErrorDetails = &ms, "gave up", json.RawMessage(`{"action": "welcome"}`)
	want.RetryCount = 2 // capped at max_retries, as the table demands
	want.MessageID = "1-0"
	if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(event.Event{}, "UpdatedAt")); diff != "" {
		t.Fatalf("inserted row (-want +got):\n%s", diff)
	}
	require.False(t, ev.Status == event.StatusFailed, "the caller's event is not modified")
}

// TestPipelinedFlushFallsBackForMissingRows: flushes whose rows exist are
// pipelined; one naming a missing row is rolled back and written step by
// step (inserting the row), with nothing counted twice; flushes stay
// stepwise for a while, then try the pipeline again. The pipeline notices
// the missing row however the update names it: a status change (the UPDATE
// finds fewer rows), executions alone (their event_id has no row), or
// neither (looked up).
func TestPipelinedFlushFallsBackForMissingRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		shape      func(status.Update) status.Update
		executions int // of the missing event
	}{
		{"status and execution", func(u status.Update) status.Update { return u }, 1},
		{"status only", func(u status.Update) status.Update { u.Executions = nil; return u }, 0},
		{"execution only", func(u status.Update) status.Update { u.Status = store.StatusUpdate{}; return u }, 1},
		{"neither", func(u status.Update) status.Update {
			u.Status, u.Executions = store.StatusUpdate{}, nil
			return u
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w, _ := newWriter(t, e.pool, status.Options{MaxWait: -1})
			a, b := e.newEvent(t, true), e.newEvent(t, true)
			require.NoError(t, w.Write(e.ctx, done(t, e.schema, a, e.action), done(t, e.schema, b, e.action)))
			require.Equal(t, int64(1), w.Pipelined())
			require.False(t, w.Stepwise())

			missing, stored := e.newEvent(t, false), e.newEvent(t, true)
			require.NoError(t, w.Write(e.ctx, done(t, e.schema, stored, e.action), tc.shape(done(t, e.schema, missing, e.action))))
			require.Equal(t, int64(1), w.Pipelined(), "the pipelined attempt was rolled back")
			require.True(t, w.Stepwise())
			require.Equal(t, 1, e.count(t, "SELECT count(*) FROM S.events WHERE id = $1", missing.ID), "the missing row is inserted")
			require.Equal(t, 3, e.count(t, "SELECT count(*) FROM S.events WHERE status = 'completed' AND id <> $1", missing.ID))
			require.Equal(t, 3+tc.executions, e.count(t, "SELECT count(*) FROM S.action_executions"))

			later := e.newEvent(t, true)
			require.NoError(t, w.Write(e.ctx, done(t, e.schema, later, e.action)))
			require.Equal(t, int64(1), w.Pipelined(), "stepwise while the window lasts")
			w.EndStepwise()
			last := e.newEvent(t, true)
			require.NoError(t, w.Write(e.ctx, done(t, e.schema, last, e.action)))
			require.Equal(t, int64(2), w.Pipelined())

			require.Equal(t, 5, e.count(t, "SELECT count(*) FROM S.events WHERE status = 'completed' AND id <> $1", missing.ID))
			require.Equal(t, 5+tc.executions, e.count(t, "SELECT count(*) FROM S.action_executions"))
			w.WriteStatsNow(e.ctx)
			require.Equal(t, 5+tc.executions, e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", e.action),
				"the rolled-back attempt's statistics are not counted")
		})
	}
}

func TestStatusChangesOfOneEventKeepTheirOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, m := newWriter(t, e.pool, status.Options{})
	// A redrive: the row is failed; processing then completed in one flush.
	// failed -> completed directly is not a legal move, failed -> processing
	// -> completed is.
	redriven := e.newEvent(t, false)
	redriven.Status = event.StatusFailed
	_, err := store.InsertEvents(e.ctx, e.pool, e.schema, []*event.Event{redriven})
	require.NoError(t, err)
	again := e.newEvent(t, true)
	fresh := e.newEvent(t, false)
	up := func(ev *event.Event, s event.Status) status.Update {
		return status.Update{Schema: e.schema, Event: ev, Status: store.StatusUpdate{Status: s}}
	}
	require.NoError(t, w.Write(e.ctx,
		up(redriven, event.StatusProcessing), up(again, event.StatusProcessing), up(fresh, event.StatusProcessing),
		up(redriven, event.StatusCompleted), up(again, event.StatusRetrying), up(fresh, event.StatusRetrying),
		up(again, event.StatusProcessing), up(again, event.StatusFailed)))
	require.Equal(t, 1, flushes(m, metrics.OutcomeSuccess))
	for _, c := range []struct {
		ev   *event.Event
		want event.Status
	}{{redriven, event.StatusCompleted}, {again, event.StatusFailed}, {fresh, event.StatusRetrying}} {
		got, err := store.GetEvent(e.ctx, e.pool, e.schema, c.ev.ID)
		require.NoError(t, err)
		require.Equal(t, c.want, got.Status, c.ev.ID)
	}
}

func TestExecutionsAndStatsAreWrittenOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := e.newAction(t, "audit")
	w, _ := newWriter(t, e.pool, status.Options{})
	ev := e.newEvent(t, true)
	t0 := event.Now()
	ms := func(n int32) *int32 { return &n }
	first := store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: e.action, Status: store.ExecFailed,
		QueuedAt: t0, StartedAt: t0, CompletedAt: t0.Add(10 * time.Millisecond), DurationMS: ms(10), Attempt: 1,
		ErrorMessage: "503", ErrorStackTrace: "handler.go:10", QueueMessageID: "5-0", WorkerID: "w1"}
	second := store.Execution{ID: uuid.New(), EventID: ev.ID, ActionID: e.action, Status: store.ExecCompleted,
		QueuedAt: t0.Add(time.Second), StartedAt: t0.Add(time.Second), CompletedAt: t0.Add(time.Second + 30*time.Millisecond),
		DurationMS: ms(30), Attempt: 2, IsRetry: true, ParentExecutionID: first.ID, QueueMessageID: "5-0", WorkerID: "w2",
		OutputData: json.RawMessage(`{"status": 200}`)}
	up := status.Update{Schema: e.schema, Event: ev,
		Status:     store.StatusUpdate{Status: event.StatusCompleted, RetryCount: 1},
		Executions: []store.Execution{first, second},
		Stats:      []store.ActionStats{{ActionID: other, Total: 1, Failed: 1, SumDurationMS: 4}}}
	require.NoError(t, w.Write(e.ctx, up))
	require.Equal(t, int64(1), w.Pipelined())

	// A redelivery writes the same again: executions are not duplicated nor
	// recounted. (The pipelined insert refuses the existing ids; the flush
	// is rolled back and written step by step.)
	up.Stats = nil
	require.NoError(t, w.Write(e.ctx, up))
	require.Equal(t, int64(1), w.Pipelined())
	require.True(t, w.Stepwise())

	got, err := store.ExecutionsForEvent(e.ctx, e.pool, e.schema, ev.ID)
	require.NoError(t, err)
	if diff := cmp.Diff([]store.Execution{first, second}, got,
		cmpopts.IgnoreFields(store.Execution{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Fatalf("executions (-want +got):\n%s", diff)
	}
	w.WriteStatsNow(e.ctx) // statistics are written on a ticker; do it now
	q := "SELECT %s FROM S.actions WHERE id = $1"
	for _, c := range []struct {
		col    string
		action uuid.UUID
		want   int
	}{
		{"total_executions", e.action, 2}, {"successful_executions", e.action, 1},
		{"failed_executions", e.action, 1}, {"avg_execution_time_ms", e.action, 20},
		{"total_executions", other, 1}, {"failed_executions", other, 1}, {"avg_execution_time_ms", other, 4},
	} {
		require.Equal(t, c.want, e.count(t, fmt.Sprintf(q, c.col), c.action), c.col)
	}
	done, err := store.CompletedActions(e.ctx, e.pool, e.schema, []uuid.UUID{ev.ID})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{e.action}, done[ev.ID])
	row, err := store.GetEvent(e.ctx, e.pool, e.schema, ev.ID)
	require.NoError(t, err)
	require.Equal(t, 1, row.RetryCount)
}

func TestRejectedWriteFailsAloneOthersLand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A long linger puts every write in one flush.
	w, m := newWriter(t, e.pool, status.Options{MaxWait: 300 * time.Millisecond})
	const n = 9
	bad := map[int]bool{4: true, 5: true}
	errs := make([]error, n)
	evs := make([]*event.Event, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		evs[i] = e.newEvent(t, i%2 == 0)
		u := done(t, e.schema, evs[i], e.action)
		switch i {
		case 4:
			u.Executions[0].ActionID = uuid.New() // no such action: a foreign key violation
		case 5:
			// Its row is missing and would be inserted from an event that
			// is not valid: the insert refuses it (Write does not validate
			// the event's content up front).
			evs[i].EventType = "Not A Type"
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = w.Write(e.ctx, u)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if bad[i] {
			require.ErrorIs(t, err, status.ErrRejected, i)
			continue
		}
		require.NoError(t, err, i)
		got, err := store.GetEvent(e.ctx, e.pool, e.schema, evs[i].ID)
		require.NoError(t, err)
		require.Equal(t, event.StatusCompleted, got.Status)
	}
	require.Equal(t, n-len(bad), e.count(t, "SELECT count(*) FROM S.action_executions"))
	require.Zero(t, e.count(t, "SELECT count(*) FROM S.events WHERE id = $1", evs[5].ID), "the invalid event was not inserted")
	require.Positive(t, flushes(m, metrics.OutcomeError))
	require.Equal(t, flushes(m, metrics.OutcomeSuccess)+flushes(m, metrics.OutcomeError), flushTimings(m),
		"failed flushes are timed too")
	require.Zero(t, queueLength(m))
}

func TestInvalidUpdatesAreRefusedBeforeQueueing(t *testing.T) {
	t.Parallel()
	tu.SkipIfShort(t)
	pool := tu.NewPool(t, tu.DatabaseURL())
	w, m := newWriter(t, pool, status.Options{})
	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), nil)
	require.NoError(t, err)
	ok := func() status.Update {
		return status.Update{Schema: "tenant_acme", Event: ev, Status: store.StatusUpdate{Status: event.StatusCompleted}}
	}
	cases := []struct {
		name string
		edit func(u *status.Update)
	}{
		{"hostile schema", func(u *status.Update) { u.Schema = `tenant_acme"; DROP SCHEMA admin CASCADE; --` }},
		{"nil event", func(u *status.Update) { u.Event = nil }},
		{"event of another schema", func(u *status.Update) { u.Schema = "admin" }},
		{"status for another event", func(u *status.Update) { u.Status.ID = uuid.New() }},
		{"unknown status", func(u *status.Update) { u.Status.Status = "done" }},
		{"fields without a status", func(u *status.Update) { u.Status = store.StatusUpdate{ErrorMessage: "x"} }},
		{"NUL in error message", func(u *status.Update) { u.Status.ErrorMessage = "a\x00" }},
		{"error details not an object", func(u *status.Update) { u.Status.ErrorDetails = json.RawMessage(`[1]`) }},
		{"execution of another event", func(u *status.Update) {
			u.Executions = []store.Execution{{ID: uuid.New(), EventID: uuid.New(), ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 1}}
		}},
		{"execution with bad status", func(u *status.Update) {
			u.Executions = []store.Execution{{ID: uuid.New(), EventID: ev.ID, ActionID: uuid.New(), Status: "ok", Attempt: 1}}
		}},
		{"bad stats", func(u *status.Update) {
			u.Stats = []store.ActionStats{{ActionID: uuid.New(), Total: 1, Successful: 2}}
		}},
	}
	for _, c := range cases {
		u := ok()
		c.edit(&u)
		err := w.Write(context.Background(), u)
		require.ErrorIs(t, err, status.ErrInvalidUpdate, c.name)
	}
	require.Zero(t, flushes(m, metrics.OutcomeSuccess)+flushes(m, metrics.OutcomeError), "nothing reached PostgreSQL")
	require.NoError(t, w.Write(context.Background()), "no updates is a no-op")
}

func TestCloseFlushesWhatIsQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := status.New(e.pool, status.Options{MaxWait: time.Hour})
	const n = 20
	evs := make([]*event.Event, n)
	errs := make(chan error, n)
	var started sync.WaitGroup
	for i := range evs {
		evs[i] = e.newEvent(t, false)
		started.Add(1)
		go func(ev *event.Event) {
			started.Done()
			errs <- w.Write(e.ctx, done(t, e.schema, ev, e.action))
		}(evs[i])
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond) // let them queue; the hour-long linger holds them
	require.Zero(t, e.count(t, "SELECT count(*) FROM S.events"), "lingering, not yet written")

	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, w.Close(ctx))
	require.Less(t, time.Since(start), 5*time.Second, "Close does not wait out the linger")
	for range evs {
		require.NoError(t, <-errs)
	}
	require.Equal(t, n, e.count(t, "SELECT count(*) FROM S.events WHERE status = 'completed'"))
	require.ErrorIs(t, w.Write(e.ctx, done(t, e.schema, e.newEvent(t, false), e.action)), status.ErrClosed)
	require.NoError(t, w.Close(ctx), "Close twice is fine")
}

func TestPostgresOutageBlocksWritersAndLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := startProxy(t, hostOf(t, e.dbURL))
	wpool := poolVia(t, p, e.dbURL)
	w, m := newWriter(t, wpool, status.Options{RetryMax: 200 * time.Millisecond})
	// The pool is warm and works before the outage.
	require.NoError(t, w.Write(e.ctx, done(t, e.schema, e.newEvent(t, true), e.action)))

	p.setDown(true)
	const n = 30
	evs := make([]*event.Event, n)
	var returned atomic.Int32
	errs := make(chan error, n)
	for i := range evs {
		evs[i] = e.newEvent(t, i%3 == 0)
		go func(ev *event.Event) {
			err := w.Write(e.ctx, done(t, e.schema, ev, e.action))
			returned.Add(1)
			errs <- err
		}(evs[i])
	}
	// A writer whose context ends gives up with its context's error: it must not ack.
	short, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	gaveUp := e.newEvent(t, false)
	err := w.Write(short, done(t, e.schema, gaveUp, e.action))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	time.Sleep(time.Second)
	require.Zero(t, returned.Load(), "writers block while PostgreSQL is unreachable")
	require.Positive(t, flushes(m, metrics.OutcomeError), "failed flushes are counted")
	require.Equal(t, 1, e.count(t, "SELECT count(*) FROM S.action_executions"), "nothing new is written")
	require.GreaterOrEqual(t, queueLength(m), 1)

	p.setDown(false)
	for range evs {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("writers did not return after PostgreSQL came back")
		}
	}
	ids := make([]uuid.UUID, n)
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	require.Equal(t, n, e.count(t, "SELECT count(*) FROM S.events WHERE id = ANY($1) AND status = 'completed'", ids))
	require.Equal(t, n, e.count(t, "SELECT count(*) FROM S.action_executions WHERE event_id = ANY($1)", ids))
	// The writer that gave up may still be written: if a flusher had taken
	// it before it gave up, it is committed with that flush (Write's
	// contract; writes are idempotent). If it was still queued, it was
	// withdrawn. Either way it is written at most once, and counted as
	// often as its row exists.
	require.Eventually(t, func() bool { return queueLength(m) == 0 }, 5*time.Second, 10*time.Millisecond)
	late := e.count(t, "SELECT count(*) FROM S.action_executions WHERE event_id = $1", gaveUp.ID)
	require.LessOrEqual(t, late, 1)
	w.WriteStatsNow(e.ctx) // statistics are written on a ticker; do it now
	require.Equal(t, n+1+late, e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", e.action))
}

func TestCloseGivesUpWhenPostgresStaysDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := startProxy(t, hostOf(t, e.dbURL))
	w := status.New(poolVia(t, p, e.dbURL), status.Options{RetryMax: 100 * time.Millisecond})
	p.setDown(true)
	errs := make(chan error, 1)
	go func() { errs <- w.Write(e.ctx, done(t, e.schema, e.newEvent(t, false), e.action)) }()
	time.Sleep(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, w.Close(ctx), context.DeadlineExceeded)
	select {
	case err := <-errs:
		require.ErrorIs(t, err, status.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after Close gave up")
	}
}

func TestCloseWritesTheBufferedStatistics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := status.New(e.pool, status.Options{StatsInterval: time.Hour})
	for i := 0; i < 3; i++ {
		require.NoError(t, w.Write(e.ctx, done(t, e.schema, e.newEvent(t, true), e.action)))
	}
	require.Zero(t, e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", e.action),
		"statistics wait for the interval")
	require.NoError(t, w.Close(e.ctx))
	require.Equal(t, 3, e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", e.action))
}

// TestPipelinedFlushOfSeveralSchemas: in a flush that spans schemas, the
// executions of the schema with the most go by COPY with the COMMIT and
// the others by INSERT in the pipeline; both land in the one transaction,
// and each is counted once in its action's statistics.
func TestPipelinedFlushOfSeveralSchemas(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	other, err := store.CreateTenant(a.ctx, a.pool, strings.TrimPrefix(tu.RandomName("s"), "s_"))
	require.NoError(t, err)
	b := &env{ctx: a.ctx, pool: a.pool, dbURL: a.dbURL, schema: other}
	b.action = b.newAction(t, "welcome")
	w, _ := newWriter(t, a.pool, status.Options{})

	t0 := event.Now()
	update := func(e *env) status.Update {
		ev := e.newEvent(t, true)
		d := int32(5)
		return status.Update{Schema: e.schema, Event: ev,
			Status: store.StatusUpdate{Status: event.StatusCompleted, ProcessingStartedAt: t0, ProcessingCompletedAt: t0},
			Executions: []store.Execution{{ID: uuid.New(), EventID: ev.ID, ActionID: e.action, Status: store.ExecCompleted,
				QueuedAt: t0, StartedAt: t0, CompletedAt: t0, DurationMS: &d, Attempt: 1, WorkerID: "w"}}}
	}
	// One Write: one flush. Three events of a (copied), one of b (inserted).
	ups := []status.Update{update(a), update(b), update(a), update(a)}
	require.NoError(t, w.Write(a.ctx, ups...))
	require.Equal(t, int64(1), w.Pipelined(), "one pipelined flush")
	require.False(t, w.Stepwise())
	w.WriteStatsNow(a.ctx)

	for _, c := range []struct {
		e    *env
		want int
	}{{a, 3}, {b, 1}} {
		require.Equal(t, c.want, c.e.count(t, "SELECT count(*) FROM S.action_executions"), c.e.schema)
		require.Equal(t, c.want, c.e.count(t, "SELECT count(*) FROM S.events WHERE status = 'completed'"), c.e.schema)
		require.Equal(t, c.want, c.e.count(t, "SELECT total_executions FROM S.actions WHERE id = $1", c.e.action), c.e.schema)
	}
}

// TestSmallBatchWaitsForTheRunningFlush: while one flush runs (here held
// by a row lock), a batch smaller than ParallelMin waits for it instead of
// starting a second transaction, for at most ten times MaxWait; a batch of
// ParallelMin or more does not wait. With no minimum, the small batch goes
// as soon as it has lingered.
func TestSmallBatchWaitsForTheRunningFlush(t *testing.T) {
	t.Parallel()
	const (
		min     = 8
		maxWait = 100 * time.Millisecond // so a batch is held for up to 1 s
	)
	tests := []struct {
		name        string
		parallelMin int
		smallWaits  bool
	}{
		{"held back below the minimum", min, true},
		{"no minimum", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w, _ := newWriter(t, e.pool, status.Options{MaxWait: maxWait, Flushers: 2, ParallelMin: tt.parallelMin})

			// The first flush blocks on a row another transaction holds.
			blocked := e.newEvent(t, true)
			lock, err := e.pool.Begin(e.ctx)
			require.NoError(t, err)
			defer func() { _ = lock.Rollback(e.ctx) }()
			_, err = lock.Exec(e.ctx, "SELECT 1 FROM "+event.QuoteIdent(e.schema)+".events WHERE id = $1 FOR UPDATE", blocked.ID)
			require.NoError(t, err)
			first := make(chan error, 1)
			go func() { first <- w.Write(e.ctx, done(t, e.schema, blocked, e.action)) }()
			require.Eventually(t, func() bool {
				return e.count(t, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") > 0
			}, 10*time.Second, 10*time.Millisecond, "the first flush waits for the row lock")

			small := make(chan error, 1)
			smallEv := e.newEvent(t, true)
			queued := time.Now()
			go func() { small <- w.Write(e.ctx, done(t, e.schema, smallEv, e.action)) }()
			if tt.smallWaits {
				// Lingered after 100 ms, then held: still waiting at 500 ms.
				select {
				case err := <-small:
					t.Fatalf("a one-update batch flushed beside the running flush after %s (err %v)", time.Since(queued), err)
				case <-time.After(500 * time.Millisecond):
				}
				// Enough updates queue up: the first min of them (the small
				// one among them) flush beside the blocked flush at once;
				// the last one alone is held, then goes when its hold ends.
				var wg sync.WaitGroup
				for range min {
					ev := e.newEvent(t, true)
					wg.Add(1)
					go func() { defer wg.Done(); require.NoError(t, w.Write(e.ctx, done(t, e.schema, ev, e.action))) }()
				}
				all := make(chan struct{})
				go func() { wg.Wait(); close(all) }()
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					t.Fatal("an update stayed held back past its hold, behind a flush that does not end")
				}
			}
			select {
			case err := <-small:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the small batch did not flush")
			}
			select {
			case err := <-first:
				t.Fatalf("the blocked flush ended while its row was locked (err %v)", err)
			default:
			}
			require.NoError(t, lock.Rollback(e.ctx))
			require.NoError(t, <-first)
			require.Equal(t, 0, e.count(t, "SELECT count(*) FROM S.events WHERE status <> 'completed'"))
		})
	}
}
