// Package config is the one configuration struct of neo-events (DESIGN §4),
// its documented defaults, its validation, and the viper loading that fills it
// from a file, then `NEO_EVENTS_<SECTION>_<KEY>` environment variables, then
// flags. Only this package and cmd/ know about viper.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/neo-events/neo-events/event"
)

// Defaults. Every field of Config documents the default it gets.
const (
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultPostgresURL     = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultPrefix          = "events"
	DefaultPartitions      = 8
	DefaultGroup           = "neo-events-workers"
	DefaultConcurrency     = 256
	DefaultBatchSize       = 256
	DefaultBlock           = 2 * time.Second
	DefaultClaimMinIdle    = 60 * time.Second
	DefaultClaimInterval   = 10 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxAttempts     = 4 // one attempt plus DESIGN's default of 3 retries
	DefaultInitialInterval = time.Second
	DefaultMultiplier      = 2.0
	DefaultMaxInterval     = 5 * time.Minute
	DefaultJitter          = 0.2
	DefaultHTTPAddr        = ":9090"
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "json"
	DefaultOutboxInterval  = 5 * time.Second
	DefaultOutboxMinAge    = 10 * time.Second
)

// Config is everything a neo-events binary can be told.
type Config struct {
	Redis     Redis           `mapstructure:"redis"`
	Postgres  Postgres        `mapstructure:"postgres"`
	Streams   Streams         `mapstructure:"streams"`
	Worker    Worker          `mapstructure:"worker"`
	Retry     Retry           `mapstructure:"retry"`
	Handlers  []HandlerConfig `mapstructure:"handlers"`
	HTTP      HTTP            `mapstructure:"http"`
	Log       Log             `mapstructure:"log"`
	Publisher Publisher       `mapstructure:"publisher"`
	Outbox    Outbox          `mapstructure:"outbox"`
}

// Redis says where the streams live.
type Redis struct {
	// URL of a single Redis (redis:// or rediss://). Defaults to DefaultRedisURL.
	URL string `mapstructure:"url"`
	// ClusterAddrs, when set, selects Redis Cluster mode with these seed
	// addresses (host:port) instead of URL. Defaults to empty.
	ClusterAddrs []string `mapstructure:"cluster_addrs"`
}

// Postgres says where the event record lives.
type Postgres struct {
	// URL is a libpq/pgx connection URL. Defaults to DefaultPostgresURL.
	URL string `mapstructure:"url"`
}

// Streams shapes the stream keys (DESIGN §2).
type Streams struct {
	// Prefix of every key. Defaults to "events".
	Prefix string `mapstructure:"prefix"`
	// Partitions per (scope, category). Defaults to 8. Changing it moves
	// aggregates to other partitions: drain the streams first.
	Partitions int `mapstructure:"partitions"`
}

// Worker configures one fleet member (DESIGN §3).
type Worker struct {
	// Group is the consumer group, one per Deployment. Defaults to DefaultGroup.
	Group string `mapstructure:"group"`
	// Consumer is this process's name in the group. Defaults to the
	// hostname (the pod name on Kubernetes).
	Consumer string `mapstructure:"consumer"`
	// Subscriptions are `<scope>:<category>` patterns with `*` for any
	// part, resolved against the `{prefix}:streams` set. Defaults to
	// ["admin:*", "tenants:*"].
	Subscriptions []string `mapstructure:"subscriptions"`
	// Concurrency bounds the events whose handlers run at once in this
	// process. Defaults to 256. Events whose handlers are done wait for
	// their status write in 4 × Concurrency further slots, which bound how
	// many status writes one flush can merge.
	Concurrency int `mapstructure:"concurrency"`
	// BatchSize is the COUNT of one XREADGROUP or XAUTOCLAIM. Defaults to 256.
	BatchSize int `mapstructure:"batch_size"`
	// Block is how long one XREADGROUP waits for new entries. Defaults to 2s.
	Block time.Duration `mapstructure:"block"`
	// ClaimMinIdle is how long an entry stays pending with another consumer
	// before this one reclaims it. Defaults to 60s; keep it above the longest
	// handler timeout.
	ClaimMinIdle time.Duration `mapstructure:"claim_min_idle"`
	// ClaimInterval is how often XAUTOCLAIM runs. Defaults to 10s.
	ClaimInterval time.Duration `mapstructure:"claim_interval"`
	// ShutdownTimeout bounds the drain after SIGTERM. Defaults to 30s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// UpdateStatus writes statuses and executions to Postgres. Defaults to true.
	UpdateStatus bool `mapstructure:"update_status"`
}

// Retry is the fallback retry policy, used when neither the action's
// retry_policy nor the event's max_retries says otherwise.
type Retry struct {
	// MaxAttempts counts every attempt, the first included. Defaults to 4.
	MaxAttempts int `mapstructure:"max_attempts"`
	// InitialInterval is the delay before the first retry. Defaults to 1s.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	// Multiplier grows the delay per retry. Defaults to 2.
	Multiplier float64 `mapstructure:"multiplier"`
	// MaxInterval caps one delay. Defaults to 5m.
	MaxInterval time.Duration `mapstructure:"max_interval"`
	// Jitter is the randomization factor in [0,1): a delay d becomes a
	// uniform value in [d(1-j), d(1+j)]. Defaults to 0.2.
	Jitter float64 `mapstructure:"jitter"`
}

// HandlerConfig binds a registered handler to an event pattern in config,
// without an `actions` row.
type HandlerConfig struct {
	// Match is an event pattern: `*`, `users.*`, `*.created` or exact.
	Match string `mapstructure:"match"`
	// Handler is the registered handler name, such as `webhook`.
	Handler string `mapstructure:"handler"`
	// Config is handed to the handler as the action's config.
	Config map[string]any `mapstructure:"config"`
}

// HTTP is the operations endpoint.
type HTTP struct {
	// Addr serves /metrics, /healthz and /readyz. Defaults to ":9090";
	// empty disables it.
	Addr string `mapstructure:"addr"`
	// Pprof also serves Go's profiles (net/http/pprof) under /debug/pprof/
	// on Addr. Off by default: turn it on to take a heap or CPU profile of a
	// running worker (go tool pprof http://ADDR/debug/pprof/heap), and keep
	// Addr unreachable from outside the pod while it is on.
	Pprof bool `mapstructure:"pprof"`
}

// Log configures zap.
type Log struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string `mapstructure:"level"`
	// Format is json (production) or console (humans). Defaults to json.
	Format string `mapstructure:"format"`
}

// Publisher configures the publishing side.
type Publisher struct {
	// Notify also sends each event on the `{prefix}:notifications` Pub/Sub
	// channel. Defaults to false.
	Notify bool `mapstructure:"notify"`
}

// Outbox configures the relay that re-publishes committed rows that never
// reached a stream.
type Outbox struct {
	// Interval between relay passes. Defaults to 5s.
	Interval time.Duration `mapstructure:"interval"`
	// MinAge is how old an unpublished row must be before the relay takes
	// it, so it does not race a publisher that is about to XADD. Defaults to 10s.
	MinAge time.Duration `mapstructure:"min_age"`
}

// Default returns a Config with every default applied.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Redis:    Redis{URL: DefaultRedisURL},
		Postgres: Postgres{URL: DefaultPostgresURL},
		Streams:  Streams{Prefix: DefaultPrefix, Partitions: DefaultPartitions},
		Worker: Worker{
			Group:           DefaultGroup,
			Consumer:        host,
			Subscriptions:   []string{"admin:*", "tenants:*"},
			Concurrency:     DefaultConcurrency,
			BatchSize:       DefaultBatchSize,
			Block:           DefaultBlock,
			ClaimMinIdle:    DefaultClaimMinIdle,
			ClaimInterval:   DefaultClaimInterval,
			ShutdownTimeout: DefaultShutdownTimeout,
			UpdateStatus:    true,
		},
		Retry: Retry{
			MaxAttempts:     DefaultMaxAttempts,
			InitialInterval: DefaultInitialInterval,
			Multiplier:      DefaultMultiplier,
			MaxInterval:     DefaultMaxInterval,
			Jitter:          DefaultJitter,
		},
		HTTP:   HTTP{Addr: DefaultHTTPAddr},
		Log:    Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Outbox: Outbox{Interval: DefaultOutboxInterval, MinAge: DefaultOutboxMinAge},
	}
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// KeyError names the configuration key that is wrong.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string { return fmt.Sprintf("config %s: %s", e.Key, e.Reason) }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *KeyError) Unwrap() error { return ErrInvalid }

func bad(key, format string, args ...any) error {
	return &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every value and returns a *KeyError naming the first bad key.
func (c Config) Validate() error {
	checks := []func() error{
		func() error {
			if len(c.Redis.ClusterAddrs) > 0 {
				for _, a := range c.Redis.ClusterAddrs {
					if !strings.Contains(a, ":") {
						return bad("redis.cluster_addrs", "%q is not host:port", a)
					}
				}
				return nil
			}
			return checkURL("redis.url", c.Redis.URL, "redis", "rediss", "unix")
		},
		func() error { return checkURL("postgres.url", c.Postgres.URL, "postgres", "postgresql") },
		func() error {
			if c.Streams.Prefix == "" || strings.ContainsAny(c.Streams.Prefix, ":{} \t\n*?[]") {
				return bad("streams.prefix", "%q must be non-empty without ':', braces, spaces or glob characters", c.Streams.Prefix)
			}
			return nil
		},
		func() error { return positive("streams.partitions", c.Streams.Partitions, 1024) },
		func() error {
			if c.Worker.Group == "" || strings.ContainsAny(c.Worker.Group, ": \t\n") {
				return bad("worker.group", "%q must be non-empty without ':' or spaces", c.Worker.Group)
			}
			return nil
		},
		func() error {
			if c.Worker.Consumer == "" {
				return bad("worker.consumer", "empty: set it, or let it default to the hostname")
			}
			return nil
		},
		func() error {
			if len(c.Worker.Subscriptions) == 0 {
				return bad("worker.subscriptions", "empty: a worker must subscribe to something, e.g. [\"admin:*\", \"tenants:*\"]")
			}
			for _, s := range c.Worker.Subscriptions {
				if err := ValidateSubscription(s); err != nil {
					return bad("worker.subscriptions", "%v", err)
				}
			}
			return nil
		},
		func() error { return positive("worker.concurrency", c.Worker.Concurrency, 100000) },
		func() error { return positive("worker.batch_size", c.Worker.BatchSize, 100000) },
		func() error { return duration("worker.block", c.Worker.Block, time.Millisecond) },
		func() error { return duration("worker.claim_min_idle", c.Worker.ClaimMinIdle, time.Second) },
		func() error { return duration("worker.claim_interval", c.Worker.ClaimInterval, 10*time.Millisecond) },
		func() error { return duration("worker.shutdown_timeout", c.Worker.ShutdownTimeout, time.Second) },
		func() error { return positive("retry.max_attempts", c.Retry.MaxAttempts, 1000) },
		func() error { return duration("retry.initial_interval", c.Retry.InitialInterval, time.Millisecond) },
		func() error {
			if c.Retry.Multiplier < 1 {
				return bad("retry.multiplier", "must be >= 1, got %g", c.Retry.Multiplier)
			}
			return nil
		},
		func() error {
			if c.Retry.MaxInterval < c.Retry.InitialInterval {
				return bad("retry.max_interval", "%s is below retry.initial_interval %s", c.Retry.MaxInterval, c.Retry.InitialInterval)
			}
			return nil
		},
		func() error {
			if c.Retry.Jitter < 0 || c.Retry.Jitter >= 1 {
				return bad("retry.jitter", "must be in [0, 1), got %g", c.Retry.Jitter)
			}
			return nil
		},
		func() error {
			for i, h := range c.Handlers {
				if _, err := event.ParsePattern(h.Match); err != nil {
					return bad(fmt.Sprintf("handlers[%d].match", i), "%v", err)
				}
				if h.Handler == "" {
					return bad(fmt.Sprintf("handlers[%d].handler", i), "empty: name a registered handler such as \"webhook\"")
				}
			}
			return nil
		},
		func() error {
			switch c.Log.Level {
			case "debug", "info", "warn", "error":
				return nil
			}
			return bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
		},
		func() error {
			switch c.Log.Format {
			case "json", "console":
				return nil
			}
			return bad("log.format", "%q: want json or console", c.Log.Format)
		},
		func() error { return duration("outbox.interval", c.Outbox.Interval, 10*time.Millisecond) },
		func() error {
			if c.Outbox.MinAge < 0 {
				return bad("outbox.min_age", "must be >= 0, got %s", c.Outbox.MinAge)
			}
			return nil
		},
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// ValidateSubscription checks a `<scope>:<category>` pattern: scope is
// `admin`, `tenants` or `*`; category is a [a-z_]+ segment or `*`.
func ValidateSubscription(s string) error {
	scope, cat, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("subscription %q: want <scope>:<category>, e.g. admin:* or tenants:users", s)
	}
	switch scope {
	case event.ScopeAdmin, event.ScopeTenants, "*":
	default:
		return fmt.Errorf("subscription %q: scope must be admin, tenants or *", s)
	}
	if cat == "*" {
		return nil
	}
	if cat == "" {
		return fmt.Errorf("subscription %q: empty category", s)
	}
	for i := 0; i < len(cat); i++ {
		if c := cat[i]; (c < 'a' || c > 'z') && c != '_' {
			return fmt.Errorf("subscription %q: category must be [a-z_]+ or *", s)
		}
	}
	return nil
}

func checkURL(key, raw string, schemes ...string) error {
	if raw == "" {
		return bad(key, "empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(key, "not a URL: %v", err)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return bad(key, "scheme %q: want one of %s", u.Scheme, strings.Join(schemes, ", "))
}

func positive(key string, n, max int) error {
	if n < 1 || n > max {
		return bad(key, "must be between 1 and %d, got %d", max, n)
	}
	return nil
}

func duration(key string, d, min time.Duration) error {
	if d < min {
		return bad(key, "must be at least %s, got %s", min, d)
	}
	return nil
}
