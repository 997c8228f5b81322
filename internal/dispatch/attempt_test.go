package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type ctxKey struct{}

// TestAttemptCtxBehavesLikeWithDeadline: whether or not anyone armed it
// (asked for Done), an attempt context answers Err, Deadline, Value and
// Cause as context.WithDeadline(parent, deadline) would, and cancels what
// was derived from it.
func TestAttemptCtxBehavesLikeWithDeadline(t *testing.T) {
	t.Parallel()
	errStop := errors.New("stop")
	tests := []struct {
		name string
		// run drives the context (and its parent's cancel) and returns the
		// error it should end with.
		run func(t *testing.T, c *attemptCtx, cancelParent context.CancelCauseFunc) (want, cause error)
	}{
		{name: "deadline passes, never armed", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			require.NoError(t, c.Err())
			time.Sleep(30 * time.Millisecond)
			require.Nil(t, c.inner, "Err does not arm")
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{name: "deadline passes while waiting on Done", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done never closed")
			}
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{name: "deadline passed before arming", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			time.Sleep(30 * time.Millisecond)
			require.ErrorIs(t, c.Err(), context.DeadlineExceeded)
			<-c.Done() // closed at once
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{name: "parent cancelled, never armed", run: func(t *testing.T, c *attemptCtx, cancel context.CancelCauseFunc) (error, error) {
			cancel(errStop)
			return context.Canceled, errStop
		}},
		{name: "parent cancelled while waiting on Done", run: func(t *testing.T, c *attemptCtx, cancel context.CancelCauseFunc) (error, error) {
			done := c.Done()
			cancel(errStop)
			<-done
			return context.Canceled, errStop
		}},
		{name: "derived contexts end with it", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			derived, stop := context.WithTimeout(c, time.Hour) // arms it, as a handler's own timeout would
			defer stop()
			fired := make(chan struct{})
			context.AfterFunc(c, func() { close(fired) })
			<-derived.Done()
			<-fired
			require.ErrorIs(t, derived.Err(), context.DeadlineExceeded)
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{name: "attempt ended, never armed", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			c.end()
			return context.Canceled, context.Canceled
		}},
		{name: "attempt ended after arming", run: func(t *testing.T, c *attemptCtx, _ context.CancelCauseFunc) (error, error) {
			done := c.Done()
			c.end()
			<-done
			return context.Canceled, context.Canceled
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
			defer cancel(nil)
			deadline := time.Now().Add(20 * time.Millisecond)
			c := newAttemptCtx(parent, deadline)
			d, ok := c.Deadline()
			require.True(t, ok)
			require.Equal(t, deadline, d)
			require.Equal(t, "v", c.Value(ctxKey{}))

			want, cause := tc.run(t, c, cancel)
			require.ErrorIs(t, c.Err(), want)
			require.ErrorIs(t, c.Err(), want, "Err does not change")
			require.ErrorIs(t, context.Cause(c), cause)
			<-c.Done()
			// Derived once it ended: derived contexts end at once.
			derived, stop := context.WithCancel(c)
			defer stop()
			<-derived.Done()
			require.ErrorIs(t, derived.Err(), want)
			fired := make(chan struct{})
			context.AfterFunc(c, func() { close(fired) })
			<-fired
			require.Equal(t, "v", c.Value(ctxKey{}))
		})
	}
}

func TestAttemptCtxParentDeadlineFirst(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pd, _ := parent.Deadline()
	c := newAttemptCtx(parent, time.Now().Add(time.Hour))
	d, ok := c.Deadline()
	require.True(t, ok)
	require.Equal(t, pd, d)
	c.end()
}

// TestWatchdogRunsOnlyWhileCallsAreInFlight: the watchdog's goroutine
// starts with the first call and stops once none is left.
func TestWatchdogRunsOnlyWhileCallsAreInFlight(t *testing.T) {
	t.Parallel()
	w := newWatchdog(5 * time.Millisecond)
	c := newAttemptCtx(context.Background(), time.Now().Add(time.Hour))
	for range 3 { // stops, and starts again with the next call
		w.add(c)
		require.True(t, w.running.Load())
		w.remove(c)
		require.Eventually(t, func() bool { return !w.running.Load() }, 5*time.Second, time.Millisecond)
	}
}

// TestWatchdogAbandons: a call is abandoned grace after its deadline, or
// after its caller's context ended; not before, and only once.
func TestWatchdogAbandons(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	w := &watchdog{grace: grace, tick: time.Hour} // driven by hand through check
	now := time.Now()
	late := newAttemptCtx(context.Background(), now.Add(time.Minute))
	parent, cancel := context.WithCancel(context.Background())
	stopped := newAttemptCtx(parent, now.Add(time.Hour))
	fine := newAttemptCtx(context.Background(), now.Add(time.Hour))
	w.running.Store(true) // as if it ran: add starts no goroutine
	for _, c := range []*attemptCtx{late, stopped, fine} {
		w.add(c)
	}
	abandoned := func(c *attemptCtx) bool {
		select {
		case r := <-c.result:
			require.True(t, r.abandoned)
			return true
		default:
			return false
		}
	}

	w.check(now.Add(time.Minute)) // late's deadline; stopped's parent still running
	cancel()
	w.check(now.Add(time.Minute + grace/2)) // stopped's parent seen ended here
	require.False(t, abandoned(late), "within the grace")
	require.False(t, abandoned(stopped))
	w.check(now.Add(time.Minute + grace))
	require.True(t, abandoned(late), "grace after the deadline")
	require.False(t, abandoned(stopped), "its grace started later")
	w.check(now.Add(time.Minute + grace/2 + grace))
	require.True(t, abandoned(stopped), "grace after its caller's context ended")
	w.check(now.Add(2 * time.Minute))
	require.False(t, abandoned(late), "abandoned once")
	require.False(t, abandoned(fine))

	require.Equal(t, 3, w.check(now))
	w.remove(stopped)
	w.remove(late)
	w.remove(fine)
	require.Zero(t, w.check(now))
}
