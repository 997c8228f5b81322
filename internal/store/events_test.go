package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// fullEvent sets every field of event.Event to a non-zero value.
func fullEvent(t *testing.T, schema string) *event.Event {
	t.Helper()
	base := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	dur := int32(42)
	e := &event.Event{
		ID:            uuid.Must(uuid.NewV7()),
		EventType:     "orders.shipped",
		Schema:        schema,
		AggregateID:   uuid.New(),
		AggregateType: "order",
		EventVersion:  3,
		CorrelationID: uuid.New(),
		CausationID:   uuid.New(),
		Data:          json.RawMessage(`{"total": 12.5, "items": [1, 2], "note": "ü \"q\""}`),
		Metadata: event.Metadata{
			IPAddress: "10.0.0.1", UserAgent: "test/1", RequestID: "req-1",
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "a=b",
			Extra: map[string]json.RawMessage{"region": json.RawMessage(`"eu"`), "n": json.RawMessage(`7`)},
		},
		Status:                event.StatusFailed,
		Priority:              event.PriorityVeryHigh,
		ScheduledAt:           base.Add(time.Second),
		ProcessingStartedAt:   base.Add(2 * time.Second),
		ProcessingCompletedAt: base.Add(3 * time.Second),
		ProcessingDurationMS:  &dur,
		RetryCount:            2,
		MaxRetries:            5,
		ErrorMessage:          "boom",
		ErrorDetails:          json.RawMessage(`{"code": 500}`),
		UserID:                uuid.New(),
		SourceService:         "orders-api",
		SourceVersion:         "1.2.3",
		QueueName:             "events:tenants:orders:3",
		MessageID:             "1700000000000-0",
		PartitionKey:          "customer-9",
		CreatedAt:             base,
		UpdatedAt:             base.Add(4 * time.Second),
		DeletedAt:             base.Add(5 * time.Second),
	}
	if schema == event.AdminSchema {
		e.TenantID, e.OrganizationID = uuid.New(), uuid.New()
	}
	require.NoError(t, e.Validate())
	return e
}

func TestEventRoundTrip(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	tenant := newTenant(t, ctx, pool)
	for _, schema := range []string{event.AdminSchema, tenant} {
		t.Run(schema, func(t *testing.T) {
			full := fullEvent(t, schema)
			minimal := mkEvent(t, schema, "users.created", time.Time{})
			minimal.ScheduledAt, minimal.EventVersion = time.Time{}, 0
			n, err := store.InsertEvents(ctx, pool, schema, []*event.Event{full, minimal})
			require.NoError(t, err)
			require.EqualValues(t, 2, n)

			got, err := store.GetEvent(ctx, pool, schema, full.ID)
			require.NoError(t, err)
			requireEvents(t, []*event.Event{full}, []*event.Event{got})

			// Zero CreatedAt/UpdatedAt become the insert time; the rest stays zero.
			got, err = store.GetEvent(ctx, pool, schema, minimal.ID)
			require.NoError(t, err)
			require.WithinDuration(t, time.Now(), got.CreatedAt, time.Minute)
			require.Equal(t, got.CreatedAt, got.UpdatedAt)
			want := *minimal
			want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
			requireEvents(t, []*event.Event{&want}, []*event.Event{got})

			_, err = store.GetEvent(ctx, pool, schema, uuid.New())
			require.ErrorIs(t, err, store.ErrNotFound)

			evs, err := store.GetEvents(ctx, pool, schema, []uuid.UUID{minimal.ID, full.ID, uuid.New()})
			require.NoError(t, err)
			require.Len(t, evs, 2)
			require.Equal(t, full.ID, evs[0].ID, "ordered by created_at")
		})
	}
}

func TestInsertEventsRefusesBadEvents(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	good := mkEvent(t, event.AdminSchema, "users.created", event.Now())
	cases := []struct {
		name   string
		mutate func(e *event.Event)
	}{
		{"bad type", func(e *event.Event) { e.EventType = "Users.Created'; --" }},
		{"other schema", func(e *event.Event) { e.Schema = "tenant_x" }},
		{"data not object", func(e *event.Event) { e.Data = json.RawMessage(`[1]`) }},
		{"bad metadata extra", func(e *event.Event) { e.Metadata.Extra = map[string]json.RawMessage{"x": json.RawMessage(`{`)} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := *good
			bad.ID = uuid.Must(uuid.NewV7())
			tc.mutate(&bad)
			_, err := store.InsertEvents(ctx, pool, event.AdminSchema, []*event.Event{good, &bad})
			require.ErrorIs(t, err, event.ErrInvalid)
		})
	}
	_, err := store.GetEvent(ctx, pool, event.AdminSchema, good.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "a refused batch writes nothing")
}

func TestListEvents(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	schema := newTenant(t, ctx, pool)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	corr, agg := uuid.New(), uuid.New()
	types := []string{"users.created", "users.deleted", "orders.created", "user_s.created", "users.created"}
	var all []*event.Event
	for i, typ := range types {
		e := mkEvent(t, schema, typ, base.Add(time.Duration(i)*time.Minute))
		if i%2 == 0 {
			e.CorrelationID = corr
		}
		if i == 1 {
			e.AggregateID, e.AggregateType = agg, "account"
			e.Status = event.StatusCompleted
		}
		all = append(all, e)
	}
	deleted := mkEvent(t, schema, "users.created", base.Add(10*time.Minute))
	deleted.DeletedAt = base.Add(11 * time.Minute)
	_, err := store.InsertEvents(ctx, pool, schema, append(all, deleted))
	require.NoError(t, err)

	cases := []struct {
		name string
		f    store.Filter
		want []int // indexes into all
	}{
		{"everything", store.Filter{}, []int{0, 1, 2, 3, 4}},
		{"star", store.Filter{TypePattern: "*"}, []int{0, 1, 2, 3, 4}},
		{"category (underscore is no wildcard)", store.Filter{TypePattern: "users.*"}, []int{0, 1, 4}},
		{"action", store.Filter{TypePattern: "*.created"}, []int{0, 2, 3, 4}},
		{"exact", store.Filter{TypePattern: "users.deleted"}, []int{1}},
		{"aggregate", store.Filter{AggregateType: "account", AggregateID: agg}, []int{1}},
		{"correlation", store.Filter{CorrelationID: corr}, []int{0, 2, 4}},
		{"status", store.Filter{Status: []event.Status{event.StatusCompleted}}, []int{1}},
		{"statuses", store.Filter{Status: []event.Status{event.StatusPending, event.StatusFailed}}, []int{0, 2, 3, 4}},
		{"time range", store.Filter{From: base.Add(time.Minute), To: base.Add(3 * time.Minute)}, []int{1, 2}},
		{"combined", store.Filter{TypePattern: "*.created", CorrelationID: corr, From: base.Add(time.Second)}, []int{2, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := store.ListEvents(ctx, pool, schema, tc.f)
			require.NoError(t, err)
			require.Empty(t, next)
			want := make([]*event.Event, len(tc.want))
			for i, j := range tc.want {
				want[i] = all[j]
			}
			requireEvents(t, want, got)
		})
	}

	withDeleted, _, err := store.ListEvents(ctx, pool, schema, store.Filter{IncludeDeleted: true})
	require.NoError(t, err)
	require.Len(t, withDeleted, 6)

	bad := []store.Filter{
		{TypePattern: "users'; DROP TABLE x; --"},
		{TypePattern: "*.*"},
		{Status: []event.Status{"done"}},
		{Limit: store.MaxListLimit + 1},
	}
	for _, f := range bad {
		_, _, err := store.ListEvents(ctx, pool, schema, f)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%+v", f)
	}
	_, _, err = store.ListEvents(ctx, pool, schema, store.Filter{Cursor: "not a cursor!"})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

func TestListEventsPagination(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []*event.Event
	for i := 0; i < 23; i++ {
		// Pairs share a created_at, so the id breaks ties.
		all = append(all, mkEvent(t, event.AdminSchema, "users.created", base.Add(time.Duration(i/2)*time.Second)))
	}
	_, err := store.InsertEvents(ctx, pool, event.AdminSchema, all)
	require.NoError(t, err)

	for _, limit := range []int{1, 5, 10, 23, 50} {
		t.Run("limit", func(t *testing.T) {
			var got []*event.Event
			cursor, pages := "", 0
			for {
				page, next, err := store.ListEvents(ctx, pool, event.AdminSchema, store.Filter{Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				require.LessOrEqual(t, len(page), limit)
				got = append(got, page...)
				pages++
				if next == "" {
					break
				}
				cursor = next
			}
			require.Equal(t, (len(all)+limit-1)/limit, pages)
			requireEvents(t, all, got)
		})
	}
}

func TestCausalityChain(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	schema := newTenant(t, ctx, pool)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// root -> a -> b -> c, a -> d; x is unrelated; y <-> z is a cycle.
	ev := map[string]*event.Event{}
	for i, name := range []string{"root", "a", "b", "c", "d", "x", "y", "z"} {
		ev[name] = mkEvent(t, schema, "users.created", base.Add(time.Duration(i)*time.Second))
	}
	link := func(child, parent string) { ev[child].CausationID = ev[parent].ID }
	link("a", "root")
	link("b", "a")
	link("c", "b")
	link("d", "a")
	link("y", "z")
	link("z", "y")
	var list []*event.Event
	for _, e := range ev {
		list = append(list, e)
	}
	_, err := store.InsertEvents(ctx, pool, schema, list)
	require.NoError(t, err)

	cases := []struct {
		from string
		want []string
	}{
		{"b", []string{"root", "a", "b", "c"}},
		{"a", []string{"root", "a", "b", "c", "d"}},
		{"root", []string{"root", "a", "b", "c", "d"}},
		{"d", []string{"root", "a", "d"}},
		{"x", []string{"x"}},
		{"y", []string{"y", "z"}},
	}
	for _, tc := range cases {
		t.Run(tc.from, func(t *testing.T) {
			got, err := store.CausalityChain(ctx, pool, schema, ev[tc.from].ID)
			require.NoError(t, err)
			want := make([]*event.Event, len(tc.want))
			for i, n := range tc.want {
				want[i] = ev[n]
			}
			requireEvents(t, want, got)
		})
	}
	_, err = store.CausalityChain(ctx, pool, schema, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
}

// countingTracer counts statements sent on a connection.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestUpdateStatuses(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	base := event.Now().Add(-time.Hour)
	mk := func(s event.Status, msgID string) *event.Event {
		e := mkEvent(t, event.AdminSchema, "users.created", base)
		e.Status, e.MessageID = s, msgID
		return e
	}
	pending := mk(event.StatusPending, "")
	processing := mk(event.StatusProcessing, "1-1")
	completed := mk(event.StatusCompleted, "")
	retrying := mk(event.StatusRetrying, "")
	_, err := store.InsertEvents(ctx, pool, event.AdminSchema, []*event.Event{pending, processing, completed, retrying})
	require.NoError(t, err)

	cfg := pool.Config().ConnConfig.Copy()
	tracer := &countingTracer{}
	cfg.Tracer = tracer
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })

	started, done := base.Add(time.Minute), base.Add(2*time.Minute)
	dur := int32(60000)
	ups := []store.StatusUpdate{
		{ID: pending.ID, Status: event.StatusProcessing, ProcessingStartedAt: started, MessageID: "2-0"},
		{ID: pending.ID, Status: event.StatusCompleted, ProcessingStartedAt: started, ProcessingCompletedAt: done,
			ProcessingDurationMS: &dur, RetryCount: 1, MessageID: "2-0"}, // later write for the same id wins
		{ID: processing.ID, Status: event.StatusFailed, RetryCount: 99, ErrorMessage: "gave up",
			ErrorDetails: json.RawMessage(`{"attempts": 4}`), MessageID: "9-9"},
		{ID: completed.ID, Status: event.StatusProcessing}, // illegal: completed is terminal
		{ID: retrying.ID, Status: event.StatusRetrying, RetryCount: 2},
		{ID: uuid.New(), Status: event.StatusCompleted}, // unknown id: skipped
	}
	before := tracer.n.Load()
	require.NoError(t, store.UpdateStatuses(ctx, conn, event.AdminSchema, ups))
	require.EqualValues(t, 1, tracer.n.Load()-before, "one statement per batch")

	get := func(id uuid.UUID) *event.Event {
		e, err := store.GetEvent(ctx, pool, event.AdminSchema, id)
		require.NoError(t, err)
		return e
	}
	p := get(pending.ID)
	require.Equal(t, event.StatusCompleted, p.Status)
	require.Equal(t, started, p.ProcessingStartedAt)
	require.Equal(t, done, p.ProcessingCompletedAt)
	require.Equal(t, dur, *p.ProcessingDurationMS)
	require.Equal(t, 1, p.RetryCount)
	require.Equal(t, "2-0", p.MessageID)
	require.True(t, p.UpdatedAt.After(base), "trigger bumps updated_at")

	f := get(processing.ID)
	require.Equal(t, event.StatusFailed, f.Status)
	require.Equal(t, 3, f.RetryCount, "capped at max_retries")
	require.Equal(t, "gave up", f.ErrorMessage)
	require.JSONEq(t, `{"attempts": 4}`, string(f.ErrorDetails))
	require.Equal(t, "1-1", f.MessageID, "an existing message_id is kept")

	c := get(completed.ID)
	require.Equal(t, event.StatusCompleted, c.Status, "completed never moves back")

	r := get(retrying.ID)
	require.Equal(t, 2, r.RetryCount)
	require.NoError(t, store.UpdateStatuses(ctx, pool, event.AdminSchema,
		[]store.StatusUpdate{{ID: retrying.ID, Status: event.StatusRetrying, RetryCount: 1}}))
	require.Equal(t, 2, get(retrying.ID).RetryCount, "retry_count never shrinks")

	bad := []store.StatusUpdate{
		{Status: event.StatusCompleted},
		{ID: uuid.New(), Status: "done"},
		{ID: uuid.New(), Status: event.StatusFailed, ErrorDetails: json.RawMessage(`"x"`)},
	}
	for _, u := range bad {
		require.ErrorIs(t, store.UpdateStatuses(ctx, pool, event.AdminSchema, []store.StatusUpdate{u}), store.ErrInvalidArgument)
	}
}

// TestQueueUpdateStatusesReusesArrays: a status writer queues batch after
// batch with the same arrays; each batch writes its own values, none left
// over from the one before (a NULL duration stays NULL), and a hostile
// schema name is refused before any SQL is built.
func TestQueueUpdateStatusesReusesArrays(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	base := event.Now().Add(-time.Hour)
	a := mkEvent(t, event.AdminSchema, "users.created", base)
	b := mkEvent(t, event.AdminSchema, "users.created", base)
	_, err := store.InsertEvents(ctx, pool, event.AdminSchema, []*event.Event{a, b})
	require.NoError(t, err)

	var arr store.StatusArrays
	send := func(ups ...store.StatusUpdate) {
		var batch pgx.Batch
		short := false
		require.NoError(t, store.QueueUpdateStatuses(&batch, event.AdminSchema, ups, &short, &arr))
		require.NoError(t, pool.SendBatch(ctx, &batch).Close())
		require.False(t, short)
		arr.Release(100)
	}
	dur := int32(5)
	send(store.StatusUpdate{ID: a.ID, Status: event.StatusProcessing, ProcessingDurationMS: &dur,
		ErrorMessage: "slow", MessageID: "1-0"})
	send(store.StatusUpdate{ID: b.ID, Status: event.StatusProcessing, MessageID: "2-0"})

	ga, err := store.GetEvent(ctx, pool, event.AdminSchema, a.ID)
	require.NoError(t, err)
	gb, err := store.GetEvent(ctx, pool, event.AdminSchema, b.ID)
	require.NoError(t, err)
	require.Equal(t, dur, *ga.ProcessingDurationMS)
	require.Equal(t, "slow", ga.ErrorMessage)
	require.Nil(t, gb.ProcessingDurationMS, "a duration left over from the batch before")
	require.Empty(t, gb.ErrorMessage)
	require.Equal(t, "2-0", gb.MessageID)

	var batch pgx.Batch
	short := false
	err = store.QueueUpdateStatuses(&batch, `admin"; DROP TABLE x; --`,
		[]store.StatusUpdate{{ID: a.ID, Status: event.StatusCompleted}}, &short, &arr)
	require.ErrorIs(t, err, event.ErrInvalidSchema)
	require.Zero(t, batch.Len())
}

func TestUpsertMissing(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	for _, schema := range []string{event.AdminSchema, newTenant(t, ctx, pool)} {
		existing := fullEvent(t, schema)
		_, err := store.InsertEvents(ctx, pool, schema, []*event.Event{existing})
		require.NoError(t, err)

		changed := *existing
		changed.ErrorMessage = "must not overwrite"
		fresh := fullEvent(t, schema)
		fresh.ID = uuid.Must(uuid.NewV7())
		minimal := mkEvent(t, schema, "users.created", time.Time{})
		n, err := store.UpsertMissing(ctx, pool, schema, []*event.Event{&changed, fresh, minimal})
		require.NoError(t, err)
		require.EqualValues(t, 2, n)

		got, err := store.GetEvents(ctx, pool, schema, []uuid.UUID{existing.ID, fresh.ID})
		require.NoError(t, err)
		requireEvents(t, []*event.Event{existing, fresh}, got)
		m, err := store.GetEvent(ctx, pool, schema, minimal.ID)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), m.CreatedAt, time.Minute)
	}
}

func TestOutbox(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	old, young := uuid.New(), uuid.New()
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	require.NoError(t, store.InsertOutbox(ctx, pool, old, event.AdminSchema, ids))
	require.NoError(t, store.InsertOutbox(ctx, pool, young, "tenant_acme", ids[:1]))
	_, err := pool.Exec(ctx, "UPDATE neo_events.outbox SET created_at = now() - interval '1 minute' WHERE batch_id = $1", old)
	require.NoError(t, err)
	// A row some other writer left with a hostile schema is never returned.
	_, err = pool.Exec(ctx, `INSERT INTO neo_events.outbox (batch_id, schema_name, event_ids, created_at)
		VALUES ($1, 'public"; --', '{}', now() - interval '1 hour')`, uuid.New())
	require.NoError(t, err)

	got, err := store.PendingOutbox(ctx, pool, 30*time.Second, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, old, got[0].BatchID)
	require.Equal(t, event.AdminSchema, got[0].Schema)
	require.Equal(t, ids, got[0].EventIDs)

	got, err = store.PendingOutbox(ctx, pool, 0, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)

	require.NoError(t, store.DeleteOutbox(ctx, pool, []uuid.UUID{old, young, uuid.New()}))
	got, err = store.PendingOutbox(ctx, pool, 0, 10)
	require.NoError(t, err)
	require.Empty(t, got)

	require.ErrorIs(t, store.InsertOutbox(ctx, pool, uuid.Nil, event.AdminSchema, ids), store.ErrInvalidArgument)
	_, err = store.PendingOutbox(ctx, pool, time.Second, 0)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
}

func BenchmarkInsertEventsCOPY(b *testing.B) {
	testutil.SkipIfShort(b)
	ctx, pool := migratedDB(b)
	const batch = 1000
	evs := make([]*event.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range evs {
			evs[j] = mkEvent(b, event.AdminSchema, "users.created", time.Time{})
		}
		b.StartTimer()
		if _, err := store.InsertEvents(ctx, pool, event.AdminSchema, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// copyCases are events that exercise every column encoder: all fields set,
// every optional field zero (NULLs and '{}' defaults), and awkward text.
func copyCases(t *testing.T, schema string) []*event.Event {
	t.Helper()
	base := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	full := fullEvent(t, schema)

	minimal := mkEvent(t, schema, "users.created", base)
	minimal.ScheduledAt, minimal.EventVersion, minimal.MaxRetries = time.Time{}, 0, 0

	odd := mkEvent(t, schema, "users.renamed", base.Add(-60*365*24*time.Hour)) // before 2000 and 1970
	odd.AggregateType = "ü'\"\\ \t名前"
	odd.Data = json.RawMessage(`{"a":"\u00e9\n","b":[true,null,{"c":1e3}],"": "x"}`)
	odd.ErrorDetails = json.RawMessage(`{}`)
	odd.ProcessingDurationMS = new(int32)
	odd.RetryCount, odd.MaxRetries = 0, 1
	odd.Metadata.RequestID = "r'; DROP TABLE x; --"
	odd.UpdatedAt = time.Date(2262, 1, 1, 0, 0, 0, 999000, time.UTC)
	if schema == event.AdminSchema {
		odd.TenantID = uuid.New() // organization_id stays NULL
	}
	require.NoError(t, odd.Validate())
	return []*event.Event{full, minimal, odd}
}

// rowsText reads the whole table as PostgreSQL's text form of each row,
// ordered by id: any difference in any column shows.
func rowsText(t *testing.T, ctx context.Context, db store.DB, schema string) []string {
	t.Helper()
	rows, err := db.Query(ctx, `SELECT e::text FROM `+event.QuoteIdent(schema)+`.events e ORDER BY id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func clearEvents(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema string) {
	t.Helper()
	_, err := pool.Exec(ctx, `DELETE FROM `+event.QuoteIdent(schema)+`.events`)
	require.NoError(t, err)
}

// TestBinaryCopySameRows writes the same events through pgx's CopyFrom
// (InsertEvents) and through the hand-written binary encoder (both
// CopyValidatedEvents and OutboxWriter.Commit), and requires identical rows.
func TestBinaryCopySameRows(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	tenant := newTenant(t, ctx, pool)
	for _, schema := range []string{event.AdminSchema, tenant} {
		t.Run(schema, func(t *testing.T) {
			evs := copyCases(t, schema)
			_, err := store.InsertEvents(ctx, pool, schema, evs)
			require.NoError(t, err)
			want := rowsText(t, ctx, pool, schema)
			require.Len(t, want, len(evs))

			writers := []struct {
				name  string
				write func(conn *pgconn.PgConn) (int64, error)
			}{
				{"CopyValidatedEvents", func(conn *pgconn.PgConn) (int64, error) {
					n, _, err := store.CopyValidatedEvents(ctx, conn, schema, evs, nil)
					return n, err
				}},
				{"OutboxWriter", func(conn *pgconn.PgConn) (int64, error) {
					var w store.OutboxWriter
					return w.Commit(ctx, conn, schema, uuid.New(), evs, nil)
				}},
			}
			for _, w := range writers {
				clearEvents(t, ctx, pool, schema)
				c, err := pool.Acquire(ctx)
				require.NoError(t, err)
				n, err := w.write(c.Conn().PgConn())
				c.Release()
				require.NoError(t, err, w.name)
				require.EqualValues(t, len(evs), n, w.name)
				require.Equal(t, want, rowsText(t, ctx, pool, schema), w.name)
			}

			// And they read back as the events written ('{}' defaults aside).
			got, err := store.GetEvents(ctx, pool, schema, []uuid.UUID{evs[0].ID})
			require.NoError(t, err)
			requireEvents(t, evs[:1], got)
		})
	}
}

func TestAppendEventsCopy(t *testing.T) {
	good, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{}`))
	require.NoError(t, err)
	badMeta := *good
	badMeta.Metadata.Extra = map[string]json.RawMessage{"x": json.RawMessage(`{`)}
	cases := []struct {
		name    string
		schema  string
		evs     []*event.Event
		wantErr error
	}{
		{"ok", "tenant_acme", []*event.Event{good}, nil},
		{"empty stream", "tenant_acme", nil, nil},
		{"bad schema", `tenant_x"; DROP`, []*event.Event{good}, event.ErrInvalidSchema},
		{"nil event", "tenant_acme", []*event.Event{good, nil}, event.ErrInvalid},
		{"bad metadata", "tenant_acme", []*event.Event{&badMeta}, event.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := store.AppendEventsCopy(dst, tc.schema, tc.evs)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Equal(t, "keep", string(got), "dst unchanged on error")
				return
			}
			require.NoError(t, err)
			require.Equal(t, "keepPGCOPY\n\xff\r\n\x00", string(got[:15]))
			require.Equal(t, "\xff\xff", string(got[len(got)-2:]), "trailer")
		})
	}
}

// TestOutboxWriter checks the one-round-trip transaction: rows, outbox row
// and deletions commit together, and a failure anywhere leaves nothing.
func TestOutboxWriter(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	tenant := newTenant(t, ctx, pool)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	pg := conn.Conn().PgConn()
	var w store.OutboxWriter

	outbox := func() map[uuid.UUID][]uuid.UUID {
		rows, err := pool.Query(ctx, `SELECT batch_id, event_ids FROM neo_events.outbox WHERE schema_name = $1`, tenant)
		require.NoError(t, err)
		m := map[uuid.UUID][]uuid.UUID{}
		for rows.Next() {
			var id uuid.UUID
			var ids []uuid.UUID
			require.NoError(t, rows.Scan(&id, &ids))
			m[id] = ids
		}
		require.NoError(t, rows.Err())
		return m
	}
	batch := func(n int) []*event.Event {
		evs := make([]*event.Event, n)
		for i := range evs {
			evs[i] = mkEvent(t, tenant, "users.created", event.Now())
		}
		return evs
	}
	ids := func(evs []*event.Event) []uuid.UUID {
		out := make([]uuid.UUID, len(evs))
		for i, e := range evs {
			out[i] = e.ID
		}
		return out
	}

	// Two batches; the second deletes the first's outbox row.
	first, second := batch(3), batch(2)
	b1, b2 := uuid.New(), uuid.New()
	n, err := w.Commit(ctx, pg, tenant, b1, first, nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{b1: ids(first)}, outbox())
	n, err = w.Commit(ctx, pg, tenant, b2, second, []uuid.UUID{b1, uuid.New()})
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{b2: ids(second)}, outbox())

	// A duplicate id fails the COPY: no row, no outbox row, no deletion.
	dup := batch(2)
	dup[1] = second[0]
	_, err = w.Commit(ctx, pg, tenant, uuid.New(), dup, []uuid.UUID{b2})
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "got %v", err)
	require.Equal(t, "23505", pgErr.Code)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{b2: ids(second)}, outbox())
	_, err = store.GetEvent(ctx, pool, tenant, dup[0].ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, byte('I'), pg.TxStatus(), "the connection is usable again")

	// The connection still works for the next batch.
	third := batch(1)
	_, err = w.Commit(ctx, pg, tenant, uuid.New(), third, []uuid.UUID{b2})
	require.NoError(t, err)
	require.Len(t, outbox(), 1)
	require.Len(t, rowsText(t, ctx, pool, tenant), 6)

	// Refused before anything is sent.
	_, err = w.Commit(ctx, pg, "public", uuid.New(), third, nil)
	require.ErrorIs(t, err, event.ErrInvalidSchema)
	_, err = w.Commit(ctx, pg, tenant, uuid.Nil, third, nil)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = w.Commit(ctx, pg, tenant, uuid.New(), nil, nil)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = w.Commit(ctx, pg, tenant, uuid.New(), batch(1), nil)
	require.ErrorIs(t, err, store.ErrInvalidArgument, "inside a transaction")
	require.NoError(t, tx.Rollback(ctx))
}

func BenchmarkAppendEventsCopy(b *testing.B) {
	evs := make([]*event.Event, 1000)
	for i := range evs {
		e, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"email":"someone@example.com","plan":"pro","seats":12}`))
		if err != nil {
			b.Fatal(err)
		}
		e.CorrelationID = uuid.New()
		e.SourceService = "bench"
		e.QueueName, e.PartitionKey = "events:tenants:users:3", e.AggregateID.String()
		evs[i] = e
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = store.AppendEventsCopy(buf[:0], "tenant_acme", evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCopyValidatedEvents is BenchmarkInsertEventsCOPY through the
// binary encoder on one connection.
func BenchmarkCopyValidatedEvents(b *testing.B) {
	ctx, pool := migratedDB(b)
	const batch = 1000
	evs := make([]*event.Event, batch)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range evs {
			evs[j] = mkEvent(b, event.AdminSchema, "users.created", time.Time{})
		}
		b.StartTimer()
		if _, buf, err = store.CopyValidatedEvents(ctx, conn.Conn().PgConn(), event.AdminSchema, evs, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOutboxWriterCommit is one publisher batch of 12 events (the
// size at 10K/s offered) end to end: latency per commit, one round trip.
func BenchmarkOutboxWriterCommit(b *testing.B) {
	ctx, pool := migratedDB(b)
	const batch = 12
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	var w store.OutboxWriter
	var prev []uuid.UUID
	evs := make([]*event.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range evs {
			evs[j] = mkEvent(b, event.AdminSchema, "users.created", event.Now())
		}
		id := uuid.New()
		b.StartTimer()
		if _, err := w.Commit(ctx, conn.Conn().PgConn(), event.AdminSchema, id, evs, prev); err != nil {
			b.Fatal(err)
		}
		prev = []uuid.UUID{id}
	}
}
