package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBreakerStates(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const threshold, cooldown = 2, 10 * time.Second
	b := newBreaker()
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }

	// Successes reset the count of consecutive failures.
	for _, o := range []outcome{outcomeFailure, outcomeSuccess, outcomeFailure} {
		_, trial, ok := b.admit(at(now))
		require.True(t, ok)
		require.Equal(t, noTransition, b.record(o, trial, now, threshold, cooldown))
	}
	// Neutral outcomes neither count nor reset.
	require.Equal(t, noTransition, b.record(outcomeNeutral, false, now, threshold, cooldown))
	require.Equal(t, toOpen, b.record(outcomeFailure, false, now, threshold, cooldown))

	wait, _, ok := b.admit(at(now.Add(4 * time.Second)))
	require.False(t, ok)
	require.Equal(t, 6*time.Second, wait)

	// After the cooldown exactly one trial runs; others wait for it.
	later := now.Add(cooldown)
	_, trial, ok := b.admit(at(later))
	require.True(t, ok)
	require.True(t, trial)
	wait, _, ok = b.admit(at(later))
	require.False(t, ok)
	require.Equal(t, halfOpenWait, wait)

	// A trial that never ran (rate limited) frees the slot for another.
	b.release(trial)
	_, trial, ok = b.admit(at(later))
	require.True(t, ok)
	require.True(t, trial)
	require.Equal(t, toClosed, b.record(outcomeSuccess, trial, later, threshold, cooldown))
	_, trial, ok = b.admit(at(later))
	require.True(t, ok)
	require.False(t, trial)
	require.True(t, b.clean.Load(), "closed without failures: calls pass without the lock")

	// The lock-free paths see what the locked ones did.
	require.Equal(t, noTransition, b.record(outcomeFailure, false, later, threshold, cooldown))
	require.False(t, b.clean.Load())
	require.True(t, b.closed.Load())
	require.Equal(t, noTransition, b.record(outcomeSuccess, false, later, threshold, cooldown))
	require.True(t, b.clean.Load(), "a success resets the failures")
	require.Equal(t, noTransition, b.record(outcomeFailure, false, later, threshold, cooldown))
	require.Equal(t, toOpen, b.record(outcomeFailure, false, later, threshold, cooldown))
	require.False(t, b.closed.Load())
	_, _, ok = b.admit(at(later))
	require.False(t, ok, "open: the fast path does not let calls through")
	require.Equal(t, toClosed, b.record(outcomeSuccess, false, later, threshold, cooldown),
		"a success of a call admitted before the breaker opened closes it, as before")
	require.True(t, b.clean.Load())
}
