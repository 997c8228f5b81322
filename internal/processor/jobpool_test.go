package processor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/logging"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// TestAbandonedHandlerKeepsItsLogFields: jobs are recycled, but not the job
// of a handler that was abandoned: still running, it logs with the fields
// of its own event (stream, entry_id), not those of the events processed
// after it.
func TestAbandonedHandlerKeepsItsLogFields(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	release, logged := make(chan struct{}), make(chan struct{})
	reg := handler.NewRegistry()
	reg.MustRegister("stubborn", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		<-release // ignores its context
		r.Logger().Info("stubborn handler done")
		close(logged)
		return nil
	}))
	reg.MustRegister("quick", handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil }))
	d := dispatch.New(nil, dispatch.Options{Registry: reg, Logger: log, TimeoutGrace: 20 * time.Millisecond})
	t.Cleanup(d.Close)
	mk := func(name string, timeout time.Duration) dispatch.Action {
		return dispatch.Action{ID: uuid.New(), Schema: "tenant_acme", Name: name + "_action", Type: "custom",
			HandlerName: name, Timeout: timeout, Source: dispatch.SourceAction}
	}
	fields := func() []string {
		ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"a":1}`))
		require.NoError(t, err)
		kv, err := ev.AppendEntry(nil)
		require.NoError(t, err)
		return kv
	}
	ctx := context.Background()
	newProc := func(a dispatch.Action) *Processor {
		p := New(rdb, nil, staticMatch{Dispatcher: d, actions: []dispatch.Action{a}}, nil, Options{
			Prefix: prefix, Group: "g", WorkerID: "w", Logger: log,
		})
		t.Cleanup(p.Close)
		return p
	}

	stubborn := newProc(mk("stubborn", 20*time.Millisecond))
	stubborn.Process(ctx, consumer.Delivery{Stream: prefix + ":tenants:users:0", ID: "1-1", Fields: fields()})
	quick := newProc(mk("quick", time.Second))
	for i := range 100 { // they would reuse the stubborn event's job if it were recycled
		quick.Process(ctx, consumer.Delivery{Stream: prefix + ":tenants:users:1", ID: "2-" + string(rune('0'+i%10)), Fields: fields()})
	}
	close(release)
	<-logged

	lines := logs.FilterMessage("stubborn handler done").All()
	require.Len(t, lines, 1)
	f := lines[0].ContextMap()
	require.Equal(t, prefix+":tenants:users:0", f[logging.KeyStream])
	require.Equal(t, "1-1", f[logging.KeyEntryID])
}
