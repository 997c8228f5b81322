// Package dispatch decides which actions an event triggers and runs one
// action on one event (DESIGN §3, issue 3 item 3).
//
// Matching: an event's actions are the active rows of its schema's `actions`
// (event_patterns + conditions) and `event_subscriptions` (event_pattern,
// conditions, tenant/organization/user and source_service filters, joined to
// their active action), plus the handlers bound in the worker's config. The
// definitions are loaded per schema on the first event of that schema, kept in
// memory with patterns and conditions pre-parsed, and reloaded in the
// background every Options.Refresh, so a row added, changed or deactivated
// takes effect within one refresh and Match never touches PostgreSQL once the
// schema is warm.
//
// Running: Run looks the handler up by name, then applies the action's
// circuit breaker, its fleet-wide rate limit (through the Limiter interface:
// dispatch never sees Redis), its per-process concurrency bound and its
// timeout, and classifies the outcome for the consumer (success, retry,
// retry-after, permanent, unknown handler, or deferred without an attempt).
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/metrics"
)

// Source says where a matched action came from.
type Source string

// The sources of an action.
const (
	SourceAction       Source = "action"       // a row of `actions`, by its event_patterns
	SourceSubscription Source = "subscription" // a row of `event_subscriptions`
	SourceConfig       Source = "config"       // a `handlers:` binding in the worker config
)

// Defaults of Options.
const (
	DefaultRefresh          = 2 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
	DefaultTimeoutGrace     = 5 * time.Second
	DefaultIdleEvict        = 10 * time.Minute
	// DefaultTimeout is the `actions.timeout_seconds` column default.
	DefaultTimeout = handler.DefaultTimeout
)

// ManagedBy is the `metadata.managed_by` value of the `actions` rows that
// EnsureConfigActions maintains for config bindings. Table matching ignores
// such rows, even when someone activates them.
const ManagedBy = "neo-events-config"

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrSchemaNotFound: the event's schema has no `actions` table (no such
	// tenant, or the database was never migrated).
	ErrSchemaNotFound = errors.New("schema has no actions table")
	// ErrUnknownHandler: no handler is registered under the action's name.
	ErrUnknownHandler = errors.New("unknown handler")
	// ErrNameClash: a config binding's row name is taken by an `actions` row
	// that neo-events does not manage.
	ErrNameClash = errors.New("action name taken by an unmanaged row")
	// ErrAbandoned: the handler ignored its context and was still running
	// TimeoutGrace after its deadline; Run stopped waiting for it.
	ErrAbandoned = errors.New("handler ignored its deadline and was abandoned")
)

// Action is one action to run for an event.
type Action struct {
	ID     uuid.UUID // the `actions` row (for a config binding: its managed row)
	Schema string
	Name   string
	// Type is the action_type enum value.
	Type string
	// HandlerName is the handler_class, or the action_type when that is empty.
	HandlerName string
	Config      json.RawMessage
	RetryPolicy json.RawMessage // nil: the event's max_retries, then the config's policy
	Timeout     time.Duration
	// MaxConcurrent bounds concurrent calls of this action in one worker
	// process; 0 means no bound. See Run.
	MaxConcurrent int
	// RateLimitPerMinute is the action's fleet-wide limit; 0 means none.
	RateLimitPerMinute int
	// Priority orders the actions of one event, highest first: the rank of
	// actions.priority (low 0 .. critical 4).
	Priority int
	Source   Source
	// SubscriptionID is the `event_subscriptions` row, when Source is
	// SourceSubscription.
	SubscriptionID uuid.UUID
	// SubscriptionRateLimitPerMinute is the subscription's own fleet-wide
	// limit, applied on top of the action's; 0 means none.
	SubscriptionRateLimitPerMinute int
}

// Limiter is a fleet-wide rate limiter (internal/ratelimit implements it on
// Redis). Allow records one call under key when fewer than perMinute were
// allowed in the last minute; otherwise retryIn says when to come back.
type Limiter interface {
	Allow(ctx context.Context, key string, perMinute int) (ok bool, retryIn time.Duration, err error)
}

// HealthRecorder persists an action's health when its circuit breaker opens
// or closes.
type HealthRecorder interface {
	SetHealth(ctx context.Context, schema string, actionID uuid.UUID, healthy bool, errText string) error
}

// Options configure a Dispatcher. Only Registry is needed for Run to find
// handlers; every other field has a default.
type Options struct {
	// Registry resolves handler names. Nil means every action is an unknown handler.
	Registry *handler.Registry
	// Bindings are the config's `handlers:` list; they apply to every schema.
	Bindings []config.HandlerConfig
	// Limiter enforces rate_limit_per_minute. Nil disables rate limits.
	Limiter Limiter
	// Health records breaker transitions. Nil records nothing.
	Health HealthRecorder
	// Refresh is how often cached definitions are reloaded. Defaults to 2s.
	Refresh time.Duration
	// BreakerThreshold is the number of consecutive failures that opens an
	// action's circuit. Defaults to 5.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit defers calls before one
	// trial call. Defaults to 30s.
	BreakerCooldown time.Duration
	// TimeoutGrace is how long Run waits past an action's timeout for a
	// handler that ignores its context, before abandoning it. Defaults to 5s.
	TimeoutGrace time.Duration
	// IdleEvict drops a schema's cached definitions when no event of that
	// schema was matched for this long, so the refresh cost follows the
	// active tenants, not all of them. Defaults to 10m.
	IdleEvict time.Duration
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Metrics may be nil.
	Metrics *metrics.Worker
	// Group labels metrics.
	Group string
	// Now is the clock of breakers and Result timestamps. Defaults to time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = DefaultBreakerThreshold
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.TimeoutGrace <= 0 {
		o.TimeoutGrace = DefaultTimeoutGrace
	}
	if o.IdleEvict <= 0 {
		o.IdleEvict = DefaultIdleEvict
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Dispatcher matches events to actions and runs them. It is safe for
// concurrent use. Close stops its background refresh.
type Dispatcher struct {
	pool     *pgxpool.Pool
	opt      Options
	log      *zap.Logger
	bindings []binding

	mu      sync.RWMutex
	schemas map[string]*schemaCache
	loads   singleflight.Group

	runMu sync.RWMutex
	runs  map[actionKey]*actionRun

	watch     *watchdog
	realClock bool // Options.Now is time.Now: call reuses its reading

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// actionKey identifies an action across schemas (ids are unique anyway, but
// a copied tenant could share them).
type actionKey struct {
	schema string
	id     uuid.UUID
}

// New returns a Dispatcher reading definitions through pool and starts its
// background refresh. Invalid config bindings are logged and skipped (config
// validation refuses them earlier in a real worker).
func New(pool *pgxpool.Pool, opt Options) *Dispatcher {
	realClock := opt.Now == nil
	opt = opt.withDefaults()
	d := &Dispatcher{
		pool:      pool,
		opt:       opt,
		log:       opt.Logger.Named("dispatch"),
		schemas:   make(map[string]*schemaCache),
		runs:      make(map[actionKey]*actionRun),
		watch:     newWatchdog(opt.TimeoutGrace),
		realClock: realClock,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	d.bindings = parseBindings(opt.Bindings, d.log)
	go d.refreshLoop()
	return d
}

// Close stops the background refresh and waits for it. Match and Run keep
// working on what is cached.
func (d *Dispatcher) Close() {
	d.closeOnce.Do(func() {
		close(d.stop)
		<-d.done
	})
}
