package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/logging"
)

// DefaultTimeout bounds one attempt when the action names no timeout: the
// platform's `actions.timeout_seconds` column default.
const DefaultTimeout = 300 * time.Second

// MaxOutputBytes caps what SetOutput accepts, so one handler cannot bloat
// `action_executions.output_data`.
const MaxOutputBytes = 1 << 20

// ErrOutputTooLarge is returned by SetOutput for output above MaxOutputBytes.
var ErrOutputTooLarge = errors.New("handler output too large")

// Handler processes one event for one action. A nil error means the attempt
// completed; any other error fails it, and the worker retries it under the
// action's retry policy unless the error is Permanent. RetryAfter asks for a
// specific delay. Handlers must respect ctx: it carries the action's timeout
// and is cancelled on shutdown.
//
// Delivery is at least once: a handler may see the same event again after a
// crash, so it should be idempotent (the event id is a good idempotency key).
type Handler interface {
	Handle(ctx context.Context, req *Request) error
}

// HandlerFunc adapts a function to Handler, like http.HandlerFunc.
type HandlerFunc func(ctx context.Context, req *Request) error

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req *Request) error { return f(ctx, req) }

// Action describes the action being executed: a row of `<schema>.actions`,
// or a binding from the worker's `handlers` config (then ID is uuid.Nil).
// Secrets the config refers to are the handler's business to resolve.
type Action struct {
	// ID of the actions row; uuid.Nil for a config binding.
	ID uuid.UUID
	// Name is the action's unique name.
	Name string
	// Type is the action_type enum value, such as "webhook".
	Type string
	// HandlerName is the registered handler that runs the action: the
	// row's handler_class, or failing that its action_type.
	HandlerName string
	// Config is the action's `config` JSON object, passed through unparsed.
	Config json.RawMessage
	// Timeout bounds one attempt; zero or less means DefaultTimeout.
	Timeout time.Duration
}

// Request is one attempt of one action on one event. The worker builds it;
// handlers read it and may record output with SetOutput.
type Request struct {
	// Event is the event being processed. Handlers must not modify it.
	Event *event.Event
	// Action is the action being executed.
	Action Action
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	Attempt int
	// MaxAttempts is the number of attempts the retry policy allows
	// (max_retries + 1), so Attempt == MaxAttempts is the last one.
	MaxAttempts int
	// ExecutionID is the id of this attempt's `action_executions` row.
	ExecutionID uuid.UUID

	mu     sync.Mutex
	output json.RawMessage
	logger *zap.Logger // built from base and where on the first Logger call
	base   *zap.Logger
	where  []zap.Field
}

// SetOutput stores v, JSON-encoded, as the attempt's output
// (`action_executions.output_data`). A json.RawMessage is stored as is once
// checked to be valid JSON. Calling it again replaces the output. It is safe
// to call from several goroutines.
func (r *Request) SetOutput(v any) error {
	b, err := encodeOutput(v)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.output = b
	r.mu.Unlock()
	return nil
}

func encodeOutput(v any) (json.RawMessage, error) {
	var b []byte
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("handler output: not valid JSON")
		}
		b = append([]byte(nil), raw...)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("handler output: %w", err)
		}
	}
	if len(b) > MaxOutputBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrOutputTooLarge, len(b), MaxOutputBytes)
	}
	return b, nil
}

// Output returns what SetOutput stored, or nil.
func (r *Request) Output() json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output
}

// nopLogger is shared: zap.NewNop is cheap but not free.
var nopLogger = zap.NewNop()

// Logger returns the attempt's logger, never nil. Its entries carry
// event_id, correlation_id, action and attempt. Without SetLogger it
// discards everything.
func (r *Request) Logger() *zap.Logger {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logger == nil {
		if r.base == nil {
			return nopLogger
		}
		r.logger = r.base.With(r.fields()...)
	}
	return r.logger
}

// SetLogger derives the attempt's logger from base, adding where (fields
// naming where the event is, such as its stream) and the event and action
// fields. The logger is built when Logger is first called, from the
// Event, Action and Attempt the request holds then: most attempts log
// nothing, and zap encodes a derived logger's fields at once. Call it after
// Event, Action and Attempt are filled in, and do not modify where
// afterwards. A nil base means a logger that discards everything.
func (r *Request) SetLogger(base *zap.Logger, where ...zap.Field) {
	r.mu.Lock()
	r.base, r.where, r.logger = base, where, nil
	r.mu.Unlock()
}

// fields are the where fields plus the event's and action's.
func (r *Request) fields() []zap.Field {
	fields := make([]zap.Field, 0, len(r.where)+4)
	fields = append(fields, r.where...)
	fields = append(fields,
		zap.String(logging.KeyAction, r.Action.Name),
		zap.Int(logging.KeyAttempt, r.Attempt),
	)
	if r.Event != nil {
		fields = append(fields, zap.Stringer(logging.KeyEventID, r.Event.ID))
		if r.Event.CorrelationID != uuid.Nil {
			fields = append(fields, zap.Stringer(logging.KeyCorrelationID, r.Event.CorrelationID))
		}
	}
	return fields
}

// Timeout is the deadline Call gives the attempt: Action.Timeout, or
// DefaultTimeout when that is zero or less.
func (r *Request) Timeout() time.Duration {
	if r.Action.Timeout > 0 {
		return r.Action.Timeout
	}
	return DefaultTimeout
}
