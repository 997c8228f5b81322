package event_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

func TestStatusesMatchPlatformEnum(t *testing.T) {
	t.Parallel()
	want := []event.Status{"pending", "processing", "completed", "failed", "retrying", "cancelled", "paused", "blocked"}
	if diff := cmp.Diff(want, event.Statuses); diff != "" {
		t.Fatalf("Statuses (-want +got):\n%s", diff)
	}
	for _, s := range event.Statuses {
		require.True(t, s.Valid(), "%s", s)
	}
	for _, s := range []event.Status{"", "Pending", "done", "pending "} {
		require.False(t, s.Valid(), "%q", s)
		require.False(t, s.Terminal(), "%q", s)
		require.False(t, s.CanTransition(s), "%q to itself", s)
		require.False(t, s.CanTransition(event.StatusPending), "%q to pending", s)
		require.False(t, event.StatusPending.CanTransition(s), "pending to %q", s)
	}
}

func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	// allowed lists, per status, every status it may move to besides itself.
	allowed := map[event.Status][]event.Status{
		event.StatusPending:    {event.StatusProcessing, event.StatusCompleted, event.StatusFailed, event.StatusRetrying, event.StatusCancelled, event.StatusPaused, event.StatusBlocked},
		event.StatusProcessing: {event.StatusCompleted, event.StatusFailed, event.StatusRetrying, event.StatusCancelled, event.StatusPending},
		event.StatusRetrying:   {event.StatusProcessing, event.StatusCompleted, event.StatusFailed, event.StatusCancelled, event.StatusPaused},
		event.StatusFailed:     {event.StatusRetrying, event.StatusProcessing, event.StatusPending, event.StatusCompleted},
		event.StatusPaused:     {event.StatusPending, event.StatusCancelled},
		event.StatusBlocked:    {event.StatusPending, event.StatusCancelled},
		event.StatusCompleted:  nil,
		event.StatusCancelled:  nil,
	}
	require.Len(t, allowed, len(event.Statuses))
	for _, from := range event.Statuses {
		ok := map[event.Status]bool{from: true} // idempotent status writes
		for _, to := range allowed[from] {
			ok[to] = true
		}
		for _, to := range event.Statuses {
			require.Equal(t, ok[to], from.CanTransition(to), "%s -> %s", from, to)
		}
		require.Equal(t, len(allowed[from]) == 0, from.Terminal(), "%s terminal", from)
	}
}

func TestPriorityRanks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p     event.Priority
		rank  int
		valid bool
	}{
		{event.PriorityLow, 0, true},
		{event.PriorityNormal, 1, true},
		{event.PriorityHigh, 2, true},
		{event.PriorityVeryHigh, 3, true},
		{event.PriorityCritical, 4, true},
		{"", -1, false},
		{"urgent", -1, false},
		{"HIGH", -1, false},
		{"very-high", -1, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.rank, tt.p.Rank(), "Rank(%q)", tt.p)
		require.Equal(t, tt.valid, tt.p.Valid(), "Valid(%q)", tt.p)
	}
	want := []event.Priority{"low", "normal", "high", "very_high", "critical"}
	if diff := cmp.Diff(want, event.Priorities); diff != "" {
		t.Fatalf("Priorities (-want +got):\n%s", diff)
	}
}
