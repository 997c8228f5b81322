package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/metrics"
	"github.com/neo-events/neo-events/internal/testutil"
)

var errBoom = errors.New("boom")

func testRegistry(t testing.TB) *handler.Registry {
	t.Helper()
	r := handler.NewRegistry()
	r.MustRegister("ok", handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
		return req.SetOutput(map[string]any{"attempt": req.Attempt, "action": req.Action.Name})
	}))
	r.MustRegister("fail", handler.HandlerFunc(func(context.Context, *handler.Request) error { return errBoom }))
	r.MustRegister("perm", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		return handler.Permanent(errBoom)
	}))
	r.MustRegister("later", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		return handler.RetryAfter(42*time.Second, errBoom)
	}))
	r.MustRegister("panic", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		panic("kaboom")
	}))
	r.MustRegister("slow", handler.HandlerFunc(func(ctx context.Context, _ *handler.Request) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	return r
}

func testAction(handlerName string) dispatch.Action {
	return dispatch.Action{ID: uuid.New(), Schema: "tenant_acme", Name: "act_" + handlerName,
		Type: "custom", HandlerName: handlerName, Timeout: time.Minute, Source: dispatch.SourceAction}
}

func TestRun(t *testing.T) {
	t.Parallel()
	stubbornDone := make(chan struct{})
	t.Cleanup(func() { close(stubbornDone) })
	reg := testRegistry(t)
	reg.MustRegister("stubborn", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		<-stubbornDone // ignores its context
		return nil
	}))
	m := metrics.NewWorker(prometheus.NewRegistry())
	d := dispatch.New(nil, dispatch.Options{Registry: reg, TimeoutGrace: 50 * time.Millisecond,
		Metrics: m, Group: "g"})
	t.Cleanup(d.Close)
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)

	tests := []struct {
		name    string
		handler string
		timeout time.Duration
		check   func(t *testing.T, r dispatch.Result)
	}{
		{name: "success", handler: "ok", check: func(t *testing.T, r dispatch.Result) {
			require.NoError(t, r.Err)
			require.JSONEq(t, `{"attempt":2,"action":"act_ok"}`, string(r.Output))
			require.True(t, r.Attempted())
			require.False(t, r.Finished.Before(r.Started))
		}},
		{name: "retryable failure", handler: "fail", check: func(t *testing.T, r dispatch.Result) {
			require.ErrorIs(t, r.Err, errBoom)
			require.False(t, r.Permanent)
			require.Zero(t, r.RetryAfter)
		}},
		{name: "permanent", handler: "perm", check: func(t *testing.T, r dispatch.Result) {
			require.ErrorIs(t, r.Err, errBoom)
			require.True(t, r.Permanent)
		}},
		{name: "retry after", handler: "later", check: func(t *testing.T, r dispatch.Result) {
			require.ErrorIs(t, r.Err, errBoom)
			require.Equal(t, 42*time.Second, r.RetryAfter)
		}},
		{name: "panic", handler: "panic", check: func(t *testing.T, r dispatch.Result) {
			var pe *handler.PanicError
			require.ErrorAs(t, r.Err, &pe)
			require.Contains(t, r.Stack, "run_test.go")
			require.False(t, r.Permanent)
		}},
		{name: "unknown handler", handler: "nobody", check: func(t *testing.T, r dispatch.Result) {
			require.ErrorIs(t, r.Err, dispatch.ErrUnknownHandler)
			require.True(t, r.UnknownHandler)
			require.True(t, r.Permanent)
			require.False(t, r.Attempted())
		}},
		{name: "timeout", handler: "slow", timeout: 30 * time.Millisecond, check: func(t *testing.T, r dispatch.Result) {
			require.ErrorIs(t, r.Err, context.DeadlineExceeded)
			require.True(t, r.TimedOut)
			require.False(t, r.Permanent)
			require.GreaterOrEqual(t, r.Finished.Sub(r.Started), 30*time.Millisecond)
		}},
		{name: "handler ignoring its deadline is abandoned", handler: "stubborn", timeout: 30 * time.Millisecond,
			check: func(t *testing.T, r dispatch.Result) {
				require.ErrorIs(t, r.Err, dispatch.ErrAbandoned)
				require.True(t, r.TimedOut)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testAction(tc.handler)
			if tc.timeout > 0 {
				a.Timeout = tc.timeout
			}
			r := d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 2,
				MaxAttempts: 4, ExecutionID: uuid.New()})
			require.Zero(t, r.Deferred)
			tc.check(t, r)
		})
	}
	require.EqualValues(t, 1, histCount(t, m, "act_ok"), "one handler call observed")
	require.EqualValues(t, 0, histCount(t, m, "act_nobody"), "an unknown handler is never called")
}

func histCount(t *testing.T, m *metrics.Worker, action string) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	m.HandlerDuration.WithLabelValues("g", action).(prometheus.Histogram).Collect(ch)
	var out dto.Metric
	require.NoError(t, (<-ch).Write(&out))
	return out.GetHistogram().GetSampleCount()
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.insertAction(t, f.tenant, action{name: "flaky", handlerClass: "flaky", patterns: []string{"*"}, active: true})
	var healthy atomic.Bool
	var calls atomic.Int64
	reg := handler.NewRegistry()
	reg.MustRegister("flaky", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		calls.Add(1)
		if healthy.Load() {
			return nil
		}
		return fmt.Errorf("downstream 503: %w", errBoom)
	}))
	clk := newClock()
	m := metrics.NewWorker(prometheus.NewRegistry())
	d := dispatch.New(f.pool, dispatch.Options{Registry: reg, Health: dispatch.NewPGHealth(f.pool),
		BreakerThreshold: 3, BreakerCooldown: 30 * time.Second, Now: clk.Now, Metrics: m, Group: "g"})
	t.Cleanup(d.Close)
	ev := newEvent(t, f.tenant, "users.created", `{}`)
	acts, err := d.Match(f.ctx, ev)
	require.NoError(t, err)
	require.Len(t, acts, 1)
	run := func() dispatch.Result {
		return d.Run(f.ctx, dispatch.RunRequest{Event: ev, Action: acts[0], Attempt: 1, MaxAttempts: 9})
	}
	health := func() (bool, *string) {
		var ok bool
		var msg *string
		require.NoError(t, f.pool.QueryRow(f.ctx, `SELECT is_healthy, health_check_error FROM `+f.tenant+
			`.actions WHERE id = $1`, id).Scan(&ok, &msg))
		return ok, msg
	}
	gauge := func() float64 {
		var out dto.Metric
		require.NoError(t, m.ActionCircuitOpen.WithLabelValues("g", "flaky").Write(&out))
		return out.GetGauge().GetValue()
	}

	for i := range 3 {
		r := run()
		require.ErrorIs(t, r.Err, errBoom, "failure %d", i+1)
		require.Zero(t, r.Deferred)
	}
	ok, msg := health()
	require.False(t, ok, "the third consecutive failure opens the circuit")
	require.NotNil(t, msg)
	require.Contains(t, *msg, "downstream 503")
	require.Equal(t, 1.0, gauge())

	r := run()
	require.Equal(t, 30*time.Second, r.Deferred, "an open circuit defers without calling")
	require.False(t, r.Attempted())
	require.EqualValues(t, 3, calls.Load())

	clk.Advance(31 * time.Second)
	r = run() // half-open trial fails: open again for a full cooldown
	require.ErrorIs(t, r.Err, errBoom)
	require.Equal(t, 30*time.Second, run().Deferred)

	healthy.Store(true)
	clk.Advance(30 * time.Second)
	r = run()
	require.NoError(t, r.Err, "the trial succeeds and closes the circuit by itself")
	ok, msg = health()
	require.True(t, ok)
	require.Nil(t, msg)
	require.Equal(t, 0.0, gauge())
	require.NoError(t, run().Err)
	require.EqualValues(t, 6, calls.Load())
}

func TestBreakerIgnoresPermanentFailures(t *testing.T) {
	t.Parallel()
	d := dispatch.New(nil, dispatch.Options{Registry: testRegistry(t), BreakerThreshold: 2})
	t.Cleanup(d.Close)
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)
	a := testAction("perm")
	for range 5 {
		r := d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 1, MaxAttempts: 1})
		require.True(t, r.Permanent)
		require.Zero(t, r.Deferred, "bad events must not open the circuit")
	}
}

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int64
	reg := handler.NewRegistry()
	reg.MustRegister("busy", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		return nil
	}))
	d := dispatch.New(nil, dispatch.Options{Registry: reg})
	t.Cleanup(d.Close)
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)
	a := testAction("busy")
	a.MaxConcurrent = 3

	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 1, MaxAttempts: 1})
			if r.Err != nil {
				t.Error(r.Err)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 3, peak.Load(), "exactly MaxConcurrent calls ran at once")

	// Waiting for a slot ends with the caller's context, without an attempt.
	block := make(chan struct{})
	reg.MustRegister("hold", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		<-block
		return nil
	}))
	h := testAction("hold")
	h.MaxConcurrent = 1
	go d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: h, Attempt: 1, MaxAttempts: 1})
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r := d.Run(ctx, dispatch.RunRequest{Event: ev, Action: h, Attempt: 1, MaxAttempts: 1})
	close(block)
	require.True(t, r.Aborted)
	require.False(t, r.Attempted())
	require.ErrorIs(t, r.Err, context.DeadlineExceeded)
}

// fakeLimiter refuses while deny is set and records the keys it saw.
type fakeLimiter struct {
	mu   sync.Mutex
	keys []string
	deny map[string]time.Duration
	err  error
}

func (l *fakeLimiter) Allow(_ context.Context, key string, perMinute int) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, fmt.Sprintf("%s/%d", key, perMinute))
	if l.err != nil {
		return false, 0, l.err
	}
	if d, ok := l.deny[key]; ok {
		return false, d, nil
	}
	return true, 0, nil
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	reg := handler.NewRegistry()
	reg.MustRegister("count", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		calls.Add(1)
		return nil
	}))
	lim := &fakeLimiter{deny: map[string]time.Duration{}}
	d := dispatch.New(nil, dispatch.Options{Registry: reg, Limiter: lim, BreakerThreshold: 1})
	t.Cleanup(d.Close)
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)
	a := testAction("count")
	run := func(a dispatch.Action) dispatch.Result {
		return d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 1, MaxAttempts: 1})
	}
	actionKey := "tenant_acme:" + a.ID.String()

	require.NoError(t, run(a).Err, "no limit: the limiter is not asked")
	require.Empty(t, lim.keys)

	a.RateLimitPerMinute = 60
	lim.deny[actionKey] = 7 * time.Second
	r := run(a)
	require.Equal(t, 7*time.Second, r.Deferred)
	require.False(t, r.Attempted())
	require.EqualValues(t, 1, calls.Load())
	require.Equal(t, []string{actionKey + "/60"}, lim.keys)
	require.Equal(t, 7*time.Second, run(a).Deferred, "a deferral is not a breaker failure (threshold 1 would open it)")

	delete(lim.deny, actionKey)
	a.Source, a.SubscriptionID, a.SubscriptionRateLimitPerMinute = dispatch.SourceSubscription, uuid.New(), 5
	subKey := "tenant_acme:subscription:" + a.SubscriptionID.String()
	lim.deny[subKey] = time.Second
	require.Equal(t, time.Second, run(a).Deferred, "the subscription's own limit applies too")

	lim.err = errors.New("redis down")
	require.NoError(t, run(a).Err, "a limiter error fails open")
	require.EqualValues(t, 2, calls.Load())
}

func TestPGHealthRefusesBadSchema(t *testing.T) {
	t.Parallel()
	testutil.SkipIfShort(t)
	err := dispatch.NewPGHealth(nil).SetHealth(context.Background(), "pg_catalog", uuid.New(), false, "x")
	require.Error(t, err)
}

// TestRunLogsNameEachFieldOnce: the handler's logger and Run's own carry
// event_id, correlation_id, action and attempt exactly once, on top of
// what the caller's logger and LogFields say, whether the caller's fields
// come in its logger or, built only when something is logged, as LogFields.
func TestRunLogsNameEachFieldOnce(t *testing.T) {
	t.Parallel()
	reg := handler.NewRegistry()
	reg.MustRegister("talk", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		r.Logger().Info("from the handler")
		return nil
	}))
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)
	ev.CorrelationID = uuid.New()
	for _, tc := range []struct {
		name   string
		with   []zap.Field // on the caller's logger
		fields []zap.Field // as LogFields
		want   map[string]int
	}{
		{name: "caller's logger", with: []zap.Field{zap.String("schema", ev.Schema)},
			want: map[string]int{"schema": 1, "event_id": 1, "correlation_id": 1, "action": 1, "attempt": 1}},
		{name: "LogFields", fields: []zap.Field{zap.String("schema", ev.Schema), zap.String("stream", "s:0")},
			want: map[string]int{"schema": 1, "stream": 1, "event_id": 1, "correlation_id": 1, "action": 1, "attempt": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			// A failing rate limiter makes Run itself log (and allow the call).
			lim := &fakeLimiter{err: errBoom}
			d := dispatch.New(nil, dispatch.Options{Registry: reg, Limiter: lim})
			defer d.Close()
			a := testAction("talk")
			a.RateLimitPerMinute = 10
			r := d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 3,
				MaxAttempts: 4, ExecutionID: uuid.New(), Logger: zap.New(core).With(tc.with...), LogFields: tc.fields})
			require.NoError(t, r.Err)
			for _, msg := range []string{"from the handler", "rate limiter failed; allowing the call"} {
				entries := logs.FilterMessage(msg).All()
				require.Len(t, entries, 1, msg)
				count := map[string]int{}
				for _, f := range entries[0].Context {
					if f.Key != "key" && f.Key != "error" {
						count[f.Key]++
					}
				}
				require.Equal(t, tc.want, count, msg)
				require.Equal(t, ev.ID.String(), entries[0].ContextMap()["event_id"], msg)
				require.Equal(t, ev.CorrelationID.String(), entries[0].ContextMap()["correlation_id"], msg)
			}
		})
	}
}

// TestAbandonedHandlerKeepsItsSlot: a handler that ignores its context is
// abandoned TimeoutGrace after its caller's context ends (shutdown), as
// after its deadline; it keeps its concurrency slot until it returns.
func TestAbandonedHandlerKeepsItsSlot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	returned := make(chan struct{})
	reg := handler.NewRegistry()
	reg.MustRegister("stubborn", handler.HandlerFunc(func(ctx context.Context, r *handler.Request) error {
		if r.Attempt == 1 {
			<-release // ignores ctx
			defer close(returned)
		}
		return nil
	}))
	const grace = 50 * time.Millisecond
	d := dispatch.New(nil, dispatch.Options{Registry: reg, TimeoutGrace: grace})
	t.Cleanup(d.Close)
	ev := newEvent(t, "tenant_acme", "users.created", `{}`)
	a := testAction("stubborn")
	a.MaxConcurrent = 1

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel) // the worker shuts down
	start := time.Now()
	r := d.Run(ctx, dispatch.RunRequest{Event: ev, Action: a, Attempt: 1, MaxAttempts: 2})
	require.ErrorIs(t, r.Err, dispatch.ErrAbandoned)
	require.ErrorIs(t, r.Err, context.Canceled)
	require.False(t, r.TimedOut, "the caller's context ended, not the attempt's deadline")
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond+grace)

	short, stop := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer stop()
	r = d.Run(short, dispatch.RunRequest{Event: ev, Action: a, Attempt: 2, MaxAttempts: 2})
	require.True(t, r.Aborted, "the abandoned handler still holds the only slot")

	close(release)
	<-returned
	r = d.Run(context.Background(), dispatch.RunRequest{Event: ev, Action: a, Attempt: 2, MaxAttempts: 2})
	require.NoError(t, r.Err, "its slot came back when it returned")
}
