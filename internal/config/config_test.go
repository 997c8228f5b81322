package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/config"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	c := config.Default()
	require.NoError(t, c.Validate())
	require.Equal(t, "events", c.Streams.Prefix)
	require.Equal(t, 8, c.Streams.Partitions)
	require.Equal(t, []string{"admin:*", "tenants:*"}, c.Worker.Subscriptions)
	require.Equal(t, 4, c.Retry.MaxAttempts, "one attempt plus DESIGN's 3 retries")
	require.True(t, c.Worker.UpdateStatus)
	require.NotEmpty(t, c.Worker.Consumer, "defaults to the hostname")
}

func TestValidateNamesTheBadKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key    string
		mutate func(*config.Config)
	}{
		{"redis.url", func(c *config.Config) { c.Redis.URL = "" }},
		{"redis.url", func(c *config.Config) { c.Redis.URL = "http://localhost:6379" }},
		{"redis.url", func(c *config.Config) { c.Redis.URL = "redis://[::1" }},
		{"redis.cluster_addrs", func(c *config.Config) { c.Redis.ClusterAddrs = []string{"127.0.0.1:7000", "nohost"} }},
		{"postgres.url", func(c *config.Config) { c.Postgres.URL = "mysql://x" }},
		{"postgres.url", func(c *config.Config) { c.Postgres.URL = "" }},
		{"streams.prefix", func(c *config.Config) { c.Streams.Prefix = "" }},
		{"streams.prefix", func(c *config.Config) { c.Streams.Prefix = "a:b" }},
		{"streams.prefix", func(c *config.Config) { c.Streams.Prefix = "{events}" }},
		{"streams.prefix", func(c *config.Config) { c.Streams.Prefix = "ev*" }},
		{"streams.prefix", func(c *config.Config) { c.Streams.Prefix = "my events" }},
		{"streams.partitions", func(c *config.Config) { c.Streams.Partitions = 0 }},
		{"streams.partitions", func(c *config.Config) { c.Streams.Partitions = -3 }},
		{"streams.partitions", func(c *config.Config) { c.Streams.Partitions = 1025 }},
		{"worker.group", func(c *config.Config) { c.Worker.Group = "" }},
		{"worker.group", func(c *config.Config) { c.Worker.Group = "a:b" }},
		{"worker.consumer", func(c *config.Config) { c.Worker.Consumer = "" }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = nil }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = []string{"admin"} }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = []string{"public:*"} }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = []string{"admin:Users"} }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = []string{"admin:"} }},
		{"worker.subscriptions", func(c *config.Config) { c.Worker.Subscriptions = []string{"admin:*", " tenants:users"} }},
		{"worker.concurrency", func(c *config.Config) { c.Worker.Concurrency = 0 }},
		{"worker.batch_size", func(c *config.Config) { c.Worker.BatchSize = 100001 }},
		{"worker.block", func(c *config.Config) { c.Worker.Block = 0 }},
		{"worker.claim_min_idle", func(c *config.Config) { c.Worker.ClaimMinIdle = 500 * time.Millisecond }},
		{"worker.claim_interval", func(c *config.Config) { c.Worker.ClaimInterval = time.Millisecond }},
		{"worker.shutdown_timeout", func(c *config.Config) { c.Worker.ShutdownTimeout = -time.Second }},
		{"retry.max_attempts", func(c *config.Config) { c.Retry.MaxAttempts = 0 }},
		{"retry.initial_interval", func(c *config.Config) { c.Retry.InitialInterval = 0 }},
		{"retry.multiplier", func(c *config.Config) { c.Retry.Multiplier = 0.5 }},
		{"retry.max_interval", func(c *config.Config) { c.Retry.MaxInterval = 500 * time.Millisecond }},
		{"retry.jitter", func(c *config.Config) { c.Retry.Jitter = 1 }},
		{"retry.jitter", func(c *config.Config) { c.Retry.Jitter = -0.1 }},
		{"handlers[1].match", func(c *config.Config) {
			c.Handlers = []config.HandlerConfig{{Match: "*", Handler: "webhook"}, {Match: "users", Handler: "webhook"}}
		}},
		{"handlers[0].handler", func(c *config.Config) { c.Handlers = []config.HandlerConfig{{Match: "users.*"}} }},
		{"log.level", func(c *config.Config) { c.Log.Level = "verbose" }},
		{"log.format", func(c *config.Config) { c.Log.Format = "xml" }},
		{"outbox.interval", func(c *config.Config) { c.Outbox.Interval = 0 }},
		{"outbox.min_age", func(c *config.Config) { c.Outbox.MinAge = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			err := c.Validate()
			require.ErrorIs(t, err, config.ErrInvalid)
			var ke *config.KeyError
			require.True(t, errors.As(err, &ke), "want *KeyError, got %T: %v", err, err)
			require.Equal(t, tt.key, ke.Key, "error: %v", err)
			require.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestValidateAcceptsAlternatives(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"rediss", func(c *config.Config) { c.Redis.URL = "rediss://user:pw@redis.example:6380/1" }},
		{"unix socket", func(c *config.Config) { c.Redis.URL = "unix:///run/redis.sock" }},
		{"cluster replaces url", func(c *config.Config) {
			c.Redis.URL = ""
			c.Redis.ClusterAddrs = []string{"127.0.0.1:7000", "127.0.0.1:7001"}
		}},
		{"postgresql scheme", func(c *config.Config) { c.Postgres.URL = "postgresql://u@h/db" }},
		{"every subscription form", func(c *config.Config) {
			c.Worker.Subscriptions = []string{"admin:*", "tenants:users", "*:billing_x", "*:*"}
		}},
		{"handlers", func(c *config.Config) {
			c.Handlers = []config.HandlerConfig{{Match: "users.*", Handler: "webhook", Config: map[string]any{"url": "http://x"}}}
		}},
		{"no jitter", func(c *config.Config) { c.Retry.Jitter = 0 }},
		{"http disabled", func(c *config.Config) { c.HTTP.Addr = "" }},
		{"console debug", func(c *config.Config) { c.Log.Level, c.Log.Format = "debug", "console" }},
		{"min_age zero", func(c *config.Config) { c.Outbox.MinAge = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			require.NoError(t, c.Validate())
		})
	}
}

func TestValidateSubscription(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		valid bool
	}{
		{"admin:*", true},
		{"tenants:users", true},
		{"*:*", true},
		{"*:users", true},
		{"admin", false},
		{":users", false},
		{"admin:", false},
		{"tenant:users", false},
		{"admin:users:1", false},
		{"admin:Users", false},
		{"admin:us*", false},
		{"", false},
	}
	for _, tt := range tests {
		err := config.ValidateSubscription(tt.in)
		if tt.valid {
			require.NoError(t, err, "%q", tt.in)
		} else {
			require.Error(t, err, "%q", tt.in)
		}
	}
}
