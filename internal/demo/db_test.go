package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/demo"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// newDemoDatabase is testutil.NewDatabase with "demo" in the name, which
// Reset and CheckDatabase require.
func newDemoDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	tu.SkipIfShort(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, tu.DatabaseURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	name := tu.RandomName("neo_test_demo")
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	u, err := url.Parse(tu.DatabaseURL())
	require.NoError(t, err)
	u.Path = "/" + name
	pool := tu.NewPool(t, u.String())
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), tu.DatabaseURL())
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return pool
}

func setUp(t *testing.T, pool *pgxpool.Pool) demo.Webhook {
	t.Helper()
	wh, err := demo.NewWebhook("127.0.0.1:0")
	require.NoError(t, err)
	_, err = demo.Setup(tu.Context(t), pool, wh)
	require.NoError(t, err)
	return wh
}

func TestResetRefusesWhatIsNotTheDemos(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	ctx := tu.Context(t)
	pool := tu.NewPool(t, tu.NewDatabase(t)) // named neo_test_...
	rdb, prefix := tu.NewRedis(t)
	require.NoError(t, rdb.Set(ctx, prefix+":keep", "1", 0).Err())

	require.ErrorIs(t, demo.Reset(ctx, pool, rdb, "demo"), demo.ErrNotDemoDatabase)
	require.ErrorIs(t, demo.CheckDatabase(ctx, pool), demo.ErrNotDemoDatabase)

	demoPool := newDemoDatabase(t)
	for _, p := range []string{prefix, "events", "", "demo*", "demo:[a]", "de?mo"} {
		require.ErrorIs(t, demo.Reset(ctx, demoPool, rdb, p), demo.ErrNotDemoPrefix, "prefix %q", p)
	}
	require.Equal(t, int64(1), rdb.Exists(ctx, prefix+":keep").Val(), "a refused reset deletes nothing")
}

func TestSetupIsIdempotentAndResetStartsOver(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	ctx := tu.Context(t)
	pool := newDemoDatabase(t)
	rdb, _ := tu.NewRedis(t)
	prefix := tu.RandomName("demo_t")
	require.NoError(t, demo.CheckDatabase(ctx, pool))

	setUp(t, pool)
	wh := setUp(t, pool) // again: tenants kept, actions updated in place
	got, err := demo.LoadWebhook(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, wh, got, "run must listen where the last setup pointed the workers")

	for _, schema := range demo.Schemas() {
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT name, handler_class, event_patterns, retry_policy::text, config->>'url'
			FROM %s.actions ORDER BY name`, event.QuoteIdent(schema)))
		require.NoError(t, err)
		type row struct {
			Name, Handler string
			Patterns      []string
			Policy        string
			URL           *string
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		require.NoError(t, err)
		require.Len(t, got, 3, schema)
		require.Equal(t, demo.ActionBroken, got[0].Name)
		require.Equal(t, demo.FailHandler, got[0].Handler)
		require.Equal(t, []string{"orders.*"}, got[0].Patterns)
		require.JSONEq(t, `{"max_retries": 2, "backoff_type": "fixed", "initial_delay_ms": 100}`, got[0].Policy)
		require.Equal(t, demo.ActionFlaky, got[1].Name)
		require.Equal(t, []string{"*"}, got[1].Patterns)
		require.JSONEq(t, `{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 200}`, got[1].Policy)
		require.Equal(t, demo.ActionWebhook, got[2].Name)
		require.Equal(t, []string{"users.*"}, got[2].Patterns)
		require.Equal(t, wh.URL, *got[2].URL)
	}

	require.NoError(t, rdb.Set(ctx, prefix+":streams", "x", 0).Err())
	require.NoError(t, rdb.Set(ctx, prefix+"x:other", "keep", 0).Err())
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"x:other") })
	require.NoError(t, demo.Reset(ctx, pool, rdb, prefix))
	require.Equal(t, int64(0), rdb.Exists(ctx, prefix+":streams").Val())
	require.Equal(t, int64(1), rdb.Exists(ctx, prefix+"x:other").Val(), "only keys under <prefix>: go")
	schemas, err := store.ListSchemas(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, schemas)
	_, err = demo.LoadWebhook(ctx, pool)
	require.ErrorIs(t, err, demo.ErrNoSetup)
	setUp(t, pool) // and from scratch again
}

func TestNewWebhook(t *testing.T) {
	t.Parallel()
	wh, err := demo.NewWebhook("")
	require.NoError(t, err)
	addr, err := wh.Addr()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasSuffix(addr, ":0"), addr)
	require.True(t, strings.HasPrefix(wh.Secret, "whsec_"))
	_, err = demo.NewReceiver(wh.Secret)
	require.NoError(t, err)

	for _, bad := range []string{"10.0.0.1:8080", "example.com:80", "nonsense"} {
		_, err := demo.NewWebhook(bad)
		require.Error(t, err, bad)
	}
	_, err = demo.Webhook{URL: "http://192.0.2.1:80/webhook"}.Addr()
	require.Error(t, err, "only loopback")
}

// record inserts evs with the given status and per event `execs`
// executions, the later ones retries.
func record(t *testing.T, pool *pgxpool.Pool, schema string, status event.Status, execs int, evs []*event.Event) {
	t.Helper()
	ctx := tu.Context(t)
	for _, e := range evs {
		e.Status = status
	}
	_, err := store.InsertEvents(ctx, pool, schema, evs)
	require.NoError(t, err)
	var actionID uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf(`SELECT id FROM %s.actions WHERE name = $1`, event.QuoteIdent(schema)),
		demo.ActionFlaky).Scan(&actionID))
	var xs []store.Execution
	for _, e := range evs {
		for a := 1; a <= execs; a++ {
			id, _ := event.NewID()
			xs = append(xs, store.Execution{ID: id, EventID: e.ID, ActionID: actionID, Status: store.ExecRetrying,
				Attempt: a, IsRetry: a > 1, QueuedAt: time.Now()})
		}
	}
	_, err = store.InsertExecutions(ctx, pool, schema, xs)
	require.NoError(t, err)
}

func TestSummaryQueries(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	ctx := tu.Context(t)
	pool := newDemoDatabase(t)
	setUp(t, pool)

	evs, err := demo.Generate(30, demo.Schemas())
	require.NoError(t, err)
	by := demo.BySchema(evs)
	admin, acme := by[event.AdminSchema], by["tenant_acme"]
	record(t, pool, event.AdminSchema, event.StatusCompleted, 3, admin[:6])
	record(t, pool, event.AdminSchema, event.StatusFailed, 1, admin[6:8])
	record(t, pool, event.AdminSchema, event.StatusRetrying, 2, admin[8:])
	record(t, pool, "tenant_acme", event.StatusCompleted, 1, acme)
	// tenant_globex: published but no rows at all.

	p, err := demo.Track(ctx, pool, by)
	require.NoError(t, err)
	require.Equal(t, 30, p.Published)
	require.Equal(t, map[event.Status]int{event.StatusCompleted: 16, event.StatusFailed: 2, event.StatusRetrying: 2}, p.ByStatus)
	require.Equal(t, 18, p.Final())
	require.Equal(t, 10, p.Missing())
	require.False(t, p.Done())

	lost, err := demo.NotFinal(ctx, pool, by, 5)
	require.NoError(t, err)
	require.Len(t, lost, 5)
	require.Contains(t, lost[0], "admin ")
	require.Contains(t, lost[0], "(retrying)")
	require.Contains(t, lost[4], "tenant_globex ")
	require.Contains(t, lost[4], "(no row)")

	stats, err := demo.CountSchemas(ctx, pool, demo.Schemas())
	require.NoError(t, err)
	require.Equal(t, []demo.SchemaStats{
		{Schema: "admin", Rows: 10, Completed: 6, Failed: 2, Executions: 6*3 + 2*1 + 2*2, Retries: 6*2 + 2*1},
		{Schema: "tenant_acme", Rows: 10, Completed: 10, Executions: 10},
		{Schema: "tenant_globex"},
	}, stats)
	unhealthy, err := demo.UnhealthyActions(ctx, pool, demo.Schemas())
	require.NoError(t, err)
	require.Empty(t, unhealthy)
	_, err = pool.Exec(ctx, `UPDATE tenant_acme.actions SET is_healthy = false WHERE name = $1`, demo.ActionFlaky)
	require.NoError(t, err)
	unhealthy, err = demo.UnhealthyActions(ctx, pool, demo.Schemas())
	require.NoError(t, err)
	require.Equal(t, []string{"tenant_acme/" + demo.ActionFlaky}, unhealthy)

	_, err = demo.CountSchema(ctx, pool, `admin"; DROP TABLE x; --`)
	require.ErrorIs(t, err, event.ErrInvalidSchema)
}

func TestCountDLQ(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	ctx := tu.Context(t)
	rdb, prefix := tu.NewRedis(t)
	total, counts, err := demo.CountDLQ(ctx, rdb, prefix, "g")
	require.NoError(t, err)
	require.Zero(t, total)
	require.Empty(t, counts)

	add := func(reason dlq.Reason, action string, n int) {
		for i := 0; i < n; i++ {
			_, err := dlq.Add(ctx, rdb, prefix, "g", dlq.Letter{
				Fields: map[string]string{"id": uuid.NewString(), "event_type": "orders.paid"}, Reason: reason,
				Error: "boom", Attempts: 3, Action: action, SourceStream: prefix + ":admin:orders:0", SourceID: "1-1",
			})
			require.NoError(t, err)
		}
	}
	add(dlq.ReasonExhausted, demo.ActionBroken, 3)
	add(dlq.ReasonPermanent, demo.ActionWebhook, 1)
	add(dlq.ReasonInvalid, "", 1)
	total, counts, err = demo.CountDLQ(ctx, rdb, prefix, "g")
	require.NoError(t, err)
	require.Equal(t, 5, total)
	require.Equal(t, []demo.DLQCount{
		{Reason: dlq.ReasonExhausted, Action: demo.ActionBroken, N: 3},
		{Reason: dlq.ReasonInvalid, Action: "", N: 1},
		{Reason: dlq.ReasonPermanent, Action: demo.ActionWebhook, N: 1},
	}, counts)
}

// TestRunWithoutWorkersReportsLoss runs everything but the workers: the
// events are published and recorded, none becomes final, and the summary
// says so and fails.
func TestRunWithoutWorkersReportsLoss(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	ctx := tu.Context(t)
	pool := newDemoDatabase(t)
	rdb, prefix := tu.NewRedis(t)
	setUp(t, pool)
	var progress bytes.Buffer
	s, err := demo.Run(ctx, demo.RunOptions{Pool: pool, Redis: rdb, Prefix: prefix, Group: "g", Partitions: 2,
		Events: 30, Timeout: 1500 * time.Millisecond, Progress: &progress})
	require.NoError(t, err)
	require.Contains(t, progress.String(), "final 0/30")
	require.Equal(t, 30, s.Published)
	require.Equal(t, 30, s.Lost())
	require.Equal(t, 30, s.Progress.ByStatus[event.StatusPending])
	require.Len(t, s.Unfinished, 5)
	require.Equal(t, demo.Expectation{Failed: 6, Webhook: 12, Retries: 30*2 + 6*2}, s.Expect)
	var entries int64
	for _, st := range s.Streams {
		entries += st.Length
	}
	require.Equal(t, int64(30), entries, "every event is on a stream")
	require.ErrorIs(t, s.Err(), demo.ErrLost)

	var out bytes.Buffer
	s.Write(&out)
	for _, want := range []string{"30 NOT final", "admin", "tenant_acme", prefix + ":tenants:users:*", "Not final, for example:",
		"eventsctl dlq list --group g", "eventsctl streams", "webhook calls (valid signatures / total)"} {
		require.Contains(t, out.String(), want)
	}
}

func TestSummaryErr(t *testing.T) {
	t.Parallel()
	ok := &demo.Summary{Progress: demo.Progress{Published: 2, ByStatus: map[event.Status]int{event.StatusCompleted: 1, event.StatusFailed: 1}}}
	require.NoError(t, ok.Err())
	bad := *ok
	bad.Webhook = demo.ReceiverStats{Valid: 3, Invalid: 1, LastError: "no v1 signature matches"}
	require.ErrorIs(t, bad.Err(), demo.ErrInvalidSignature)
	require.NotErrorIs(t, bad.Err(), demo.ErrLost)
	require.Contains(t, bad.Err().Error(), "1 of 4 requests")
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	evs, err := demo.Generate(50, demo.Schemas())
	require.NoError(t, err)
	require.Len(t, evs, 50)
	types := map[string]int{}
	for _, e := range evs {
		require.NoError(t, e.Validate())
		require.Equal(t, demo.SourceService, e.SourceService)
		require.Equal(t, e.Schema == event.AdminSchema, e.TenantID != uuid.Nil)
		var data map[string]any
		require.NoError(t, json.Unmarshal(e.Data, &data))
		types[e.EventType]++
	}
	require.Len(t, types, len(demo.EventTypes), "every type is published")
	by := demo.BySchema(evs)
	require.Len(t, by[event.AdminSchema], 17)
	require.Len(t, by["tenant_globex"], 16)
	_, err = demo.Generate(1, nil)
	require.Error(t, err)
}
