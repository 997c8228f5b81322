package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/testutil"
)

func TestDemoVerbRefusesBadUsage(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	// Usage errors must not need a database: this URL points nowhere.
	const nowhere = "postgres://postgres@127.0.0.1:1/none_demo?sslmode=disable&connect_timeout=1"
	cases := []struct {
		name     string
		args     []string
		stderrIn string
	}{
		{"no subcommand", []string{"demo"}, "needs one subcommand"},
		{"unknown subcommand", []string{"demo", "explode"}, `unknown demo subcommand "explode"`},
		{"two subcommands", []string{"demo", "setup", "run"}, "needs one subcommand"},
		{"no events", []string{"demo", "run", "--events", "0"}, "--events 0"},
		{"bad timeout", []string{"demo", "run", "--timeout", "-1s"}, "--timeout must be positive"},
		{"webhook not loopback", []string{"demo", "setup", "--webhook-addr", "10.1.2.3:80"}, "loopback"},
	}
	for _, c := range cases {
		code, _, errOut := eventsctl(t, ctx, nowhere, c.args...)
		require.Equal(t, exitUsage, code, "%s: %s", c.name, errOut)
		require.Contains(t, errOut, c.stderrIn, c.name)
	}
}

// TestDemoVerbRefusesARealDatabase: setup --reset and run only touch a
// database whose name says it is a demo.
func TestDemoVerbRefusesARealDatabase(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	db := testutil.NewDatabase(t) // neo_test_...
	for _, args := range [][]string{{"demo", "setup", "--reset"}, {"demo", "setup"}, {"demo", "run", "--events", "1"}} {
		code, out, errOut := eventsctl(t, ctx, db, append(args, "--streams.prefix", "demo_t")...)
		require.Equal(t, exitFailure, code, "%v: %s", args, errOut)
		require.Contains(t, errOut, `refusing to touch a database whose name does not contain "demo"`, "%v", args)
		require.Empty(t, out)
	}
	code, out, errOut := eventsctl(t, ctx, db, "tenants", "list")
	require.Equal(t, exitOK, code, errOut)
	require.Empty(t, out, "nothing was set up")
}
