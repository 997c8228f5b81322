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
	var b breaker

	// Successes reset the count of consecutive failures.
	for _, o := range []outcome{outcomeFailure, outcomeSuccess, outcomeFailure} {
		_, trial, ok := b.admit(now)
		require.True(t, ok)
		require.Equal(t, noTransition, b.record(o, trial, now, threshold, cooldown))
	}
	// Neutral outcomes neither count nor reset.
	require.Equal(t, noTransition, b.record(outcomeNeutral, false, now, threshold, cooldown))
	require.Equal(t, toOpen, b.record(outcomeFailure, false, now, threshold, cooldown))

	wait, _, ok := b.admit(now.Add(4 * time.Second))
	require.False(t, ok)
	require.Equal(t, 6*time.Second, wait)

	// After the cooldown exactly one trial runs; others wait for it.
	later := now.Add(cooldown)
	_, trial, ok := b.admit(later)
	require.True(t, ok)
	require.True(t, trial)
	wait, _, ok = b.admit(later)
	require.False(t, ok)
	require.Equal(t, halfOpenWait, wait)

	// A trial that never ran (rate limited) frees the slot for another.
	b.release(trial)
	_, trial, ok = b.admit(later)
	require.True(t, ok)
	require.True(t, trial)
	require.Equal(t, toClosed, b.record(outcomeSuccess, trial, later, threshold, cooldown))
	_, trial, ok = b.admit(later)
	require.True(t, ok)
	require.False(t, trial)
}
