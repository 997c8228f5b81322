package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no mode", nil, exitUsage, "--mode"},
		{"unknown mode", []string{"--mode", "turbo"}, exitUsage, "--mode"},
		{"unknown flag", []string{"--mode", "e2e", "--speed", "9"}, exitUsage, "speed"},
		{"stray argument", []string{"--mode", "e2e", "extra"}, exitUsage, "unexpected"},
		{"stray argument after mode", []string{"e2e", "--events", "5", "extra"}, exitUsage, "unexpected"},
		{"hostile database", []string{"publish", "--database", "x;drop"}, exitUsage, "--database"},
		{"bad pprof address", []string{"publish", "--pprof-addr", "no-port"}, exitUsage, "pprof-addr"},
		{"help", []string{"-h"}, exitOK, "-baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tu.Context(t), tt.args, &out, &errOut)
			require.Equal(t, tt.code, code, errOut.String())
			require.Contains(t, errOut.String(), tt.msg)
			require.Empty(t, out.String())
		})
	}
}

func TestServePprof(t *testing.T) {
	addr, stop, err := servePprof("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "heap profile")
}

func runJSON(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--json", "--postgres-url", tu.DatabaseURL(), "--redis-url", tu.RedisURL())
	code := run(tu.Context(t), args, &out, &errOut)
	require.Equal(t, 1, strings.Count(out.String(), "\n"), "exactly one JSON line on stdout: %q", out.String())
	var obj map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &obj))
	return code, obj, errOut.String()
}

func TestE2EJSONReport(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	code, obj, stderr := runJSON(t, "--mode", "e2e", "--events", "200", "--publishers", "8", "--quiet")
	require.Equal(t, exitOK, code, stderr)
	for _, k := range []string{"published", "published_per_sec", "processed", "processed_per_sec", "lost", "duplicates",
		"publish_latency_ms", "end_to_end_latency_ms", "mode", "config"} {
		require.Contains(t, obj, k)
	}
	require.EqualValues(t, 200, obj["published"])
	require.EqualValues(t, 200, obj["processed"])
	require.EqualValues(t, 0, obj["lost"])
	require.Contains(t, obj["end_to_end_latency_ms"], "p99")
}

func TestInjectedLossFailsTheRun(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	code, obj, stderr := runJSON(t, "e2e", "--events", "200", "--publishers", "8", "--inject-lost", "1", "--drain-timeout", "10s")
	require.Equal(t, exitFailed, code, stderr)
	require.EqualValues(t, 1, obj["lost"])
	require.Equal(t, false, obj["ok"])
	require.Contains(t, stderr, "FAILED")
	require.Contains(t, stderr, "published", "progress lines go to stderr")
}
