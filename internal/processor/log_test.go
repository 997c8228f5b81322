package processor

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/retry"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// TestLogsNameTheEvent: every line logged about an event, by the
// processor, by dispatch and by the handler, names it (event_id,
// correlation_id, where it is) exactly once per field, although those
// loggers are only built when something is logged.
func TestLogsNameTheEvent(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	reg := handler.NewRegistry()
	reg.MustRegister("grumpy", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		r.Logger().Info("handler speaking")
		return errors.New("not today")
	}))
	d := dispatch.New(nil, dispatch.Options{Registry: reg, Logger: log})
	t.Cleanup(d.Close)
	act := dispatch.Action{ID: uuid.New(), Schema: "tenant_acme", Name: "grumpy_action", Type: "custom",
		HandlerName: "grumpy", Timeout: 10 * time.Second, Source: dispatch.SourceAction}
	p := New(rdb, nil, staticMatch{Dispatcher: d, actions: []dispatch.Action{act}}, nil, Options{
		Prefix: prefix, Group: "g", WorkerID: "w", Logger: log,
		Fallback: retry.Policy{MaxRetries: 3, Initial: time.Minute, Multiplier: 2, Max: time.Hour},
	})
	t.Cleanup(p.Close)

	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"a":1}`))
	require.NoError(t, err)
	ev.CorrelationID = uuid.New()
	entry, err := ev.Entry()
	require.NoError(t, err)
	ctx := context.Background()
	stream := prefix + ":tenants:users:0"
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: entry}).Result()
	require.NoError(t, err)
	require.NoError(t, rdb.XGroupCreate(ctx, stream, "g", "0").Err())
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}}).Result()
	require.NoError(t, err)
	require.Equal(t, id, res[0].Messages[0].ID)

	p.Process(ctx, consumer.Delivery{Stream: stream, ID: id, Fields: consumer.Pairs(res[0].Messages[0].Values)})

	want := map[string]any{"event_id": ev.ID.String(), "correlation_id": ev.CorrelationID.String(),
		"event_type": "users.created", "schema": "tenant_acme", "stream": stream, "entry_id": id,
		"action": "grumpy_action", "attempt": int64(1)}
	for _, msg := range []string{"handler speaking", "action failed; retry scheduled"} {
		entries := logs.FilterMessage(msg).All()
		require.Len(t, entries, 1, msg)
		seen := map[string]int{}
		for _, f := range entries[0].Context {
			seen[f.Key]++
		}
		got := entries[0].ContextMap()
		for k, v := range want {
			require.Equal(t, 1, seen[k], "%s: field %s once", msg, k)
			require.Equal(t, v, got[k], "%s: field %s", msg, k)
		}
	}
	n, err := rdb.ZCard(ctx, RetryKey(prefix, "g")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the retry is scheduled")
	item, err := rdb.ZRange(ctx, RetryKey(prefix, "g"), 0, 0).Result()
	require.NoError(t, err)
	it, err := decodeRetryItem(item[0])
	require.NoError(t, err)
	require.Equal(t, entry, it.Fields, "the retry item carries the entry's fields")
}
