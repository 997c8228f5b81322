package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/neo-events/neo-events/handler"
)

// Names of the demo handlers, as the demo actions' handler_class.
const (
	// FlakyHandler fails the first FlakyFailures attempts of every event,
	// then succeeds: retries that end well.
	FlakyHandler = "demo_flaky"
	// FailHandler always fails: retries that end in the dead-letter queue.
	FailHandler = "demo_fail"
)

// FlakyFailures is how many attempts of each event the flaky handler fails.
const FlakyFailures = 2

// ErrDemoFailure is what the demo handlers fail with, so tests and logs can
// tell an intended failure from a real one.
var ErrDemoFailure = errors.New("demo: intended failure")

// Register adds the demo handlers to reg.
func Register(reg *handler.Registry) error {
	for name, h := range map[string]handler.Handler{FlakyHandler: Flaky(), FailHandler: Fail()} {
		if err := reg.Register(name, h); err != nil {
			return fmt.Errorf("register demo handler %s: %w", name, err)
		}
	}
	return nil
}

// Flaky fails attempts 1..FlakyFailures of every event and succeeds after.
// It decides from the attempt number the worker passes, not from memory, so
// it behaves the same whichever worker process gets which attempt.
func Flaky() handler.Handler {
	return handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		if r.Attempt <= FlakyFailures {
			return fmt.Errorf("%w: flaky attempt %d of the first %d", ErrDemoFailure, r.Attempt, FlakyFailures)
		}
		return r.SetOutput(map[string]any{"synced": true, "attempt": r.Attempt})
	})
}

// Fail fails every attempt with a retryable error, so the event is retried
// under the action's policy and then dead-lettered as exhausted.
func Fail() handler.Handler {
	return handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		return fmt.Errorf("%w: export backend is down (attempt %d)", ErrDemoFailure, r.Attempt)
	})
}
