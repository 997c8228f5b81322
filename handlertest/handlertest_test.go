package handlertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/handlertest"
)

func newEvent(t testing.TB) *event.Event {
	t.Helper()
	ev, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"email":"a@example.com"}`))
	require.NoError(t, err)
	return ev
}

func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name       string
		h          handler.HandlerFunc
		wantErr    error
		permanent  bool
		retryAfter time.Duration
		panicked   bool
		output     string
	}{
		{"success with output", func(_ context.Context, r *handler.Request) error {
			return r.SetOutput(map[string]string{"sent": "yes"})
		}, nil, false, 0, false, `{"sent":"yes"}`},
		{"error", func(context.Context, *handler.Request) error { return boom }, boom, false, 0, false, ""},
		{"permanent", func(context.Context, *handler.Request) error { return handler.Permanent(boom) }, boom, true, 0, false, ""},
		{"retry after", func(context.Context, *handler.Request) error {
			return handler.RetryAfter(3*time.Second, boom)
		}, boom, false, 3 * time.Second, false, ""},
		{"panic", func(context.Context, *handler.Request) error { panic("kaboom") }, nil, false, 0, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := handlertest.Run(t, tc.h, newEvent(t))
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, res.Err, tc.wantErr)
			case tc.panicked:
				var pe *handler.PanicError
				require.ErrorAs(t, res.Err, &pe)
				require.Equal(t, "kaboom", pe.Value)
			default:
				require.NoError(t, res.Err)
			}
			require.Equal(t, tc.permanent, res.Permanent)
			require.Equal(t, tc.retryAfter, res.RetryAfter)
			require.Equal(t, tc.panicked, res.Panicked)
			require.Equal(t, tc.output, string(res.Output))
			require.Positive(t, res.Duration)
		})
	}
}

func TestRunBuildsRequest(t *testing.T) {
	t.Parallel()
	ev := newEvent(t)
	var got *handler.Request
	var deadline time.Duration
	h := handler.HandlerFunc(func(ctx context.Context, r *handler.Request) error {
		got = r
		d, ok := ctx.Deadline()
		require.True(t, ok)
		deadline = time.Until(d)
		return nil
	})

	res := handlertest.Run(t, h, ev)
	require.NoError(t, res.Err)
	require.Same(t, ev, got.Event)
	require.Equal(t, handlertest.DefaultActionName, got.Action.Name)
	require.Equal(t, 1, got.Attempt)
	require.Equal(t, handlertest.DefaultMaxAttempts, got.MaxAttempts)
	require.NotEqual(t, uuid.Nil, got.ExecutionID)
	require.Nil(t, got.Action.Config)
	require.InDelta(t, float64(handler.DefaultTimeout), float64(deadline), float64(time.Second))

	res = handlertest.Run(t, h, ev,
		handlertest.WithAction(handler.Action{Name: "x", Type: "webhook", Config: json.RawMessage(`{"a":0}`)}),
		handlertest.WithActionName("welcome"),
		handlertest.WithConfig(map[string]any{"url": "http://127.0.0.1:1"}),
		handlertest.WithAttempt(4, 4),
		handlertest.WithTimeout(2*time.Second),
	)
	require.NoError(t, res.Err)
	require.Equal(t, "welcome", got.Action.Name)
	require.Equal(t, "welcome", got.Action.HandlerName)
	require.Equal(t, "webhook", got.Action.Type)
	require.JSONEq(t, `{"url":"http://127.0.0.1:1"}`, string(got.Action.Config))
	require.Equal(t, 4, got.Attempt)
	require.Equal(t, 4, got.MaxAttempts)
	require.InDelta(t, float64(2*time.Second), float64(deadline), float64(time.Second))

	for _, cfg := range []any{`{"k":1}`, []byte(`{"k":1}`), json.RawMessage(`{"k":1}`)} {
		res = handlertest.Run(t, h, ev, handlertest.WithConfig(cfg))
		require.NoError(t, res.Err)
		require.JSONEq(t, `{"k":1}`, string(got.Action.Config))
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	h := handler.HandlerFunc(func(ctx context.Context, _ *handler.Request) error {
		<-ctx.Done()
		return ctx.Err()
	})
	res := handlertest.Run(t, h, newEvent(t), handlertest.WithTimeout(20*time.Millisecond))
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.False(t, res.Permanent)
	require.GreaterOrEqual(t, res.Duration, 20*time.Millisecond)
}

func TestRunContextAndLogger(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ev := newEvent(t)
	h := handler.HandlerFunc(func(ctx context.Context, r *handler.Request) error {
		r.Logger().Info("working")
		return ctx.Err()
	})
	res := handlertest.Run(t, h, ev, handlertest.WithContext(ctx), handlertest.WithLogger(zap.New(core)),
		handlertest.WithActionName("welcome"))
	require.ErrorIs(t, res.Err, context.Canceled)
	require.Equal(t, 1, logs.Len())
	fields := logs.All()[0].ContextMap()
	require.Equal(t, ev.ID.String(), fields["event_id"])
	require.Equal(t, "welcome", fields["action"])
}

// fakeTB records t.Fatal instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Fatal(args ...any)         { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.fatal = fmt.Sprintf(s, a...) }

func TestRunRefusesBadSetup(t *testing.T) {
	t.Parallel()
	invalid := newEvent(t)
	invalid.Schema = "public; drop table x"
	called := false
	h := handler.HandlerFunc(func(context.Context, *handler.Request) error { called = true; return nil })
	tests := []struct {
		name string
		ev   *event.Event
		opts []handlertest.Option
		want string
	}{
		{"nil event", nil, nil, "event is nil"},
		{"invalid event", invalid, nil, "invalid event: schema"},
		{"bad config text", newEvent(t), []handlertest.Option{handlertest.WithConfig(`{"a":`)}, "action config"},
		{"unencodable config", newEvent(t), []handlertest.Option{handlertest.WithConfig(func() {})}, "action config"},
		{"attempt zero", newEvent(t), []handlertest.Option{handlertest.WithAttempt(0, 4)}, "attempt 0 of 4"},
		{"attempt beyond max", newEvent(t), []handlertest.Option{handlertest.WithAttempt(5, 4)}, "attempt 5 of 4"},
	}
	for _, tc := range tests {
		ft := &fakeTB{TB: t}
		res := handlertest.Run(ft, h, tc.ev, tc.opts...)
		require.Contains(t, ft.fatal, tc.want, tc.name)
		require.False(t, called, "%s: the handler must not run", tc.name)
		require.Equal(t, handlertest.Result{}, res)
	}
}
