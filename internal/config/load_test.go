package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/config"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func requireKeyError(t *testing.T, err error, key string) {
	t.Helper()
	require.ErrorIs(t, err, config.ErrInvalid)
	var ke *config.KeyError
	require.True(t, errors.As(err, &ke), "want *KeyError, got %T: %v", err, err)
	require.Equal(t, key, ke.Key, "error: %v", err)
}

func TestLoadWithoutFileGivesDefaults(t *testing.T) {
	t.Parallel()
	got, err := config.Load("", nil)
	require.NoError(t, err)
	if diff := cmp.Diff(config.Default(), got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

const yamlFile = `
redis:
  url: redis://127.0.0.1:6380/2
streams:
  prefix: ev
  partitions: 16
worker:
  group: billing-workers
  consumer: pod-1
  subscriptions: ["admin:*", "tenants:billing"]
  concurrency: 8
  block: 250ms
  claim_min_idle: 2m
  update_status: false
retry:
  max_attempts: 6
  initial_interval: 500ms
  multiplier: 1.5
  jitter: 0
handlers:
  - match: users.*
    handler: webhook
    config:
      url: https://hooks.example/users
      timeout_ms: 2500
      headers:
        x-team: identity
  - match: "*.created"
    handler: audit
log:
  level: debug
  format: console
`

func TestLoadYAMLFile(t *testing.T) {
	t.Parallel()
	got, err := config.Load(writeFile(t, "worker.yaml", yamlFile), nil)
	require.NoError(t, err)

	want := config.Default()
	want.Redis.URL = "redis://127.0.0.1:6380/2"
	want.Streams = config.Streams{Prefix: "ev", Partitions: 16}
	want.Worker.Group = "billing-workers"
	want.Worker.Consumer = "pod-1"
	want.Worker.Subscriptions = []string{"admin:*", "tenants:billing"}
	want.Worker.Concurrency = 8
	want.Worker.Block = 250 * time.Millisecond
	want.Worker.ClaimMinIdle = 2 * time.Minute
	want.Worker.UpdateStatus = false
	want.Retry.MaxAttempts = 6
	want.Retry.InitialInterval = 500 * time.Millisecond
	want.Retry.Multiplier = 1.5
	want.Retry.Jitter = 0
	want.Handlers = []config.HandlerConfig{
		{Match: "users.*", Handler: "webhook", Config: map[string]any{
			"url":        "https://hooks.example/users",
			"timeout_ms": 2500,
			"headers":    map[string]any{"x-team": "identity"},
		}},
		{Match: "*.created", Handler: "audit"},
	}
	want.Log = config.Log{Level: "debug", Format: "console"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	t.Setenv("NEO_EVENTS_WORKER_GROUP", "from-env")
	t.Setenv("NEO_EVENTS_WORKER_SUBSCRIPTIONS", "admin:*,tenants:users")
	t.Setenv("NEO_EVENTS_WORKER_BLOCK", "1500ms")
	t.Setenv("NEO_EVENTS_RETRY_MAX_INTERVAL", "90s")
	t.Setenv("NEO_EVENTS_STREAMS_PARTITIONS", "4")
	t.Setenv("NEO_EVENTS_WORKER_UPDATE_STATUS", "true")
	t.Setenv("NEO_EVENTS_REDIS_CLUSTER_ADDRS", "127.0.0.1:7000,127.0.0.1:7001")

	got, err := config.Load(writeFile(t, "worker.yaml", yamlFile), nil)
	require.NoError(t, err)
	require.Equal(t, "from-env", got.Worker.Group)
	require.Equal(t, []string{"admin:*", "tenants:users"}, got.Worker.Subscriptions)
	require.Equal(t, 1500*time.Millisecond, got.Worker.Block)
	require.Equal(t, 90*time.Second, got.Retry.MaxInterval)
	require.Equal(t, 4, got.Streams.Partitions)
	require.True(t, got.Worker.UpdateStatus)
	require.Equal(t, []string{"127.0.0.1:7000", "127.0.0.1:7001"}, got.Redis.ClusterAddrs)
	require.Equal(t, "pod-1", got.Worker.Consumer, "file value kept where env is silent")
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	t.Setenv("NEO_EVENTS_WORKER_GROUP", "from-env")
	t.Setenv("NEO_EVENTS_WORKER_CONCURRENCY", "5")

	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.String("worker.group", "flag-default", "consumer group")
	fs.Int("worker.concurrency", 99, "events in flight")
	fs.Duration("worker.block", time.Second, "XREADGROUP block")
	fs.StringSlice("worker.subscriptions", nil, "subscriptions")
	fs.String("config", "", "not a config key: ignored")
	require.NoError(t, fs.Parse([]string{
		"--worker.group=from-flag", "--worker.block=3s", "--worker.subscriptions=tenants:users,admin:*",
		"--config=/dev/null",
	}))

	got, err := config.Load(writeFile(t, "worker.yaml", yamlFile), fs)
	require.NoError(t, err)
	require.Equal(t, "from-flag", got.Worker.Group, "a set flag beats env")
	require.Equal(t, 5, got.Worker.Concurrency, "an unset flag's default does not beat env")
	require.Equal(t, 3*time.Second, got.Worker.Block)
	require.Equal(t, []string{"tenants:users", "admin:*"}, got.Worker.Subscriptions)
}

func TestLoadRefusesInvalidValuesNamingTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		key  string
	}{
		{"unknown top-level key", "bogus: 1\n", nil, "bogus"},
		{"unknown nested key", "worker:\n  group: g\n  concurrncy: 4\n", nil, "worker.concurrncy"},
		{"unknown handler key", "handlers:\n  - match: users.*\n    handler: webhook\n    matcher: x\n", nil, "handlers[0].matcher"},
		{"not an int", "worker:\n  concurrency: lots\n", nil, "worker.concurrency"},
		{"not a duration", "worker:\n  block: soon\n", nil, "worker.block"},
		{"env not a duration", "", map[string]string{"NEO_EVENTS_WORKER_CLAIM_INTERVAL": "fast"}, "worker.claim_interval"},
		{"env bad subscription", "", map[string]string{"NEO_EVENTS_WORKER_SUBSCRIPTIONS": "admin:*,public:x"}, "worker.subscriptions"},
		{"valid type, invalid value", "streams:\n  partitions: 0\n", nil, "streams.partitions"},
		{"bad handler pattern", "handlers:\n  - match: users\n    handler: webhook\n", nil, "handlers[0].match"},
		{"section is a scalar", "worker: 3\n", nil, "worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := config.Load(writeFile(t, "c.yaml", tt.file), nil)
			requireKeyError(t, err, tt.key)
		})
	}
}

func TestLoadNamesEveryUnknownKey(t *testing.T) {
	t.Parallel()
	_, err := config.Load(writeFile(t, "c.yaml", "worker:\n  a: 1\n  b: 2\nzz: 3\n"), nil)
	requireKeyError(t, err, "worker.a")
	for _, k := range []string{"worker.b", "zz"} {
		require.Contains(t, err.Error(), k)
	}
}

func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorContains(t, err, "missing.yaml")

	_, err = config.Load(writeFile(t, "broken.yaml", "worker: [\n"), nil)
	require.ErrorContains(t, err, "broken.yaml")
}

func TestKeysCoverEveryScalar(t *testing.T) {
	t.Parallel()
	keys := config.Keys()
	slices.Sort(keys)
	for _, k := range []string{"redis.url", "worker.group", "worker.subscriptions", "retry.jitter", "log.format", "outbox.min_age"} {
		_, found := slices.BinarySearch(keys, k)
		require.True(t, found, "%s missing from Keys()", k)
	}
	require.NotContains(t, keys, "handlers", "handlers come from the file only")
}
