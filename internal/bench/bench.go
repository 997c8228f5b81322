// Package bench is the engine of cmd/publisher-bench (issue 4): it drives
// the project's real publisher and worker fleet against a fresh PostgreSQL
// database and a private Redis key prefix, measures throughput and latency,
// measures the machine's raw ceilings in the same run (--baseline), and
// verifies afterwards that nothing was lost or executed twice.
//
// The verification is the point: a bench that cannot fail proves nothing.
// Run returns an error wrapping ErrVerification whenever an event the bench
// published is not where it must be (a row, a stream entry, a completed
// status with one completed execution per action).
package bench

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"go.uber.org/zap"
)

// Mode selects what is measured.
type Mode string

// Modes (DESIGN §6, issue 4).
const (
	// ModePublish drives publisher.Publish: COPY into Postgres plus XADD.
	ModePublish Mode = "publish"
	// ModeRedisOnly XADDs the same entries without Postgres: the transport's share.
	ModeRedisOnly Mode = "redis-only"
	// ModeWorker pre-fills the streams, then lets in-process workers drain them.
	ModeWorker Mode = "worker"
	// ModeE2E publishes while workers process, every status write on.
	ModeE2E Mode = "e2e"
)

// Modes lists every mode in the order the standard profile runs them.
var Modes = []Mode{ModePublish, ModeRedisOnly, ModeWorker, ModeE2E}

// Defaults of Config.
const (
	DefaultDuration        = 10 * time.Second
	DefaultPublishers      = 256
	DefaultRedisPublishers = 8
	DefaultWorkers         = 2
	DefaultTenants         = 1
	DefaultPartitions      = 8
	DefaultPayloadBytes    = 256
	DefaultActionsPerEvent = 1
	DefaultWorkerEvents    = 100000
	DefaultRedisBatch      = 256
	DefaultDrainTimeout    = 60 * time.Second
	DefaultBaselineEvents  = 100000
	DefaultPostgresURL     = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
)

// Sentinel errors.
var (
	// ErrVerification: the run finished but lost, duplicated or left
	// unprocessed events. The Result still carries every figure.
	ErrVerification = errors.New("verification failed")
	// ErrConfig: a Config value is out of range.
	ErrConfig = errors.New("invalid bench configuration")
)

// Config is one bench run. Zero values take the defaults named per field.
type Config struct {
	// Mode is required.
	Mode Mode `json:"mode"`
	// Duration of the load phase. Defaults to 10s; ignored when Events is set.
	Duration time.Duration `json:"duration_ns"`
	// Events stops the load after this many events. In worker mode it is
	// the pre-filled backlog and defaults to 100000.
	Events int `json:"events"`
	// Rate offers this many events per second (open loop: latency counts
	// from each event's intended send time). 0 means as fast as possible.
	Rate float64 `json:"rate"`
	// Publishers is the number of concurrent publishing goroutines.
	// Defaults to 256 (one event per call, like API requests), or 8 in
	// redis-only mode, whose calls are whole pipelines.
	Publishers int `json:"publishers"`
	// Batch is the events per Publish call (per pipeline in redis-only).
	// Defaults to 1 (publish, e2e) or 256 (redis-only, worker pre-fill).
	Batch int `json:"batch"`
	// Workers is the number of workers. Defaults to 2.
	Workers int `json:"workers"`
	// GC describes the process's garbage-collector settings, for the
	// record (the command sets it; see internal/gctune).
	GC string `json:"gc,omitempty"`
	// WorkerBin, when set, runs the workers as processes of this binary
	// (cmd/worker) instead of in the bench process, so that their memory
	// is measured on its own (Result.WorkerRSS). Worker and e2e modes.
	WorkerBin string `json:"worker_bin,omitempty"`
	// Concurrency per worker (worker.concurrency). Defaults to the config default.
	Concurrency int `json:"concurrency"`
	// Tenants is the number of tenant schemas events are spread over; 0
	// publishes into admin only. The command's flag defaults to 1.
	Tenants int `json:"tenants"`
	// Partitions per (scope, category). Defaults to 8.
	Partitions int `json:"partitions"`
	// PayloadBytes is the approximate size of event_data. Defaults to 256.
	PayloadBytes int `json:"payload_bytes"`
	// ActionsPerEvent is the number of noop actions each event matches. Defaults to 1.
	ActionsPerEvent int `json:"actions_per_event"`
	// UpdateStatus turns the workers' Postgres status writes on (worker
	// mode; e2e always writes them).
	UpdateStatus bool `json:"update_status"`
	// Tune applies store.Tune (the optional index set that makes status
	// updates HOT) before the run.
	Tune bool `json:"tune"`
	// Baseline also measures the raw ceilings and reports ratios.
	Baseline bool `json:"baseline"`
	// BaselineEvents is the rows or entries each ceiling is measured
	// with. Defaults to 100000.
	BaselineEvents int `json:"baseline_events,omitempty"`
	// DrainTimeout bounds the wait for workers to finish the backlog. Defaults to 60s.
	DrainTimeout time.Duration `json:"drain_timeout_ns"`

	// PostgresURL names the server; the bench creates its own database on it.
	PostgresURL string `json:"-"`
	// RedisURL names the Redis; the bench uses its own key prefix on it.
	RedisURL string `json:"-"`
	// Database is the name of the database to create; "" means neo_bench_<random>.
	Database string `json:"-"`
	// Keep leaves the database and the keys in place at the end.
	Keep bool `json:"-"`
	// InjectLost adds this many events that are recorded as published but
	// never reach a stream, to prove the verification catches them.
	InjectLost int `json:"inject_lost,omitempty"`

	// Progress receives one line per second; nil means none.
	Progress io.Writer `json:"-"`
	// Logger is handed to the workers; nil means none.
	Logger *zap.Logger `json:"-"`
}

var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// WithDefaults returns c with every zero field defaulted.
func (c Config) WithDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Mode == ModeWorker && c.Events <= 0 {
		c.Events = DefaultWorkerEvents
	}
	if c.Publishers <= 0 {
		c.Publishers = DefaultPublishers
		if c.Mode == ModeRedisOnly {
			c.Publishers = DefaultRedisPublishers
		}
	}
	if c.Batch <= 0 {
		c.Batch = 1
		if c.Mode == ModeRedisOnly || c.Mode == ModeWorker {
			c.Batch = DefaultRedisBatch
		}
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.PayloadBytes <= 0 {
		c.PayloadBytes = DefaultPayloadBytes
	}
	if c.ActionsPerEvent <= 0 {
		c.ActionsPerEvent = DefaultActionsPerEvent
	}
	if c.BaselineEvents <= 0 {
		c.BaselineEvents = DefaultBaselineEvents
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.PostgresURL == "" {
		c.PostgresURL = DefaultPostgresURL
	}
	if c.RedisURL == "" {
		c.RedisURL = DefaultRedisURL
	}
	if c.Mode == ModeE2E {
		c.UpdateStatus = true
	}
	return c
}

// Validate checks a defaulted Config and names the bad flag.
func (c Config) Validate() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("%w: --%s: %s", ErrConfig, flag, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != ModePublish && c.Mode != ModeRedisOnly && c.Mode != ModeWorker && c.Mode != ModeE2E:
		return bad("mode", "%q: want publish, redis-only, worker or e2e", c.Mode)
	case c.Events < 0:
		return bad("events", "must be >= 0, got %d", c.Events)
	case c.Rate < 0:
		return bad("rate", "must be >= 0, got %g", c.Rate)
	case c.Tenants < 0 || c.Tenants > 1000:
		return bad("tenants", "must be between 0 and 1000, got %d", c.Tenants)
	case c.Partitions > 1024:
		return bad("partitions", "must be at most 1024, got %d", c.Partitions)
	case c.Publishers > 100000:
		return bad("publishers", "must be at most 100000, got %d", c.Publishers)
	case c.Batch > 100000:
		return bad("batch", "must be at most 100000, got %d", c.Batch)
	case c.Workers > 64:
		return bad("workers", "must be at most 64, got %d", c.Workers)
	case c.ActionsPerEvent > 100:
		return bad("actions-per-event", "must be at most 100, got %d", c.ActionsPerEvent)
	case c.PayloadBytes > 1<<20:
		return bad("payload-bytes", "must be at most 1 MiB, got %d", c.PayloadBytes)
	case c.BaselineEvents > 10000000:
		return bad("baseline-events", "must be at most 10000000, got %d", c.BaselineEvents)
	case c.InjectLost < 0:
		return bad("inject-lost", "must be >= 0, got %d", c.InjectLost)
	case c.Database != "" && !databaseName.MatchString(c.Database):
		return bad("database", "%q: want [a-z_][a-z0-9_]{0,62}", c.Database)
	}
	return nil
}
