package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// eventsctl runs the CLI in-process against dbURL.
func eventsctl(t *testing.T, ctx context.Context, dbURL string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--postgres.url", dbURL}, args...)
	code = run(ctx, full, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMigrateAndTenantsVerbs(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	db := testutil.NewDatabase(t)

	code, out, errOut := eventsctl(t, ctx, db, "migrate")
	require.Equal(t, 0, code, errOut)
	for _, v := range store.Versions() {
		require.Contains(t, out, "applied "+v+"\n")
	}

	code, out, errOut = eventsctl(t, ctx, db, "migrate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "up to date")

	steps := []struct {
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{[]string{"tenants", "list"}, 0, "", ""},
		{[]string{"tenants", "create", "acme"}, 0, "created tenant_acme\n", ""},
		{[]string{"tenants", "create", "beta_2"}, 0, "created tenant_beta_2\n", ""},
		{[]string{"tenants", "create", "acme"}, 1, "", "already exists"},
		{[]string{"tenants", "list"}, 0, "tenant_acme\ntenant_beta_2\n", ""},
		// Flags may come after the verb too.
		{[]string{"tenants", "list", "--log.level", "error"}, 0, "tenant_acme\ntenant_beta_2\n", ""},
	}
	for _, s := range steps {
		code, out, errOut := eventsctl(t, ctx, db, s.args...)
		require.Equal(t, s.code, code, "%v: %s", s.args, errOut)
		require.Equal(t, s.stdout, out, "%v", s.args)
		require.Contains(t, errOut, s.stderrIn, "%v", s.args)
	}
}

func TestUsageErrors(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	// Usage errors must not need a database: this URL points nowhere.
	const nowhere = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	cases := []struct {
		name     string
		args     []string
		code     int
		stderrIn string
	}{
		{"no command", nil, 2, "Commands:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"migrate", "--nope"}, 2, "unknown flag"},
		{"migrate args", []string{"migrate", "now"}, 2, "takes no arguments"},
		{"tenants alone", []string{"tenants"}, 2, "needs a subcommand"},
		{"tenants bad sub", []string{"tenants", "drop", "x"}, 2, "unknown tenants subcommand"},
		{"create no slug", []string{"tenants", "create"}, 2, "exactly one slug"},
		{"hostile slug", []string{"tenants", "create", `x"; DROP SCHEMA admin; --`}, 2, "invalid schema name"},
		{"upper slug", []string{"tenants", "create", "ACME"}, 2, "may contain only"},
		{"bad config value", []string{"--log.level", "loud", "migrate"}, 2, "log.level"},
		{"database down", []string{"migrate"}, 1, "connect to PostgreSQL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := eventsctl(t, ctx, nowhere, tc.args...)
			require.Equal(t, tc.code, code, errOut)
			require.Contains(t, errOut, tc.stderrIn)
		})
	}

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"--help"}, &out, &errOut))
	require.Contains(t, errOut.String(), "migrate")
	out.Reset()
	require.Equal(t, 0, run(ctx, []string{"tenants", "--help"}, &out, &errOut))
	require.True(t, strings.Contains(out.String(), "eventsctl tenants create <slug>"), out.String())
}

func TestMigrateTune(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	db := testutil.NewDatabase(t)
	code, out, errOut := eventsctl(t, ctx, db, "migrate", "--tune")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "dropped index admin.events_status_priority_idx")
	require.Contains(t, out, fmt.Sprintf("set fillfactor %d on tenant_template.events", store.TunedFillfactor))
	code, out, errOut = eventsctl(t, ctx, db, "migrate", "--tune")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "up to date")
	require.Contains(t, out, "tuning already applied")
	require.False(t, strings.Contains(out, "dropped"), out)
}
