package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
	"github.com/neo-events/neo-events/publisher"
)

// env is one isolated world: a migrated database with two tenants and a
// Redis key prefix.
type env struct {
	pool    *pgxpool.Pool
	rdb     *redis.Client
	prefix  string
	tenants []string
}

func newEnv(t *testing.T) env {
	t.Helper()
	tu.SkipIfShort(t)
	ctx := tu.Context(t)
	pool := tu.NewPool(t, tu.NewDatabase(t))
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	var tenants []string
	for _, slug := range []string{"acme", "globex"} {
		schema, err := store.CreateTenant(ctx, pool, slug)
		require.NoError(t, err)
		tenants = append(tenants, schema)
	}
	rdb, prefix := tu.NewRedis(t)
	return env{pool: pool, rdb: rdb, prefix: prefix, tenants: tenants}
}

func newEvent(t testing.TB, schema, typ string) *event.Event {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"n": typ, "ok": true})
	e, err := event.New(schema, typ, "user", uuid.New(), data)
	require.NoError(t, err)
	e.CorrelationID = uuid.New()
	e.SourceService = "tests"
	e.Metadata.RequestID = "req-" + e.ID.String()[:8]
	if schema == event.AdminSchema {
		e.TenantID = uuid.New()
	}
	return e
}

// readStream returns every event on the stream, decoded.
func readStream(t *testing.T, rdb *redis.Client, key string) []*event.Event {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	require.NoError(t, err)
	out := make([]*event.Event, 0, len(msgs))
	for _, m := range msgs {
		e, err := event.DecodeValues(m.Values)
		require.NoError(t, err, "entry %s of %s", m.ID, key)
		e.QueueName, e.MessageID = key, m.ID
		out = append(out, e)
	}
	return out
}

// streamed collects every event on every registered stream, by id.
func streamed(t *testing.T, e env) map[uuid.UUID]*event.Event {
	t.Helper()
	keys, err := e.rdb.SMembers(context.Background(), streams.Registry(e.prefix)).Result()
	require.NoError(t, err)
	out := map[uuid.UUID]*event.Event{}
	for _, k := range keys {
		for _, ev := range readStream(t, e.rdb, k) {
			out[ev.ID] = ev
		}
	}
	return out
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM neo_events.outbox").Scan(&n))
	return n
}

func TestPublishRecordsAndStreamsEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := tu.Context(t)
	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix, Partitions: 4})
	require.NoError(t, err)

	var all []*event.Event
	for _, schema := range append([]string{event.AdminSchema}, e.tenants...) {
		evs := []*event.Event{newEvent(t, schema, "users.created"), newEvent(t, schema, "orders.paid")}
		require.NoError(t, p.Publish(ctx, schema, evs...))
		all = append(all, evs...)
	}
	require.NoError(t, p.Close())

	onStreams := streamed(t, e)
	require.Len(t, onStreams, len(all))
	for _, want := range all {
		require.NotEmpty(t, want.MessageID, "MessageID filled after publish")
		require.Equal(t, streams.Key(e.prefix, want, 4), want.QueueName)
		require.Equal(t, want.AggregateID.String(), want.PartitionKey)

		got := onStreams[want.ID]
		require.NotNil(t, got, "event %s on its stream", want.ID)
		require.Equal(t, want.QueueName, got.QueueName, "on the stream its queue_name names")
		// The entry carries everything but the columns only Postgres knows.
		if d := cmp.Diff(want, got, cmpopts.IgnoreFields(event.Event{}, "UpdatedAt", "MessageID", "QueueName")); d != "" {
			t.Fatalf("stream entry differs (-published +streamed):\n%s", d)
		}

		row, err := store.GetEvent(ctx, e.pool, want.Schema, want.ID)
		require.NoError(t, err)
		// jsonb keeps the meaning of event_data, not its spacing.
		if d := cmp.Diff(want, row, cmpopts.IgnoreFields(event.Event{}, "UpdatedAt", "MessageID"), jsonByMeaning); d != "" {
			t.Fatalf("row differs (-published +row):\n%s", d)
		}
		require.Equal(t, event.StatusPending, row.Status)
	}
	require.Zero(t, outboxRows(t, e.pool), "outbox rows of streamed batches are deleted")
}

var jsonByMeaning = cmp.Transformer("json", func(b json.RawMessage) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	return v
})

func TestPublishGroupCommitsConcurrentCallers(t *testing.T) {
	t.Parallel()
	for _, flushers := range []int{1, 3} {
		t.Run(fmt.Sprintf("flushers=%d", flushers), func(t *testing.T) {
			t.Parallel()
			testGroupCommit(t, flushers)
		})
	}
}

func testGroupCommit(t *testing.T, flushers int) {
	e := newEnv(t)
	ctx := tu.Context(t)
	reg := prometheus.NewRegistry()
	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix, Registerer: reg, Flushers: flushers})
	require.NoError(t, err)

	const callers, each = 64, 25
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			schema := e.tenants[i%2]
			for j := 0; j < each; j++ {
				if err := p.Publish(ctx, schema, newEvent(t, schema, "users.updated")); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, p.Close())

	require.Len(t, streamed(t, e), callers*each)
	var rows int
	for _, s := range e.tenants {
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.events", event.QuoteIdent(s))).Scan(&n))
		rows += n
	}
	require.Equal(t, callers*each, rows)

	// Group commit: fewer batches than calls.
	batches := histogramCount(t, reg, "neo_events_publisher_batch_events")
	require.Less(t, batches, uint64(callers*each), "concurrent calls share batches")
	t.Logf("%d publishes in %d batches", callers*each, batches)
	require.Equal(t, float64(callers*each), successCount(t, reg))
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// successCount sums neo_events_publisher_events_total{outcome="success"}.
func successCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "neo_events_publisher_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "success" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestPublishRefusesBadInputAndCommitsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := tu.Context(t)
	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix})
	require.NoError(t, err)
	defer p.Close()

	good := newEvent(t, e.tenants[0], "users.created")
	bad := newEvent(t, e.tenants[0], "users.created")
	bad.EventType = "Users.Created"
	cases := []struct {
		name   string
		schema string
		evs    []*event.Event
		target error
	}{
		{"hostile schema", `tenant_x"; DROP TABLE admin.events; --`, []*event.Event{newEvent(t, e.tenants[0], "users.created")}, event.ErrInvalidSchema},
		{"public schema", "public", []*event.Event{newEvent(t, e.tenants[0], "users.created")}, event.ErrInvalidSchema},
		{"one bad event fails the call", e.tenants[0], []*event.Event{good, bad}, event.ErrInvalid},
		{"schema mismatch", e.tenants[1], []*event.Event{newEvent(t, e.tenants[0], "users.created")}, event.ErrInvalid},
		{"nil event", e.tenants[0], []*event.Event{nil}, event.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Publish(ctx, tc.schema, tc.evs...)
			require.ErrorIs(t, err, tc.target)
		})
	}
	_, err = store.GetEvent(ctx, e.pool, e.tenants[0], good.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "nothing of a refused call is committed")
	require.Empty(t, streamed(t, e))
}

// TestRelayDeliversWhatRedisLost makes Redis fail between the commit and
// the XADD (the publisher's Redis is a closed port), then shows the relay
// puts every committed row on its stream.
func TestRelayDeliversWhatRedisLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := tu.Context(t)

	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	broken, err := publisher.New(e.pool, dead, publisher.Options{Prefix: e.prefix})
	require.NoError(t, err)

	var lost []*event.Event
	for i := 0; i < 30; i++ {
		schema := append([]string{event.AdminSchema}, e.tenants...)[i%3]
		ev := newEvent(t, schema, "users.created")
		err := broken.Publish(ctx, schema, ev)
		require.ErrorIs(t, err, publisher.ErrRelayPending)
		lost = append(lost, ev)
	}
	require.NoError(t, broken.Close())
	for _, ev := range lost {
		row, err := store.GetEvent(ctx, e.pool, ev.Schema, ev.ID)
		require.NoError(t, err, "committed before the XADD")
		require.Equal(t, event.StatusPending, row.Status)
	}
	require.Empty(t, streamed(t, e), "nothing reached Redis")
	require.NotZero(t, outboxRows(t, e.pool))

	relay, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix})
	require.NoError(t, err)
	defer relay.Close()

	n, err := relay.Relay(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "batches younger than min age are left to their publisher")

	n, err = relay.Relay(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, len(lost), n)
	got := streamed(t, e)
	for _, ev := range lost {
		s, ok := got[ev.ID]
		require.True(t, ok, "event %s relayed", ev.ID)
		require.Equal(t, ev.EventType, s.EventType)
		require.Equal(t, ev.Schema, s.Schema)
	}
	require.Zero(t, outboxRows(t, e.pool))

	n, err = relay.Relay(ctx, 0)
	require.NoError(t, err)
	require.Zero(t, n, "a second pass finds nothing")
}

func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	err = p.Publish(context.Background(), e.tenants[0], newEvent(t, e.tenants[0], "users.created"))
	require.True(t, errors.Is(err, publisher.ErrClosed))
}

func TestPublishNotifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := tu.Context(t)
	sub := e.rdb.Subscribe(ctx, streams.Notifications(e.prefix))
	defer sub.Close()
	_, err := sub.Receive(ctx) // subscription confirmed
	require.NoError(t, err)

	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix, Notify: true})
	require.NoError(t, err)
	defer p.Close()
	ev := newEvent(t, e.tenants[0], "users.created")
	require.NoError(t, p.Publish(ctx, ev.Schema, ev))

	msg, err := sub.ReceiveMessage(ctx)
	require.NoError(t, err)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(msg.Payload), &got))
	require.Equal(t, map[string]string{
		"id": ev.ID.String(), "event_type": "users.created", "schema": ev.Schema,
		"created_at": event.FormatTime(ev.CreatedAt),
	}, got)
}

func TestAddToStreamsWithoutPostgres(t *testing.T) {
	t.Parallel()
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := tu.Context(t)
	evs := []*event.Event{newEvent(t, "tenant_acme", "users.created"), newEvent(t, event.AdminSchema, "orders.paid")}
	n, err := publisher.AddToStreams(ctx, rdb, publisher.Options{Prefix: prefix, Partitions: 2}, evs...)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for _, e := range evs {
		require.NotEmpty(t, e.MessageID)
		require.Equal(t, streams.Key(prefix, e, 2), e.QueueName)
		got := readStream(t, rdb, e.QueueName)
		require.Len(t, got, 1)
		require.Equal(t, e.ID, got[0].ID)
	}
	bad := newEvent(t, "tenant_acme", "users.created")
	bad.Schema = "public"
	_, err = publisher.AddToStreams(ctx, rdb, publisher.Options{Prefix: prefix}, bad)
	require.ErrorIs(t, err, event.ErrInvalid)
}

// TestPublishSchemaFailureIsolated: each schema of a group commit is its
// own transaction, so a schema whose COPY fails fails only its own callers;
// the others are committed, streamed and their outbox rows cleaned up.
func TestPublishSchemaFailureIsolated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := tu.Context(t)
	good, broken := e.tenants[0], e.tenants[1]
	_, err := e.pool.Exec(ctx, "ALTER TABLE "+event.QuoteIdent(broken)+".events RENAME TO events_gone")
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	p, err := publisher.New(e.pool, e.rdb, publisher.Options{Prefix: e.prefix, Registerer: reg})
	require.NoError(t, err)

	const callers, each = 32, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var published []*event.Event
	errs := map[string][]error{}
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			schema := e.tenants[i%2]
			for j := 0; j < each; j++ {
				ev := newEvent(t, schema, "users.updated")
				err := p.Publish(ctx, schema, ev)
				mu.Lock()
				if err != nil {
					errs[schema] = append(errs[schema], err)
				} else {
					published = append(published, ev)
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	require.NoError(t, p.Close())

	require.Empty(t, errs[good])
	require.Len(t, errs[broken], callers/2*each)
	for _, err := range errs[broken] {
		require.ErrorContains(t, err, "publish: commit")
		require.NotErrorIs(t, err, publisher.ErrRelayPending)
	}
	require.Len(t, published, callers/2*each)
	onStreams := streamed(t, e)
	require.Len(t, onStreams, len(published), "only committed events reach a stream")
	for _, ev := range published {
		require.Contains(t, onStreams, ev.ID)
		_, err := store.GetEvent(ctx, e.pool, good, ev.ID)
		require.NoError(t, err)
	}
	require.Zero(t, outboxRows(t, e.pool), "no outbox row of the failed schema, and the others deleted")
	require.Equal(t, float64(len(published)), successCount(t, reg))
}
