package fleet_test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/fleet"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestHappyPathAcrossSchemas(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme", "globex")
	for _, s := range w.schemas() {
		w.addAction(s, "audit-"+s, "ok", []string{"*"}, "")
		w.addAction(s, "welcome-"+s, "ok", []string{"users.created"}, "")
		w.addAction(s, "never", "fail", []string{"orders.*"}, "") // matches nothing published here
	}
	stop1 := w.startWorker(w.config("w1"), nil)
	stop2 := w.startWorker(w.config("w2"), nil)

	var evs []*event.Event
	for _, s := range w.schemas() {
		for i := 0; i < 20; i++ {
			typ := "users.created"
			if i%2 == 1 {
				typ = "users.updated"
			}
			evs = append(evs, w.newEvent(s, typ))
		}
	}
	w.publish(evs...)
	rows := w.waitFinal(evs, 30*time.Second)

	for _, e := range evs {
		row := rows[e.ID]
		require.Equal(t, event.StatusCompleted, row.Status, "event %s", e.ID)
		require.False(t, row.ProcessingStartedAt.IsZero())
		require.False(t, row.ProcessingCompletedAt.IsZero())
		require.NotNil(t, row.ProcessingDurationMS)
		require.Zero(t, row.RetryCount)
		require.NotEmpty(t, row.MessageID, "message_id recorded")
		want := 1
		if e.EventType == "users.created" {
			want = 2
		}
		xs := w.executions(e)
		require.Len(t, xs, want, "one execution per matching action for %s", e.EventType)
		for _, x := range xs {
			require.Equal(t, store.ExecCompleted, x.Status)
			require.Equal(t, 1, x.Attempt)
			require.False(t, x.IsRetry)
			require.Contains(t, []string{"w1", "w2"}, x.WorkerID)
			require.Equal(t, row.MessageID, x.QueueMessageID)
		}
		require.Equal(t, want, w.calls.get("ok", e.ID), "each action ran exactly once")
	}
	require.NoError(t, stop1())
	require.NoError(t, stop2())

	// Action statistics.
	var total, ok int64
	require.NoError(t, w.pool.QueryRow(context.Background(),
		`SELECT total_executions, successful_executions FROM admin.actions WHERE name = 'audit-admin'`).Scan(&total, &ok))
	require.EqualValues(t, 20, total)
	require.EqualValues(t, 20, ok)
	// Everything acknowledged.
	requireNothingPending(t, w)
}

// requireNothingPending: every entry is acknowledged, within a few
// seconds. An event's XACK is queued once its status is written, so a
// test that saw the final status may look before the XACK was sent.
func requireNothingPending(t *testing.T, w *world) {
	t.Helper()
	keys, err := w.rdb.SMembers(context.Background(), streams.Registry(w.prefix)).Result()
	require.NoError(t, err)
	for _, k := range keys {
		var n int64
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for {
			var p *redis.XPending
			if p, err = w.rdb.XPending(context.Background(), k, w.group).Result(); err == nil {
				n = p.Count
			}
			if err == nil && n == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		require.NoError(t, err)
		require.Zero(t, n, "pending on %s", k)
	}
}

func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	const initial = 300 * time.Millisecond
	w.addAction(w.tenants[0], "flaky", "flaky", []string{"users.*"},
		`{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 300, "jitter": 0.2}`)
	w.startWorker(w.config("w1"), nil)

	e := w.newEvent(w.tenants[0], "users.created")
	w.publish(e)
	row := w.waitFinal([]*event.Event{e}, 30*time.Second)[e.ID]
	require.Equal(t, event.StatusCompleted, row.Status)
	require.Equal(t, 2, row.RetryCount)

	xs := w.executions(e)
	require.Len(t, xs, 3, "three attempt rows")
	for i, x := range xs {
		require.Equal(t, i+1, x.Attempt)
		require.Equal(t, i > 0, x.IsRetry)
		if i > 0 {
			require.Equal(t, xs[i-1].ID, x.ParentExecutionID, "attempt %d points at the one before", i+1)
		}
	}
	require.Equal(t, store.ExecRetrying, xs[0].Status)
	require.Equal(t, store.ExecRetrying, xs[1].Status)
	require.Equal(t, store.ExecCompleted, xs[2].Status)
	require.Contains(t, xs[0].ErrorMessage, "flaky failure 1")

	// Backoff within the policy: retry n waits initial*2^(n-1) ± 20%, plus
	// the retry poller's tick (100ms) and scheduling slack.
	// Generous on the high side: a loaded CI machine delays the poller and
	// the status write; the low side (never early) is the strict one.
	const slack = time.Second
	for n := 1; n <= 2; n++ {
		base := initial * time.Duration(1<<(n-1))
		gap := xs[n].StartedAt.Sub(xs[n-1].CompletedAt)
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)+slack
		require.True(t, gap >= lo-5*time.Millisecond && gap <= hi, "retry %d waited %s, want within [%s, %s]", n, gap, lo, hi)
	}
	require.Equal(t, 3, w.calls.get("flaky", e.ID))
}

func TestPermanentAndExhaustedGoToDLQ(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	s := w.tenants[0]
	w.addAction(s, "perm", "permanent", []string{"users.created"}, "")
	w.addAction(s, "exhaust", "fail", []string{"users.updated"},
		`{"max_retries": 2, "backoff_type": "fixed", "initial_delay_ms": 50}`)
	w.startWorker(w.config("w1"), nil)

	perm, exh := w.newEvent(s, "users.created"), w.newEvent(s, "users.updated")
	w.publish(perm, exh)
	rows := w.waitFinal([]*event.Event{perm, exh}, 30*time.Second)
	require.Equal(t, event.StatusFailed, rows[perm.ID].Status)
	require.Equal(t, event.StatusFailed, rows[exh.ID].Status)
	require.Equal(t, 2, rows[exh.ID].RetryCount)
	require.Contains(t, rows[exh.ID].ErrorMessage, "always fails")

	require.Len(t, w.executions(perm), 1, "permanent: no retry")
	require.Equal(t, 1, w.calls.get("permanent", perm.ID))
	xs := w.executions(exh)
	require.Len(t, xs, 3, "max_retries 2 means exactly 3 attempts")
	require.Equal(t, store.ExecFailed, xs[2].Status)

	// The statuses are committed first, the dead letters added right after.
	require.Eventually(t, func() bool { return len(dlqByEvent(t, w)) == 2 }, 10*time.Second, 10*time.Millisecond)
	letters := dlqByEvent(t, w)
	require.Len(t, letters, 2)
	require.Equal(t, dlq.ReasonPermanent, letters[perm.ID].Reason)
	require.Equal(t, "perm", letters[perm.ID].Action)
	require.Equal(t, 1, letters[perm.ID].Attempts)
	require.Equal(t, dlq.ReasonExhausted, letters[exh.ID].Reason)
	require.Equal(t, 3, letters[exh.ID].Attempts)
	require.Equal(t, "exhaust", letters[exh.ID].Action)
	// The original entry is kept byte for byte.
	orig, err := exh.Entry()
	require.NoError(t, err)
	for k, v := range orig {
		require.Equal(t, v, letters[exh.ID].Fields[k], "field %s", k)
	}
	requireNothingPending(t, w)
}

func dlqByEvent(t *testing.T, w *world) map[uuid.UUID]dlq.Entry {
	t.Helper()
	es, err := dlq.List(context.Background(), w.rdb, w.prefix, w.group, dlq.Filter{}, 1000)
	require.NoError(t, err)
	out := map[uuid.UUID]dlq.Entry{}
	for _, e := range es {
		id, _ := uuid.Parse(e.Fields[event.FieldID])
		out[id] = e
	}
	return out
}

func TestMalformedEntriesAreDeadLetteredAndWorkGoesOn(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	s := w.tenants[0]
	w.addAction(s, "ok", "ok", []string{"*"}, "")
	stream := streams.KeyFor(w.prefix, event.ScopeTenants, "users", 0)
	ctx := context.Background()
	require.NoError(t, w.rdb.SAdd(ctx, streams.Registry(w.prefix), stream).Err())
	w.startWorker(w.config("w1"), nil)

	good := func() map[string]any {
		e := w.newEvent(s, "users.created")
		m, err := e.Entry()
		require.NoError(t, err)
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	cases := map[string]func(map[string]any){
		"missing id":           func(m map[string]any) { delete(m, "id") },
		"missing event_data":   func(m map[string]any) { delete(m, "event_data") },
		"bad json":             func(m map[string]any) { m["event_data"] = `{"a":` },
		"data not object":      func(m map[string]any) { m["event_data"] = `[1,2]` },
		"bad uuid":             func(m map[string]any) { m["aggregate_id"] = "not-a-uuid" },
		"bad type":             func(m map[string]any) { m["event_type"] = "DROP TABLE" },
		"hostile schema":       func(m map[string]any) { m["schema"] = `tenant_x"; DROP SCHEMA admin CASCADE; --` },
		"unknown schema":       func(m map[string]any) { m["schema"] = "tenant_nope" },
		"bad metadata":         func(m map[string]any) { m["event_metadata"] = `"x"` },
		"bad max_retries":      func(m map[string]any) { m["max_retries"] = "lots" },
		"only a stray field":   func(m map[string]any) { clear(m); m["hello"] = "world" },
		"bad created_at":       func(m map[string]any) { m["created_at"] = "yesterday" },
		"admin-only on tenant": func(m map[string]any) { m["tenant_id"] = uuid.NewString() },
	}
	for name, mutate := range cases {
		m := good()
		mutate(m)
		m["case"] = name
		require.NoError(t, w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: m}).Err(), name)
	}
	// A good event after the bad ones is still processed.
	after := w.newEvent(s, "users.created")
	w.publish(after)
	require.Equal(t, event.StatusCompleted, w.waitFinal([]*event.Event{after}, 30*time.Second)[after.ID].Status)

	require.Eventually(t, func() bool {
		n, _ := w.rdb.XLen(ctx, streams.DLQ(w.prefix, w.group)).Result()
		return n == int64(len(cases))
	}, 10*time.Second, 50*time.Millisecond)
	es, err := dlq.List(ctx, w.rdb, w.prefix, w.group, dlq.Filter{}, 100)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, e := range es {
		require.Equal(t, dlq.ReasonInvalid, e.Reason, e.Fields["case"])
		require.NotEmpty(t, e.Error)
		require.Equal(t, stream, e.SourceStream)
		seen[e.Fields["case"]] = true
	}
	require.Len(t, seen, len(cases))
	// No hostile SQL ran.
	var n int
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'admin'`).Scan(&n))
	require.Equal(t, 1, n)
	requireNothingPending(t, w)
}

func TestRedriveRerunsOnlyTheFailedAction(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	s := w.tenants[0]
	w.addAction(s, "steady", "ok", []string{"users.*"}, "")
	w.addAction(s, "fragile", "toggle", []string{"users.*"}, "")
	w.calls.setBroken(true)
	w.startWorker(w.config("w1"), nil)

	e := w.newEvent(s, "users.created")
	w.publish(e)
	require.Equal(t, event.StatusFailed, w.waitFinal([]*event.Event{e}, 30*time.Second)[e.ID].Status)
	require.Equal(t, 1, w.calls.get("ok", e.ID))
	require.Equal(t, 1, w.calls.get("toggle", e.ID))
	// The status is committed first, the dead letter added right after it.
	require.Eventually(t, func() bool { _, ok := dlqByEvent(t, w)[e.ID]; return ok }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "fragile", dlqByEvent(t, w)[e.ID].Action)

	w.calls.setBroken(false)
	n, err := dlq.Redrive(context.Background(), w.rdb, w.prefix, w.group, dlq.Filter{}, 100, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool {
		row, err := store.GetEvent(context.Background(), w.pool, s, e.ID)
		return err == nil && row.Status == event.StatusCompleted
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, w.calls.get("ok", e.ID), "the completed action is not re-run")
	require.Equal(t, 2, w.calls.get("toggle", e.ID), "the failed action is re-run")
	require.Empty(t, dlqByEvent(t, w))
}

func TestEventsWithoutRowsAreRecorded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	s := w.tenants[0]
	w.addAction(s, "ok", "ok", []string{"*"}, "")
	w.startWorker(w.config("w1"), nil)
	// A producer that only XADDs (no row in Postgres).
	e := w.newEvent(s, "users.created")
	e.QueueName = streams.Key(w.prefix, e, 4)
	m, err := e.Entry()
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, w.rdb.SAdd(ctx, streams.Registry(w.prefix), e.QueueName).Err())
	vals := map[string]any{}
	for k, v := range m {
		vals[k] = v
	}
	require.NoError(t, w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.QueueName, Values: vals}).Err())
	row := w.waitFinal([]*event.Event{e}, 30*time.Second)[e.ID]
	require.Equal(t, event.StatusCompleted, row.Status)
	require.Equal(t, e.EventType, row.EventType)
	require.JSONEq(t, string(e.Data), string(row.Data))
	require.Len(t, w.executions(e), 1)
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	w.addAction(w.tenants[0], "ok", "ok", []string{"*"}, "")
	cfg := w.config("w1")
	cfg.HTTP.Addr = freeAddr(t)
	w.startWorker(cfg, nil)
	e := w.newEvent(w.tenants[0], "users.created")
	w.publish(e)
	w.waitFinal([]*event.Event{e}, 30*time.Second)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + cfg.HTTP.Addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { c, _ := get("/readyz"); return c == http.StatusOK }, 5*time.Second, 50*time.Millisecond)
	wants := []string{
		`neo_events_worker_group_backlog{group="g"} 0`,
		`neo_events_worker_events_total{event_type="users.created",group="g",outcome="success"} 1`,
		`neo_events_worker_action_executions_total{action="ok",group="g",outcome="success"} 1`,
		`neo_events_worker_end_to_end_latency_seconds_count{group="g"} 1`,
		`neo_events_stream_lag{group="g",stream=`,
		`neo_events_stream_pending{group="g",stream=`,
		`neo_events_dlq_length{group="g"} 0`,
		// The collector's own figures (gcMetrics), and none of its histograms.
		"go_gc_heap_live_bytes ",
		"go_gc_heap_goal_bytes ",
		"go_gc_scan_stack_bytes ",
		"go_gc_gogc_percent ",
	}
	var body string
	require.Eventually(t, func() bool {
		_, body = get("/metrics")
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	}, 5*time.Second, 100*time.Millisecond, "metrics missing from:\n%s", body)
	require.Contains(t, body, "neo_events_outbox_relayed_total 0", "the relay's counter is on the worker's /metrics")
	require.NotContains(t, body, "go_gc_heap_allocs_by_size_bytes", "the size-class histograms stay out")

	// DESIGN §5: promtool finds nothing to complain about.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics:\n%s", out)
		require.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics complains")
	} else {
		t.Log("promtool not installed; skipped promtool check metrics")
	}
}

// TestPprofEndpointIsOptIn: Go's profiles are served on http.addr only
// with http.pprof set, and then a heap profile can be taken.
func TestPprofEndpointIsOptIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pprof bool
		want  int
	}{
		{"off by default", false, http.StatusNotFound},
		{"on", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "acme")
			cfg := w.config("w1")
			cfg.HTTP.Addr = freeAddr(t)
			cfg.HTTP.Pprof = tc.pprof
			w.startWorker(cfg, nil)
			var code int
			var body string
			require.Eventually(t, func() bool {
				resp, err := http.Get("http://" + cfg.HTTP.Addr + "/debug/pprof/heap?debug=1")
				if err != nil {
					return false // not listening yet
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				code, body = resp.StatusCode, string(b)
				return true
			}, 10*time.Second, 50*time.Millisecond)
			require.Equal(t, tc.want, code)
			if tc.pprof {
				require.Contains(t, body, "heap profile")
			}
		})
	}
}

// TestConfigBoundHandler binds a handler in config (no `actions` row by
// hand): its executions are recorded against the managed row neo-events
// keeps for the binding.
func TestConfigBoundHandler(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	cfg := w.config("w1")
	cfg.Handlers = []config.HandlerConfig{{Match: "users.*", Handler: "ok"}}
	w.startWorker(cfg, nil)
	evs := []*event.Event{w.newEvent(event.AdminSchema, "users.created"), w.newEvent(w.tenants[0], "users.updated"),
		w.newEvent(w.tenants[0], "orders.paid")}
	w.publish(evs...)
	rows := w.waitFinal(evs, 30*time.Second)
	for _, e := range evs {
		require.Equal(t, event.StatusCompleted, rows[e.ID].Status)
	}
	require.Len(t, w.executions(evs[0]), 1)
	require.Len(t, w.executions(evs[1]), 1)
	require.Empty(t, w.executions(evs[2]), "orders.paid does not match users.*")
	require.Equal(t, 1, w.calls.get("ok", evs[1].ID))
}

// TestStreamsAreTrimmedOnceAcknowledged: a running worker keeps Redis
// memory bounded without dropping anything another group still needs.
func TestStreamsAreTrimmedOnceAcknowledged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	w.addAction(w.tenants[0], "ok", "ok", []string{"*"}, "")
	var evs []*event.Event
	for i := 0; i < 40; i++ {
		evs = append(evs, w.newEvent(w.tenants[0], "users.created"))
	}
	w.publish(evs...)
	// A second group that has read nothing yet pins every entry.
	ctx := context.Background()
	keys, err := w.rdb.SMembers(ctx, streams.Registry(w.prefix)).Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.NoError(t, w.rdb.XGroupCreate(ctx, k, "other", "0").Err())
	}
	total := func() int64 {
		var n int64
		for _, k := range keys {
			l, err := w.rdb.XLen(ctx, k).Result()
			require.NoError(t, err)
			n += l
		}
		return n
	}

	wk, err := fleet.New(w.config("w1"), fleet.Options{Registry: w.registry(), TrimInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	w.waitFinal(evs, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // several trim passes
	require.EqualValues(t, 40, total(), "group other has acknowledged nothing: nothing is trimmed")
	for _, k := range keys {
		for {
			res, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "other", Consumer: "c", Streams: []string{k, ">"}, Count: 100, Block: -1}).Result()
			if err != nil || len(res[0].Messages) == 0 {
				break
			}
			for _, m := range res[0].Messages {
				require.NoError(t, w.rdb.XAck(ctx, k, "other", m.ID).Err())
			}
		}
	}
	require.Eventually(t, func() bool { return total() == 0 }, 10*time.Second, 50*time.Millisecond,
		"once both groups acknowledged, the entries go")
}

// TestHandlersRunWhileStatusWritesWait: an event whose handlers are done
// frees its concurrency slot while its status is written, so a slow status
// write (here: the executions table locked) does not stop the next events'
// handlers. They are bounded apart: with worker.concurrency 1, one event
// runs its handlers and at most consumer's 4 × 1 wait for their writes.
func TestHandlersRunWhileStatusWritesWait(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	schema := w.tenants[0]
	w.addAction(schema, "audit", "ok", []string{"*"}, "")
	cfg := w.config("w1")
	cfg.Worker.Concurrency = 1
	cfg.Worker.ClaimMinIdle = time.Minute // nothing is reclaimed while the writes wait

	ctx := tu.Context(t)
	tx, err := w.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, "LOCK TABLE "+event.QuoteIdent(schema)+".action_executions IN EXCLUSIVE MODE")
	require.NoError(t, err)

	w.startWorker(cfg, nil)
	evs := make([]*event.Event, 10)
	for i := range evs {
		evs[i] = w.newEvent(schema, "users.created")
	}
	w.publish(evs...)
	ran := func() int {
		n := 0
		for _, e := range evs {
			n += w.calls.get("ok", e.ID)
		}
		return n
	}
	const bound = 1 + 4 // running + recording
	require.Eventually(t, func() bool { return ran() == bound }, 10*time.Second, 10*time.Millisecond,
		"handlers of later events did not run while the first status write waited")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, bound, ran(), "more events started than the recording bound allows")

	require.NoError(t, tx.Rollback(ctx)) // the writes go through
	rows := w.waitFinal(evs, 30*time.Second)
	for _, e := range evs {
		require.Equal(t, event.StatusCompleted, rows[e.ID].Status)
		require.Equal(t, 1, w.calls.get("ok", e.ID), "each action ran exactly once")
	}
	requireNothingPending(t, w)
}
