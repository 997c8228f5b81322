// Package handlertest lets handler authors test a handler the way the
// neo-events worker runs it: through handler.Call (panic recovery, the
// action's timeout as the context deadline) against a real, validated
// *event.Event, with the action's config, name and attempt number under the
// test's control. The Result says what the worker would do next: record a
// completion, retry (and after how long, if the handler asked), or give up.
//
//	func TestWelcome(t *testing.T) {
//		ev, _ := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"email":"a@b.c"}`))
//		res := handlertest.Run(t, welcomeHandler, ev, handlertest.WithConfig(map[string]any{"template": "hi"}))
//		require.NoError(t, res.Err)
//	}
//
// Run needs no Redis or PostgreSQL.
package handlertest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
)

// Defaults of Run's options.
const (
	// DefaultActionName is the action's name unless WithActionName says otherwise.
	DefaultActionName = "handlertest"
	// DefaultMaxAttempts matches the platform's max_retries default of 3.
	DefaultMaxAttempts = event.DefaultMaxRetries + 1
)

// Result is the outcome of one attempt.
type Result struct {
	// Err is what handler.Call returned: nil on success.
	Err error
	// Permanent reports handler.IsPermanent(Err): the worker would not retry.
	Permanent bool
	// RetryAfter is the delay the handler asked for with handler.RetryAfter,
	// or zero.
	RetryAfter time.Duration
	// Panicked reports that the handler panicked (Err is a *handler.PanicError).
	Panicked bool
	// Output is what the handler stored with Request.SetOutput, or nil.
	Output json.RawMessage
	// Duration is how long the attempt took.
	Duration time.Duration
}

// Option adjusts the request Run builds.
type Option func(*options)

type options struct {
	action      handler.Action
	config      any
	attempt     int
	maxAttempts int
	logger      *zap.Logger
	ctx         context.Context
}

// WithAction replaces the whole action (its Config too, unless WithConfig
// is also given).
func WithAction(a handler.Action) Option { return func(o *options) { o.action = a } }

// WithActionName sets Action.Name and Action.HandlerName.
func WithActionName(name string) Option {
	return func(o *options) { o.action.Name, o.action.HandlerName = name, name }
}

// WithConfig sets the action's config: a json.RawMessage, []byte or string
// is used as JSON text; anything else is JSON-encoded. It must be valid JSON.
func WithConfig(cfg any) Option { return func(o *options) { o.config = cfg } }

// WithAttempt sets the attempt number (1-based) and the number of attempts
// the policy allows. Defaults to 1 of DefaultMaxAttempts.
func WithAttempt(attempt, maxAttempts int) Option {
	return func(o *options) { o.attempt, o.maxAttempts = attempt, maxAttempts }
}

// WithTimeout sets Action.Timeout, the attempt's deadline. Defaults to
// handler.DefaultTimeout, as in the worker.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.action.Timeout = d } }

// WithLogger sets the base logger; defaults to zaptest.NewLogger(t), so the
// handler's logs appear in the test output.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithContext sets the parent context; defaults to t.Context().
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// Run executes h once for ev as the worker would and reports the outcome.
// ev must pass ev.Validate(), and the options must make sense; otherwise
// Run fails the test with t.Fatal. The handler's own failure is not a test
// failure: it is in Result.Err for the test to check.
func Run(t testing.TB, h handler.Handler, ev *event.Event, opts ...Option) Result {
	t.Helper()
	req := newRequest(t, ev, opts)
	if req.Request == nil { // t.Fatal did not stop the goroutine (a fake TB)
		return Result{}
	}
	start := time.Now()
	err := handler.Call(req.ctx, h, req.Request)
	res := Result{
		Err:       err,
		Permanent: handler.IsPermanent(err),
		Output:    req.Output(),
		Duration:  time.Since(start),
	}
	res.RetryAfter, _ = handler.RetryDelay(err)
	var pe *handler.PanicError
	res.Panicked = errors.As(err, &pe)
	return res
}

// built is a request plus the context to run it under.
type built struct {
	*handler.Request
	ctx context.Context
}

func newRequest(t testing.TB, ev *event.Event, opts []Option) built {
	t.Helper()
	if ev == nil {
		t.Fatal("handlertest.Run: event is nil")
		return built{}
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("handlertest.Run: the event is not valid, the worker would dead-letter it: %v", err)
		return built{}
	}
	o := options{
		action:      handler.Action{Name: DefaultActionName, HandlerName: DefaultActionName, Type: "custom"},
		attempt:     1,
		maxAttempts: DefaultMaxAttempts,
	}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := encodeConfig(o.config)
	if err != nil {
		t.Fatalf("handlertest.Run: action config: %v", err)
		return built{}
	}
	if cfg != nil {
		o.action.Config = cfg
	}
	if o.attempt < 1 || o.maxAttempts < o.attempt {
		t.Fatalf("handlertest.Run: attempt %d of %d: want 1 <= attempt <= max attempts", o.attempt, o.maxAttempts)
		return built{}
	}
	if o.logger == nil {
		o.logger = zaptest.NewLogger(t)
	}
	if o.ctx == nil {
		o.ctx = t.Context()
	}
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("handlertest.Run: execution id: %v", err)
		return built{}
	}
	req := &handler.Request{Event: ev, Action: o.action, Attempt: o.attempt, MaxAttempts: o.maxAttempts, ExecutionID: id}
	req.SetLogger(o.logger)
	return built{Request: req, ctx: o.ctx}
}

func encodeConfig(cfg any) (json.RawMessage, error) {
	var b []byte
	switch c := cfg.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		b = c
	case []byte:
		b = c
	case string:
		b = []byte(c)
	default:
		var err error
		if b, err = json.Marshal(c); err != nil {
			return nil, err
		}
	}
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	return append(json.RawMessage(nil), b...), nil
}
