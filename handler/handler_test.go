package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
)

func TestPermanent(t *testing.T) {
	t.Parallel()
	cause := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	tests := []struct {
		name      string
		err       error
		permanent bool
		msg       string
	}{
		{"plain", cause, false, "open /x: file does not exist"},
		{"permanent", handler.Permanent(cause), true, "permanent: open /x: file does not exist"},
		{"wrapped permanent", fmt.Errorf("step 2: %w", handler.Permanent(cause)), true, "step 2: permanent: open /x: file does not exist"},
		{"permanent nil", handler.Permanent(nil), true, "permanent failure"},
		{"retry after inside permanent", handler.Permanent(handler.RetryAfter(time.Second, cause)), true, "permanent: open /x: file does not exist (retry after 1s)"},
		{"nil", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.permanent, handler.IsPermanent(tc.err))
			require.Equal(t, tc.permanent, errors.Is(tc.err, handler.ErrPermanent))
			if tc.err == nil {
				return
			}
			require.Equal(t, tc.msg, tc.err.Error())
			if tc.name != "permanent nil" {
				require.ErrorIs(t, tc.err, fs.ErrNotExist, "the cause stays reachable")
				var pe *fs.PathError
				require.ErrorAs(t, tc.err, &pe)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	cause := context.DeadlineExceeded
	tests := []struct {
		name  string
		err   error
		delay time.Duration
		ok    bool
	}{
		{"plain", cause, 0, false},
		{"retry after", handler.RetryAfter(5*time.Second, cause), 5 * time.Second, true},
		{"wrapped", fmt.Errorf("call: %w", handler.RetryAfter(time.Minute, cause)), time.Minute, true},
		{"negative is zero", handler.RetryAfter(-time.Second, cause), 0, true},
		{"nil cause", handler.RetryAfter(time.Second, nil), time.Second, true},
		{"huge is kept for the policy to cap", handler.RetryAfter(math.MaxInt64, cause), math.MaxInt64, true},
		{"nil", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, ok := handler.RetryDelay(tc.err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.delay, d)
			if tc.err != nil && tc.name != "nil cause" {
				require.ErrorIs(t, tc.err, cause)
			}
			require.False(t, handler.IsPermanent(tc.err))
		})
	}
	require.Equal(t, "retry after 1s", handler.RetryAfter(time.Second, nil).Error())
}

func TestCallPanic(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("sentinel")
	tests := []struct {
		name      string
		value     any
		permanent bool
		is        error
	}{
		{"string", "kaboom", false, nil},
		{"error", sentinel, false, sentinel},
		{"permanent error", handler.Permanent(sentinel), true, sentinel},
		{"nil", nil, false, nil}, // Go 1.21+: a *runtime.PanicNilError
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := handler.HandlerFunc(func(context.Context, *handler.Request) error { panic(tc.value) })
			err := handler.Call(context.Background(), h, &handler.Request{})
			var pe *handler.PanicError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.permanent, handler.IsPermanent(err))
			require.Contains(t, pe.Location, "handler_test.go:", "the location names the panicking line")
			require.Contains(t, pe.Stack, "goroutine ")
			require.Contains(t, pe.Stack, "handler_test.go")
			require.Equal(t, pe.Stack, handler.StackTrace(fmt.Errorf("wrapped: %w", err)))
			require.True(t, strings.HasPrefix(err.Error(), "handler panic at "), err.Error())
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			if s, ok := tc.value.(string); ok {
				require.Equal(t, s, pe.Value)
			}
		})
	}
	require.Empty(t, handler.StackTrace(errors.New("no panic")))
	require.Empty(t, handler.StackTrace(nil))
}

func TestCallTimeout(t *testing.T) {
	t.Parallel()
	deadline := func(timeout time.Duration) time.Duration {
		return deadlineUnder(t, context.Background(), timeout)
	}
	require.InDelta(t, float64(handler.DefaultTimeout), float64(deadline(0)), float64(time.Second))
	require.InDelta(t, float64(handler.DefaultTimeout), float64(deadline(-time.Second)), float64(time.Second))
	require.InDelta(t, float64(2*time.Second), float64(deadline(2*time.Second)), float64(time.Second))

	// A caller's deadline wins when it comes first, and only then.
	for _, tc := range []struct {
		name            string
		caller, timeout time.Duration
		want            time.Duration
	}{
		{"caller's deadline first", 3 * time.Second, time.Minute, 3 * time.Second},
		{"same timeout", 5 * time.Second, 5 * time.Second, 5 * time.Second},
		{"action's timeout first", time.Minute, 2 * time.Second, 2 * time.Second},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.caller)
		got := deadlineUnder(t, ctx, tc.timeout)
		cancel()
		require.InDelta(t, float64(tc.want), float64(got), float64(time.Second), tc.name)
	}

	slow := handler.HandlerFunc(func(ctx context.Context, _ *handler.Request) error {
		<-ctx.Done()
		return ctx.Err()
	})
	err := handler.Call(context.Background(), slow, &handler.Request{Action: handler.Action{Timeout: 10 * time.Millisecond}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, handler.IsPermanent(err))
}

// deadlineUnder returns how long a handler called under ctx had left.
func deadlineUnder(t *testing.T, ctx context.Context, timeout time.Duration) time.Duration {
	t.Helper()
	var left time.Duration
	h := handler.HandlerFunc(func(ctx context.Context, _ *handler.Request) error {
		d, ok := ctx.Deadline()
		require.True(t, ok, "Call always sets a deadline")
		left = time.Until(d)
		return nil
	})
	require.NoError(t, handler.Call(ctx, h, &handler.Request{Action: handler.Action{Timeout: timeout}}))
	return left
}

func TestCallRefusesNil(t *testing.T) {
	t.Parallel()
	ok := handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil })
	for _, tc := range []struct {
		name string
		h    handler.Handler
		req  *handler.Request
	}{
		{"nil handler", nil, &handler.Request{}},
		{"nil request", ok, nil},
	} {
		err := handler.Call(context.Background(), tc.h, tc.req)
		require.ErrorIs(t, err, handler.ErrNoHandler, tc.name)
		require.True(t, handler.IsPermanent(err), tc.name)
	}
}

func TestSetOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       any
		want    string
		wantErr error
	}{
		{"map", map[string]int{"a": 1}, `{"a":1}`, nil},
		{"raw", json.RawMessage(`{"b": 2}`), `{"b": 2}`, nil},
		{"scalar", 42, `42`, nil},
		{"nil", nil, `null`, nil},
		{"invalid raw", json.RawMessage(`{`), "", nil},
		{"unencodable", make(chan int), "", nil},
		{"too large", strings.Repeat("x", handler.MaxOutputBytes), "", handler.ErrOutputTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &handler.Request{}
			require.NoError(t, req.SetOutput("previous"))
			err := req.SetOutput(tc.v)
			if tc.want == "" {
				require.Error(t, err)
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
				}
				require.Equal(t, `"previous"`, string(req.Output()), "a failed SetOutput keeps the old output")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(req.Output()))
		})
	}
}

func TestSetOutputCopiesRaw(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`{"a":1}`)
	req := &handler.Request{}
	require.NoError(t, req.SetOutput(raw))
	raw[5] = '2'
	require.Equal(t, `{"a":1}`, string(req.Output()))
}

func TestLogger(t *testing.T) {
	t.Parallel()
	req := &handler.Request{}
	require.NotNil(t, req.Logger(), "never nil")
	req.Logger().Info("discarded")

	ev := &event.Event{ID: uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057"),
		CorrelationID: uuid.MustParse("22222222-2222-4222-8222-222222222222")}
	core, logs := observer.New(zap.InfoLevel)
	req = &handler.Request{Event: ev, Action: handler.Action{Name: "welcome"}, Attempt: 3}
	req.SetLogger(zap.New(core))
	req.Logger().Info("hello")

	entries := logs.All()
	require.Len(t, entries, 1)
	require.Equal(t, map[string]any{
		"event_id":       ev.ID.String(),
		"correlation_id": ev.CorrelationID.String(),
		"action":         "welcome",
		"attempt":        int64(3),
	}, entries[0].ContextMap())

	// Fields naming where the event is come first, each once; the logger
	// is built once and reused.
	core, logs = observer.New(zap.InfoLevel)
	req.SetLogger(zap.New(core), zap.String("schema", "tenant_acme"), zap.String("stream", "s:1"))
	l := req.Logger()
	require.Same(t, l, req.Logger())
	l.Info("again")
	entries = logs.All()
	require.Len(t, entries, 1)
	require.Equal(t, []string{"schema", "stream", "action", "attempt", "event_id", "correlation_id"},
		fieldKeys(entries[0].Context))

	req.SetLogger(nil)
	require.NotNil(t, req.Logger())
	req.Logger().Info("discarded")
}

func fieldKeys(fs []zapcore.Field) []string {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.Key
	}
	return keys
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	good := []string{"webhook", "a", "Email.Send:v2", "crm_sync-1", strings.Repeat("x", handler.MaxNameLen)}
	bad := []string{"", " webhook", "web hook", "a/b", "héllo", "x;drop", "a\n", strings.Repeat("x", handler.MaxNameLen+1)}
	for _, n := range good {
		require.NoError(t, handler.ValidateName(n), n)
	}
	for _, n := range bad {
		err := handler.ValidateName(n)
		require.ErrorIs(t, err, handler.ErrInvalidName, "%q", n)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	nop := handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil })
	var reg handler.Registry // the zero value works
	require.NoError(t, reg.Register("b", nop))
	require.NoError(t, reg.Register("a", nop))
	require.ErrorIs(t, reg.Register("a", nop), handler.ErrDuplicate)
	require.ErrorIs(t, reg.Register("bad name", nop), handler.ErrInvalidName)
	require.Error(t, reg.Register("nil", nil))
	require.Equal(t, []string{"a", "b"}, reg.Names())

	_, ok := reg.Lookup("missing")
	require.False(t, ok)

	require.PanicsWithError(t, `register handler "a": handler already registered`, func() { reg.MustRegister("a", nop) })
}

// trace returns middleware that records its name on the way in and out.
func trace(name string, log *[]string) handler.Middleware {
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
			*log = append(*log, name+">")
			err := next.Handle(ctx, req)
			*log = append(*log, "<"+name)
			return err
		})
	}
}

func TestRegistryMiddlewareOrder(t *testing.T) {
	t.Parallel()
	var log []string
	reg := handler.NewRegistry()
	reg.MustRegister("h", handler.HandlerFunc(func(context.Context, *handler.Request) error {
		log = append(log, "h")
		return nil
	}))
	reg.Use(trace("outer", &log), nil, trace("middle", &log))
	h, ok := reg.Lookup("h")
	require.True(t, ok)
	require.NoError(t, h.Handle(context.Background(), &handler.Request{}))
	require.Equal(t, []string{"outer>", "middle>", "h", "<middle", "<outer"}, log)

	// Use after a Lookup applies to later lookups.
	reg.Use(trace("inner", &log))
	log = nil
	h, _ = reg.Lookup("h")
	require.NoError(t, h.Handle(context.Background(), &handler.Request{}))
	require.Equal(t, []string{"outer>", "middle>", "inner>", "h", "<inner", "<middle", "<outer"}, log)
}

func TestRegistryMiddlewareBuiltOnce(t *testing.T) {
	t.Parallel()
	built := 0
	reg := handler.NewRegistry()
	reg.Use(func(next handler.Handler) handler.Handler { built++; return next })
	reg.MustRegister("h", handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil }))
	for range 3 {
		_, ok := reg.Lookup("h")
		require.True(t, ok)
	}
	require.Equal(t, 1, built)
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	reg := handler.NewRegistry()
	nop := handler.HandlerFunc(func(context.Context, *handler.Request) error { return nil })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 8 {
				name := fmt.Sprintf("h%d_%d", i, j)
				if err := reg.Register(name, nop); err != nil {
					errs <- err
				}
				reg.Use(func(h handler.Handler) handler.Handler { return h })
				if _, ok := reg.Lookup(name); !ok {
					errs <- fmt.Errorf("%s not found", name)
				}
				_ = reg.Names()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, reg.Names(), 64)
}
