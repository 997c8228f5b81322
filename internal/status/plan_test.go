package status

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

func testEvent(t testing.TB, schema string) *event.Event {
	t.Helper()
	ev, err := event.New(schema, "users.created", "user", uuid.New(), json.RawMessage(`{"n": 1}`))
	require.NoError(t, err)
	return ev
}

func TestBuildPlansKeepsEachEventsStepsInOrder(t *testing.T) {
	a, b := testEvent(t, "tenant_a"), testEvent(t, "tenant_a")
	c := testEvent(t, "admin")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := int32(5)
	st := func(ev *event.Event, s event.Status) Update {
		return Update{Schema: ev.Schema, Event: ev, Status: store.StatusUpdate{ID: ev.ID, Status: s}}
	}
	withStart := st(a, event.StatusProcessing)
	withStart.Status.ProcessingStartedAt, withStart.Status.MessageID = t0, "1-0"
	withEnd := st(a, event.StatusProcessing)
	withEnd.Status.ProcessingDurationMS, withEnd.Status.RetryCount, withEnd.Status.MessageID = &ms, 2, "2-0"
	execOnly := Update{Schema: "tenant_a", Event: b, Executions: []store.Execution{{ID: uuid.New(), EventID: b.ID}}}
	reqs := []*request{
		{updates: []Update{withStart, st(c, event.StatusProcessing), execOnly}},
		{updates: []Update{withEnd, st(a, event.StatusCompleted), st(c, event.StatusCompleted)}},
	}
	plans := buildPlans(reqs, nil)
	require.Len(t, plans, 2)
	// Sorted by schema, whatever the arrival order: every writer locks
	// across schemas in the same order.
	require.Equal(t, "admin", plans[0].schema)
	require.Equal(t, "tenant_a", plans[1].schema)
	require.Len(t, plans[0].events[c.ID].steps, 2)
	ta := plans[1]
	require.Equal(t, []uuid.UUID{a.ID, b.ID}, ta.ids)
	require.Len(t, ta.executions, 1)
	want := []store.StatusUpdate{
		// The two processing steps merge as UpdateStatuses would apply them.
		{ID: a.ID, Status: event.StatusProcessing, ProcessingStartedAt: t0, ProcessingDurationMS: &ms, RetryCount: 2, MessageID: "1-0"},
		{ID: a.ID, Status: event.StatusCompleted},
	}
	if diff := cmp.Diff(want, ta.events[a.ID].steps); diff != "" {
		t.Fatalf("steps of a (-want +got):\n%s", diff)
	}
	require.Empty(t, ta.events[b.ID].steps, "an update without a status changes none")

	final := ta.events[a.ID].final()
	require.Equal(t, event.StatusCompleted, final.Status)
	require.Equal(t, t0, final.ProcessingStartedAt)
	require.Equal(t, 2, final.RetryCount)
	require.Equal(t, "1-0", final.MessageID)
	require.Equal(t, event.StatusPending, a.Status, "final works on a copy")
}

func TestBuildPlansReusesItsBuffer(t *testing.T) {
	batch := func(schemas ...string) ([]*request, []uuid.UUID) {
		var r request
		var ids []uuid.UUID
		for _, s := range schemas {
			ev := testEvent(t, s)
			ids = append(ids, ev.ID)
			r.updates = append(r.updates, Update{Schema: s, Event: ev,
				Status:     store.StatusUpdate{ID: ev.ID, Status: event.StatusCompleted},
				Executions: []store.Execution{{ID: uuid.New(), EventID: ev.ID, InputData: json.RawMessage(`{}`)}}})
		}
		return []*request{&r}, ids
	}
	var buf planBuf
	first, _ := batch("tenant_a", "admin", "tenant_a")
	plans := buildPlans(first, &buf)
	require.Len(t, plans, 2)

	// A second build on the same buffer shows nothing of the first.
	second, ids := batch("tenant_b", "tenant_b")
	plans = buildPlans(second, &buf)
	require.Len(t, plans, 1)
	p := plans[0]
	require.Equal(t, "tenant_b", p.schema)
	require.Equal(t, ids, p.ids)
	require.Len(t, p.events, 2)
	require.Len(t, p.executions, 2)
	for i, x := range p.executions {
		require.Equal(t, ids[i], x.EventID)
	}
	require.Empty(t, p.stats)
	require.Nil(t, p.counted)

	// Released, it keeps memory but no event and no execution.
	buf.release()
	require.Empty(t, buf.plans)
	require.Empty(t, buf.bySchema)
	for _, m := range buf.made {
		require.Empty(t, m.events)
		for _, x := range m.executions[:cap(m.executions)] {
			require.Zero(t, x.EventID, "a released execution still holds its row")
		}
	}
	for _, st := range buf.slab[:cap(buf.slab)] {
		require.Nil(t, st.ev, "a released state still holds its event")
	}

	// Reused, a build of the same size allocates a small part of a fresh one.
	big, _ := batch(slices.Repeat([]string{"tenant_c"}, 200)...)
	bytes := func(buf *planBuf) uint64 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range 20 {
			_ = buildPlans(big, buf)
		}
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc
	}
	fresh := bytes(nil)
	_ = buildPlans(big, &buf) // grows the buffer once
	reused := bytes(&buf)
	require.Less(t, reused*10, fresh, "reused %d bytes, fresh %d", reused, fresh)

	// A burst larger than keptRows is not kept: its memory goes after it.
	burst, _ := batch(slices.Repeat([]string{"tenant_c"}, keptRows+1)...)
	plans = buildPlans(burst, &buf)
	require.Len(t, plans[0].ids, keptRows+1)
	buf.release()
	require.Zero(t, cap(buf.slab))
	require.Zero(t, cap(buf.made[0].executions))
	require.Zero(t, cap(buf.made[0].ids))
	require.Nil(t, buf.made[0].events)
}

func TestRejectedClassifiesErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"invalid argument", store.ErrInvalidArgument, true},
		{"invalid schema", event.ErrInvalidSchema, true},
		{"connection refused", context.DeadlineExceeded, false},
		{"plain", errString("EOF"), false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, rejected(c.err), c.name)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// BenchmarkStatusBatch measures one flush of a 1000-update batch (half the
// rows missing, each update a status and one execution): "build" is the
// pure grouping, "write" the transaction on the real PostgreSQL.
func BenchmarkStatusBatch(b *testing.B) {
	const size = 1000
	b.Run("build", func(b *testing.B) {
		reqs := benchBatch(b, "tenant_bench", uuid.New(), size)
		var buf planBuf // a flusher's, reused
		b.ReportAllocs()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = buildPlans(reqs, &buf)
		}
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N*size), "allocs/event")
	})
	b.Run("write", func(b *testing.B) {
		testutil.SkipIfShort(b)
		ctx := context.Background()
		pool := testutil.NewPool(b, testutil.NewDatabase(b))
		_, err := store.Migrate(ctx, pool)
		require.NoError(b, err)
		schema, err := store.CreateTenant(ctx, pool, strings.TrimPrefix(testutil.RandomName("b"), "b_"))
		require.NoError(b, err)
		var action uuid.UUID
		require.NoError(b, pool.QueryRow(ctx, "INSERT INTO "+event.QuoteIdent(schema)+
			".actions (name, action_type, handler_class, event_patterns) VALUES ('a', 'webhook', 'webhook', '{*}') RETURNING id").Scan(&action))
		w := New(pool, Options{})
		defer func() { _ = w.Close(ctx) }()
		b.ReportAllocs()
		var mallocs uint64
		var m0, m1 runtime.MemStats
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			reqs := benchBatch(b, schema, action, size)
			storeHalf(b, ctx, pool, schema, reqs)
			runtime.ReadMemStats(&m0)
			b.StartTimer()
			_, err := w.commit(ctx, reqs, nil)
			require.NoError(b, err)
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			mallocs += m1.Mallocs - m0.Mallocs
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(float64(mallocs)/float64(b.N*size), "allocs/event")
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
	})
}

func benchBatch(b *testing.B, schema string, action uuid.UUID, n int) []*request {
	reqs := make([]*request, n)
	now := event.Now()
	ms := int32(3)
	for i := range reqs {
		ev := testEvent(b, schema)
		u := Update{Schema: schema, Event: ev,
			Status: store.StatusUpdate{ID: ev.ID, Status: event.StatusCompleted, ProcessingStartedAt: now,
				ProcessingCompletedAt: now, ProcessingDurationMS: &ms},
			Executions: []store.Execution{{ID: uuid.New(), EventID: ev.ID, ActionID: action, Status: store.ExecCompleted,
				QueuedAt: now, StartedAt: now, CompletedAt: now, DurationMS: &ms, Attempt: 1, WorkerID: "bench"}}}
		reqs[i] = &request{updates: []Update{u}, done: make(chan error, 1)}
	}
	return reqs
}

func storeHalf(b *testing.B, ctx context.Context, pool *pgxpool.Pool, schema string, reqs []*request) {
	evs := make([]*event.Event, 0, len(reqs)/2)
	for i := 0; i < len(reqs); i += 2 {
		evs = append(evs, reqs[i].updates[0].Event)
	}
	_, err := store.InsertEvents(ctx, pool, schema, evs)
	require.NoError(b, err)
}

// BenchmarkNewRequest is Write's work before queueing, for the worker's
// usual update (one event, its status, one execution): validation and the
// request's copies, and the request's recycling once answered.
func BenchmarkNewRequest(b *testing.B) {
	reqs := benchBatch(b, "tenant_bench", uuid.New(), 1)
	us := reqs[0].updates
	b.ReportAllocs()
	for b.Loop() {
		r, err := newRequest(us)
		if err != nil {
			b.Fatal(err)
		}
		r.done <- nil
		<-r.done
		r.release()
	}
}

func TestNewRequestCopiesWhatTheCallerMayReuse(t *testing.T) {
	full := testEvent(t, "tenant_a")
	noSchema := *testEvent(t, "tenant_a")
	noSchema.Schema = ""
	cases := []struct {
		name     string
		ev       *event.Event
		sameEv   bool // the request may keep the caller's event: nothing to default
		nUpdates int
	}{
		{"complete event, one update", full, true, 1},
		{"complete event, several updates", full, true, 3},
		{"event without schema", &noSchema, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			us := make([]Update, c.nUpdates)
			for i := range us {
				us[i] = Update{Schema: "tenant_a", Event: c.ev,
					Executions: []store.Execution{{ID: uuid.New(), EventID: c.ev.ID, ActionID: uuid.New(),
						Status: store.ExecCompleted, Attempt: 1}}}
			}
			want := make([]uuid.UUID, len(us))
			for i := range us {
				want[i] = us[i].Executions[0].ID
			}
			for round := 0; round < 2; round++ { // the second one reuses a recycled request
				r, err := newRequest(us)
				require.NoError(t, err)
				for i := range us {
					us[i].Executions[0].ID = uuid.New() // the caller reuses its values
				}
				require.Len(t, r.updates, len(us))
				for i, u := range r.updates {
					require.Equal(t, want[i], u.Executions[0].ID)
					require.Equal(t, "tenant_a", u.Event.Schema)
					require.Equal(t, c.sameEv, u.Event == c.ev)
				}
				require.Empty(t, noSchema.Schema, "the caller's event is not changed")
				for i := range us {
					want[i] = us[i].Executions[0].ID
				}
				r.done <- nil
				<-r.done
				r.release()
			}
		})
	}
}
