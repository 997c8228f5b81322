package event_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, eventType string
		match              bool
	}{
		{"*", "users.created", true},
		{"*", "billing.invoice_paid", true},
		{"*", "users", false},
		{"*", "", false},
		{"*", "users.created.extra", false},
		{"*", "Users.created", false},
		{"users.*", "users.created", true},
		{"users.*", "users.deleted", true},
		{"users.*", "user.created", false},
		{"users.*", "users_x.created", false},
		{"users.*", "orders.created", false},
		{"users.*", "users.created.v2", false},
		{"*.created", "users.created", true},
		{"*.created", "orders.created", true},
		{"*.created", "users.deleted", false},
		{"*.created", "users.created_x", false},
		{"users.created", "users.created", true},
		{"users.created", "users.deleted", false},
		{"users.created", "orders.created", false},
		{"users.created", "users.created ", false},
		{"users.created", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.eventType, func(t *testing.T) {
			t.Parallel()
			p, err := event.ParsePattern(tt.pattern)
			require.NoError(t, err)
			require.Equal(t, tt.pattern, p.String())
			require.Equal(t, tt.match, p.Match(tt.eventType))
			require.Equal(t, tt.match, event.MatchPattern(tt.pattern, tt.eventType))
		})
	}
}

func TestParsePatternRefusesMalformed(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "**", "*.*", "users", "users.", ".created", "users.**", "**.created",
		"users.created.x", "users.*.x", "Users.*", "*.Created", "users.cre*", "u*.created",
		"users .created", "users.created ", " *", "users.crèated", "users.\x00", "?.created",
		"users/created", "users:created",
	} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			p, err := event.ParsePattern(s)
			require.ErrorIs(t, err, event.ErrInvalid)
			require.Equal(t, event.Pattern{}, p)
			require.False(t, p.Match("users.created"), "zero Pattern matches nothing")
			require.False(t, event.MatchPattern(s, "users.created"))
		})
	}
}

func TestMustPattern(t *testing.T) {
	t.Parallel()
	require.True(t, event.MustPattern("users.*").Match("users.created"))
	require.Panics(t, func() { event.MustPattern("users") })
}
