package dispatch_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/testutil"
)

// fixture is a migrated database with one tenant schema.
type fixture struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	tenant string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	testutil.SkipIfShort(t)
	ctx := testutil.Context(t)
	pool := testutil.NewPool(t, testutil.NewDatabase(t))
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	tenant, err := store.CreateTenant(ctx, pool, "acme")
	require.NoError(t, err)
	return &fixture{ctx: ctx, pool: pool, tenant: tenant}
}

// action describes an `actions` row to insert.
type action struct {
	name, actionType, handlerClass string
	patterns                       []string
	conditions                     string // JSON, "" for the column default
	active                         bool
	priority                       string // "" for the column default
	rateLimit                      int
	metadata                       string
	deleted                        bool
}

func (f *fixture) insertAction(t testing.TB, schema string, a action) uuid.UUID {
	t.Helper()
	if a.actionType == "" {
		a.actionType = "custom"
	}
	if a.handlerClass == "" {
		a.handlerClass = "ok"
	}
	if a.priority == "" {
		a.priority = "normal"
	}
	if a.conditions == "" {
		a.conditions = "{}"
	}
	if a.metadata == "" {
		a.metadata = "{}"
	}
	var rl *int
	if a.rateLimit > 0 {
		rl = &a.rateLimit
	}
	var id uuid.UUID
	err := f.pool.QueryRow(f.ctx, `INSERT INTO `+event.QuoteIdent(schema)+`.actions
		(name, action_type, handler_class, event_patterns, conditions, is_active, priority,
		 rate_limit_per_minute, metadata, deleted_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, CASE WHEN $10 THEN now() END)
		RETURNING id`,
		a.name, a.actionType, a.handlerClass, a.patterns, a.conditions, a.active, a.priority,
		rl, a.metadata, a.deleted).Scan(&id)
	require.NoError(t, err, "insert action %s", a.name)
	return id
}

// subscription describes an `event_subscriptions` row to insert.
type subscription struct {
	actionID   uuid.UUID
	pattern    string
	conditions string
	active     bool
	priority   int
	users      []string // tenant schemas only
	tenants    []string // admin only
	orgs       []string // admin only
	sources    []string
}

func (f *fixture) insertSubscription(t testing.TB, schema string, s subscription) uuid.UUID {
	t.Helper()
	if s.conditions == "" {
		s.conditions = "{}"
	}
	cols := "action_id, event_pattern, conditions, is_active, priority, source_service_filter"
	args := []any{s.actionID, s.pattern, s.conditions, s.active, s.priority, s.sources}
	vals := "$1, $2, $3::jsonb, $4, $5, $6"
	if schema == event.AdminSchema {
		cols += ", tenant_filter, organization_filter"
		vals += ", $7::uuid[], $8::uuid[]"
		args = append(args, s.tenants, s.orgs)
	} else {
		cols += ", user_filter"
		vals += ", $7::uuid[]"
		args = append(args, s.users)
	}
	var id uuid.UUID
	err := f.pool.QueryRow(f.ctx, `INSERT INTO `+event.QuoteIdent(schema)+`.event_subscriptions (`+
		cols+`) VALUES (`+vals+`) RETURNING id`, args...).Scan(&id)
	require.NoError(t, err, "insert subscription %s", s.pattern)
	return id
}

func (f *fixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := f.pool.Exec(f.ctx, sql, args...)
	require.NoError(t, err, sql)
}

func newEvent(t testing.TB, schema, eventType, data string) *event.Event {
	t.Helper()
	ev, err := event.New(schema, eventType, "thing", uuid.New(), json.RawMessage(data))
	require.NoError(t, err)
	return ev
}

func names(as []dispatch.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Name
	}
	return out
}

// clock is a settable fake clock for breakers.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
