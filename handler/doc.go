// Package handler is how code plugs into the neo-events worker: the Handler
// interface an action runs, the Request it receives, the errors that steer
// retries, and the Registry a worker binary fills at start-up. It is shaped
// like net/http: a one-method interface, a func adapter, middleware.
//
// # Writing a handler
//
// A handler receives one event for one action and returns nil (completed)
// or an error (failed):
//
//	func sendWelcome(ctx context.Context, req *handler.Request) error {
//		var user struct{ Email string `json:"email"` }
//		if err := json.Unmarshal(req.Event.Data, &user); err != nil {
//			return handler.Permanent(fmt.Errorf("event_data: %w", err))
//		}
//		if err := mailer.Send(ctx, user.Email, "Welcome"); err != nil {
//			return err // retried with the action's backoff
//		}
//		return req.SetOutput(map[string]string{"sent_to": user.Email})
//	}
//
// What the return value means (DESIGN §3):
//
//   - nil: the attempt completed; its `action_executions` row is completed,
//     with Output as output_data. A completed execution never runs again,
//     not even when the event is redelivered.
//   - any error: the attempt failed and is retried under the action's
//     retry_policy (else the event's max_retries, else the worker config),
//     with exponential backoff and jitter. After the last attempt the event
//     goes to the dead-letter stream.
//   - Permanent(err): failed, no retry: straight to the dead-letter stream.
//   - RetryAfter(d, err): failed, retry after d rather than the backoff
//     (the retry budget still applies).
//   - a panic: recovered by Call into a *PanicError whose stack is stored
//     in error_stack_trace; it is retried like an error.
//
// Delivery is at least once, so make handlers idempotent; the event id
// (req.Event.ID, a UUIDv7) is a natural idempotency key. Respect ctx: it
// carries the action's timeout (Action.Timeout, DefaultTimeout when unset)
// and is cancelled when the worker shuts down. Log through req.Logger(),
// which already carries event_id, correlation_id, action and attempt.
//
// # Building your own worker binary
//
// The worker fleet is one Go binary per team, linked with that team's
// handlers. A team writes a main package that fills a Registry and hands it
// to worker.Main (the public worker package), which reads the usual
// configuration (file, NEO_EVENTS_* environment, flags), connects to Redis
// and PostgreSQL, and runs until SIGTERM:
//
//	package main
//
//	import (
//		"github.com/neo-events/neo-events/handler"
//		"github.com/neo-events/neo-events/worker"
//	)
//
//	func main() {
//		reg := handler.NewRegistry()
//		reg.Use(auditMiddleware)                      // first Use is outermost
//		reg.MustRegister("welcome_email", handler.HandlerFunc(sendWelcome))
//		reg.MustRegister("crm_sync", crm.NewHandler()) // any Handler
//		worker.Main(reg)
//	}
//
// An action reaches a handler by name: the `actions` row's handler_class, or
// failing that its action_type (so registering "email" serves every email
// action). The worker's `handlers` config can also bind a registered handler
// to an event pattern without an actions row. The built-in `webhook`
// handler is registered by the worker itself; a binary need not (and must
// not) register that name again.
//
// Names are 1..200 characters of [a-zA-Z0-9_.:-]; Register refuses a
// duplicate with ErrDuplicate.
//
// # Testing a handler
//
// Package handlertest runs a handler exactly as the worker does (Call, the
// action's timeout, panic recovery) against a real event and reports what
// the worker would do with the outcome.
package handler
