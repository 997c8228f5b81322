package event_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

func TestValidateSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
		valid  bool
	}{
		{"admin", "admin", true},
		{"tenant", "tenant_acme", true},
		{"digits and underscores", "tenant_acme_2024__x", true},
		{"one char slug", "tenant_a", true},
		{"slug of 50", "tenant_" + strings.Repeat("a", 50), true},
		{"slug of 51", "tenant_" + strings.Repeat("a", 51), false},
		{"empty", "", false},
		{"prefix only", "tenant_", false},
		{"template", "tenant_template", false},
		{"public", "public", false},
		{"pg_catalog", "pg_catalog", false},
		{"information_schema", "information_schema", false},
		{"platform_common", "platform_common", false},
		{"upper admin", "ADMIN", false},
		{"upper tenant", "tenant_Acme", false},
		{"upper prefix", "TENANT_acme", false},
		{"double quote", `tenant_a"b`, false},
		{"quote breakout", `tenant_a"; DROP SCHEMA admin CASCADE; --`, false},
		{"single quote", "tenant_a'b", false},
		{"semicolon", "tenant_a;b", false},
		{"space", "tenant_a b", false},
		{"trailing space", "admin ", false},
		{"leading space", " admin", false},
		{"newline", "tenant_a\n", false},
		{"NUL byte", "tenant_a\x00", false},
		{"NUL in admin", "admin\x00", false},
		{"dot", "tenant_a.events", false},
		{"hyphen", "tenant_a-b", false},
		{"unicode", "tenant_café", false},
		{"unicode lookalike", "tenant_аcme", false}, // Cyrillic а
		{"no prefix", "acme", false},
		{"admin with suffix", "admin_x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := event.ValidateSchema(tt.schema)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, event.ErrInvalidSchema)
		})
	}
}

func TestValidateSlugAndTenantSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slug  string
		valid bool
	}{
		{"acme", true},
		{"a", true},
		{"0", true},
		{"acme_corp_2", true},
		{strings.Repeat("z", 50), true},
		{strings.Repeat("z", 51), false},
		{"", false},
		{"template", false},
		{"Acme", false},
		{"acme-corp", false},
		{"acme corp", false},
		{"acme;", false},
		{`ac"me`, false},
		{"ac\x00me", false},
		{"café", false},
	}
	for _, tt := range tests {
		t.Run(tt.slug, func(t *testing.T) {
			t.Parallel()
			schema, err := event.TenantSchema(tt.slug)
			require.Equal(t, err, event.ValidateSlug(tt.slug))
			if !tt.valid {
				require.ErrorIs(t, err, event.ErrInvalidSchema)
				require.Empty(t, schema)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "tenant_"+tt.slug, schema)
			require.NoError(t, event.ValidateSchema(schema))
		})
	}
}

func TestValidateSchemaErrorIsReadableAndBounded(t *testing.T) {
	t.Parallel()
	err := event.ValidateSchema("tenant_" + strings.Repeat("x", 5000))
	require.ErrorIs(t, err, event.ErrInvalidSchema)
	require.Less(t, len(err.Error()), 300, "hostile input must not be echoed in full")
	require.Contains(t, err.Error(), "longer than 50")
}

func TestScopeOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, "admin", event.ScopeOf("admin"))
	require.Equal(t, "tenants", event.ScopeOf("tenant_acme"))
}

func TestQuoteIdent(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"admin", `"admin"`},
		{"tenant_acme", `"tenant_acme"`},
		{"", `""`},
		{`a"b`, `"a""b"`},
		{`"; DROP TABLE x; --`, `"""; DROP TABLE x; --"`},
		{`""`, `""""""`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, event.QuoteIdent(tt.in), "QuoteIdent(%q)", tt.in)
	}
}
