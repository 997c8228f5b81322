package demo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/demo"
)

func request(t *testing.T, attempt int) *handler.Request {
	t.Helper()
	e, err := event.New(event.AdminSchema, "users.created", "user", uuid.New(), nil)
	require.NoError(t, err)
	return &handler.Request{Event: e, Action: handler.Action{Name: "a"}, Attempt: attempt, MaxAttempts: 4}
}

func TestFlakyFailsTheFirstTwoAttempts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		attempt int
		fails   bool
	}{{1, true}, {2, true}, {3, false}, {4, false}}
	for _, c := range cases {
		req := request(t, c.attempt)
		err := handler.Call(context.Background(), demo.Flaky(), req)
		if !c.fails {
			require.NoError(t, err, "attempt %d", c.attempt)
			require.JSONEq(t, fmt.Sprintf(`{"synced": true, "attempt": %d}`, c.attempt), string(req.Output()))
			continue
		}
		require.ErrorIs(t, err, demo.ErrDemoFailure, "attempt %d", c.attempt)
		require.False(t, handler.IsPermanent(err), "a flaky failure must be retried")
	}
}

func TestFailAlwaysFailsRetryably(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= 5; attempt++ {
		err := handler.Call(context.Background(), demo.Fail(), request(t, attempt))
		require.ErrorIs(t, err, demo.ErrDemoFailure)
		require.False(t, handler.IsPermanent(err), "the failure must be retried until the policy gives up")
		_, hasDelay := handler.RetryDelay(err)
		require.False(t, hasDelay, "the action's retry_policy, not the handler, sets the delay")
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := handler.NewRegistry()
	require.NoError(t, demo.Register(reg))
	for _, name := range []string{demo.FlakyHandler, demo.FailHandler} {
		_, ok := reg.Lookup(name)
		require.True(t, ok, name)
	}
	err := demo.Register(reg)
	require.True(t, errors.Is(err, handler.ErrDuplicate), "registering twice must fail: %v", err)
}
