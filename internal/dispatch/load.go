package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
)

// schemaCache holds one schema's compiled definitions. The snapshot is
// replaced whole on every reload, so Match reads it without locks.
type schemaCache struct {
	snap atomic.Pointer[snapshot]
	// used is set by Match, which loads it first: steady traffic then
	// writes nothing that every worker goroutine shares, and reads no
	// clock. The refresh loop turns it into lastUsed (unix nanoseconds of
	// the refresh that last saw the cache used).
	used     atomic.Bool
	lastUsed atomic.Int64
	cols     columns         // discovered once: platform databases may differ
	ensured  bool            // config rows upserted; only the load path touches it
	clashed  map[string]bool // bindings whose row name an unmanaged row holds
}

// snapshot is an immutable, pre-sorted list of candidates: Priority desc,
// Name, then direct before subscription matches, so Match's first hit per
// action id is the one to keep and its output needs no sort.
type snapshot struct {
	entries  []entry
	loadedAt time.Time
}

// entry is one way an action can match: its own patterns, one subscription,
// or one config binding.
type entry struct {
	action   Action
	patterns []event.Pattern
	conds    conditions
	// Subscription filters; nil means any.
	tenants, orgs, users []uuid.UUID
	sources              []string
	subPriority          int
}

// columns records which optional columns a schema's tables have.
type columns struct {
	actions map[string]bool
	subs    map[string]bool // nil: no event_subscriptions table
}

// snapshotFor returns the schema's definitions, loading them on first use.
func (d *Dispatcher) snapshotFor(ctx context.Context, schema string) (*snapshot, error) {
	d.mu.RLock()
	c := d.schemas[schema]
	d.mu.RUnlock()
	if c != nil {
		if !c.used.Load() {
			c.used.Store(true)
		}
		return c.snap.Load(), nil
	}
	v, err, _ := d.loads.Do(schema, func() (any, error) {
		d.mu.RLock()
		c := d.schemas[schema]
		d.mu.RUnlock()
		if c != nil { // another caller finished the load meanwhile
			return c, nil
		}
		c = &schemaCache{}
		if err := d.reload(ctx, schema, c); err != nil {
			return nil, err
		}
		c.lastUsed.Store(time.Now().UnixNano())
		d.mu.Lock()
		d.schemas[schema] = c
		d.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*schemaCache).snap.Load(), nil
}

// reload reads the schema's definitions and swaps in a new snapshot. On error
// the old snapshot stays.
func (d *Dispatcher) reload(ctx context.Context, schema string, c *schemaCache) error {
	if c.cols.actions == nil {
		cols, err := d.discoverColumns(ctx, schema)
		if err != nil {
			return err
		}
		c.cols = cols
	}
	rows, err := d.loadActions(ctx, schema, c.cols)
	if err != nil {
		return err
	}
	if !c.ensured || d.missingConfigRows(rows, c.clashed) {
		clashed, err := d.ensureConfig(ctx, schema, c.cols)
		if err != nil {
			return err
		}
		c.ensured, c.clashed = true, clashed
		if rows, err = d.loadActions(ctx, schema, c.cols); err != nil {
			return err
		}
	}
	subs, err := d.loadSubscriptions(ctx, schema, c.cols)
	if err != nil {
		return err
	}
	c.snap.Store(d.compile(schema, rows, subs))
	return nil
}

func (d *Dispatcher) discoverColumns(ctx context.Context, schema string) (columns, error) {
	if err := event.ValidateSchema(schema); err != nil {
		return columns{}, fmt.Errorf("dispatch: %w", err)
	}
	rows, err := d.pool.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name IN ('actions', 'event_subscriptions')`, schema)
	if err != nil {
		return columns{}, fmt.Errorf("dispatch: columns of %s: %w", schema, err)
	}
	cols := columns{actions: map[string]bool{}}
	var table, col string
	_, err = pgx.ForEachRow(rows, []any{&table, &col}, func() error {
		if table == "actions" {
			cols.actions[col] = true
			return nil
		}
		if cols.subs == nil {
			cols.subs = map[string]bool{}
		}
		cols.subs[col] = true
		return nil
	})
	if err != nil {
		return columns{}, fmt.Errorf("dispatch: columns of %s: %w", schema, err)
	}
	if len(cols.actions) == 0 {
		return columns{}, fmt.Errorf("dispatch: %w: %s", ErrSchemaNotFound, schema)
	}
	return cols, nil
}

// actionRow is one `actions` row as loaded.
type actionRow struct {
	id                                       uuid.UUID
	name, actionType, handlerClass, prio     string
	config, conditions, retryPolicy          []byte
	patterns                                 []string
	timeoutSeconds, maxConcurrent, rateLimit int32
	active, managed                          bool
}

// loadActions reads the active rows plus every managed config row (active or
// not: their ids are what config bindings run under).
func (d *Dispatcher) loadActions(ctx context.Context, schema string, cols columns) ([]actionRow, error) {
	notDeleted := "true"
	if cols.actions["deleted_at"] {
		notDeleted = "deleted_at IS NULL"
	}
	q := fmt.Sprintf(`SELECT id, name::text, action_type::text, coalesce(handler_class::text, ''),
		coalesce(priority::text, 'normal'), coalesce(config, '{}'::jsonb), conditions, retry_policy,
		coalesce(array_remove(event_patterns::text[], NULL), '{}'), coalesce(timeout_seconds, 0),
		coalesce(max_concurrent_executions, 1), coalesce(rate_limit_per_minute, 0),
		coalesce(is_active, false), coalesce(metadata->>'managed_by' = $1, false)
		FROM %s.actions
		WHERE %s AND (coalesce(is_active, false) OR metadata->>'managed_by' = $1)`,
		event.QuoteIdent(schema), notDeleted)
	rows, err := d.pool.Query(ctx, q, ManagedBy)
	if err != nil {
		return nil, fmt.Errorf("dispatch: load %s.actions: %w", schema, err)
	}
	var out []actionRow
	var r actionRow
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.name, &r.actionType, &r.handlerClass, &r.prio,
		&r.config, &r.conditions, &r.retryPolicy, &r.patterns, &r.timeoutSeconds,
		&r.maxConcurrent, &r.rateLimit, &r.active, &r.managed}, func() error {
		row := r
		row.config, row.conditions, row.retryPolicy = clone(r.config), clone(r.conditions), clone(r.retryPolicy)
		out = append(out, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: load %s.actions: %w", schema, err)
	}
	return out, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// subRow is one active `event_subscriptions` row.
type subRow struct {
	id, actionID                  uuid.UUID
	pattern                       string
	conditions                    []byte
	priority, rateLimit           int32
	tenants, orgs, users, sources []string
}

// subFilterColumns are the optional filter columns; a platform scope has
// either the tenant/organization pair (admin) or the user filter (tenants).
var subFilterColumns = []string{"tenant_filter", "organization_filter", "user_filter", "source_service_filter"}

func (d *Dispatcher) loadSubscriptions(ctx context.Context, schema string, cols columns) ([]subRow, error) {
	if cols.subs == nil {
		return nil, nil
	}
	sel := make([]string, len(subFilterColumns))
	for i, c := range subFilterColumns {
		sel[i] = "NULL::text[]"
		if cols.subs[c] {
			sel[i] = "array_remove(" + c + "::text[], NULL)" // NULL elements would fail the scan
		}
	}
	where := "coalesce(is_active, false)"
	if cols.subs["deleted_at"] {
		where += " AND deleted_at IS NULL"
	}
	q := fmt.Sprintf(`SELECT id, action_id, event_pattern::text, conditions, coalesce(priority, 0),
		coalesce(rate_limit_per_minute, 0), %s FROM %s.event_subscriptions WHERE %s`,
		strings.Join(sel, ", "), event.QuoteIdent(schema), where)
	rows, err := d.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("dispatch: load %s.event_subscriptions: %w", schema, err)
	}
	var out []subRow
	var r subRow
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.actionID, &r.pattern, &r.conditions, &r.priority,
		&r.rateLimit, &r.tenants, &r.orgs, &r.users, &r.sources}, func() error {
		row := r
		row.conditions = clone(r.conditions)
		out = append(out, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: load %s.event_subscriptions: %w", schema, err)
	}
	return out, nil
}

// compile turns rows into a sorted snapshot, logging and skipping any row
// with a malformed pattern, condition or filter.
func (d *Dispatcher) compile(schema string, rows []actionRow, subs []subRow) *snapshot {
	byID := make(map[uuid.UUID]Action, len(rows))
	managed := make(map[string]uuid.UUID)
	var entries []entry
	for _, r := range rows {
		if r.managed {
			managed[r.name] = r.id
			continue
		}
		a := rowAction(schema, r)
		byID[r.id] = a
		e, err := actionEntry(a, r)
		if err != nil {
			d.log.Error("skipping action with malformed definition", zap.String("schema", schema),
				zap.String("action", r.name), zap.Stringer("action_id", r.id), zap.Error(err))
			continue
		}
		entries = append(entries, e)
	}
	for _, s := range subs {
		a, ok := byID[s.actionID]
		if !ok {
			continue // inactive, deleted or managed action
		}
		e, err := subscriptionEntry(a, s)
		if err != nil {
			d.log.Error("skipping subscription with malformed definition", zap.String("schema", schema),
				zap.Stringer("subscription_id", s.id), zap.String("action", a.Name), zap.Error(err))
			continue
		}
		entries = append(entries, e)
	}
	entries = append(entries, d.configEntries(schema, managed)...)
	sortEntries(entries)
	return &snapshot{entries: entries, loadedAt: time.Now()}
}

func rowAction(schema string, r actionRow) Action {
	name := strings.TrimSpace(r.handlerClass)
	if name == "" {
		name = r.actionType
	}
	timeout := time.Duration(r.timeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	prio := event.Priority(r.prio).Rank()
	if prio < 0 {
		prio = event.PriorityNormal.Rank()
	}
	var policy json.RawMessage
	if len(r.retryPolicy) > 0 && string(r.retryPolicy) != "null" {
		policy = r.retryPolicy
	}
	return Action{
		ID: r.id, Schema: schema, Name: r.name, Type: r.actionType, HandlerName: name,
		Config: r.config, RetryPolicy: policy, Timeout: timeout,
		MaxConcurrent: max(int(r.maxConcurrent), 0), RateLimitPerMinute: max(int(r.rateLimit), 0),
		Priority: prio, Source: SourceAction,
	}
}

func actionEntry(a Action, r actionRow) (entry, error) {
	pats, err := parsePatterns(r.patterns)
	if err != nil {
		return entry{}, err
	}
	conds, err := parseConditions(r.conditions)
	if err != nil {
		return entry{}, err
	}
	return entry{action: a, patterns: pats, conds: conds}, nil
}

func subscriptionEntry(a Action, s subRow) (entry, error) {
	pats, err := parsePatterns([]string{s.pattern})
	if err != nil {
		return entry{}, err
	}
	conds, err := parseConditions(s.conditions)
	if err != nil {
		return entry{}, err
	}
	e := entry{action: a, patterns: pats, conds: conds, sources: nonEmpty(s.sources), subPriority: int(s.priority)}
	if e.tenants, err = parseUUIDs("tenant_filter", s.tenants); err != nil {
		return entry{}, err
	}
	if e.orgs, err = parseUUIDs("organization_filter", s.orgs); err != nil {
		return entry{}, err
	}
	if e.users, err = parseUUIDs("user_filter", s.users); err != nil {
		return entry{}, err
	}
	e.action.Source = SourceSubscription
	e.action.SubscriptionID = s.id
	e.action.SubscriptionRateLimitPerMinute = max(int(s.rateLimit), 0)
	return e, nil
}

func parsePatterns(raw []string) ([]event.Pattern, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no event patterns")
	}
	pats := make([]event.Pattern, 0, len(raw))
	for _, s := range raw {
		p, err := event.ParsePattern(s)
		if err != nil {
			return nil, err
		}
		pats = append(pats, p)
	}
	return pats, nil
}

// parseUUIDs compiles a uuid[] filter. NULL and an empty array both mean
// "any": an empty allow-list that matched nothing would silently disable the
// subscription.
func parseUUIDs(col string, ss []string) ([]uuid.UUID, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]uuid.UUID, 0, len(ss))
	for _, s := range ss {
		if s == "" {
			continue // a NULL element
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", col, err)
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func nonEmpty(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func sortEntries(es []entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := &es[i], &es[j]
		if a.action.Priority != b.action.Priority {
			return a.action.Priority > b.action.Priority
		}
		if a.action.Name != b.action.Name {
			return a.action.Name < b.action.Name
		}
		if ra, rb := sourceRank(a.action.Source), sourceRank(b.action.Source); ra != rb {
			return ra < rb
		}
		if a.subPriority != b.subPriority {
			return a.subPriority > b.subPriority
		}
		return a.action.SubscriptionID.String() < b.action.SubscriptionID.String()
	})
}

// sourceRank prefers a direct match over a subscription of the same action:
// the direct one carries no subscription rate limit.
func sourceRank(s Source) int {
	if s == SourceSubscription {
		return 1
	}
	return 0
}

// refreshLoop reloads every cached schema each Refresh and evicts the idle
// ones. A failed reload keeps the previous definitions.
func (d *Dispatcher) refreshLoop() {
	defer close(d.done)
	t := time.NewTicker(d.opt.Refresh)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.refreshAll(ctx)
		}
	}
}

func (d *Dispatcher) refreshAll(ctx context.Context) {
	d.mu.RLock()
	caches := make(map[string]*schemaCache, len(d.schemas))
	for s, c := range d.schemas {
		caches[s] = c
	}
	d.mu.RUnlock()
	now := time.Now()
	idleBefore := now.Add(-d.opt.IdleEvict).UnixNano()
	for schema, c := range caches {
		if c.used.Swap(false) {
			c.lastUsed.Store(now.UnixNano())
		}
		if c.lastUsed.Load() < idleBefore {
			d.mu.Lock()
			delete(d.schemas, schema)
			d.mu.Unlock()
			continue
		}
		// Only this goroutine reloads a cache once it is published, so
		// reload's writes to c need no lock.
		rctx, cancel := context.WithTimeout(ctx, max(d.opt.Refresh*5, 10*time.Second))
		err := d.reload(rctx, schema, c)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("refreshing action definitions failed; keeping the previous ones",
				zap.String("schema", schema), zap.Error(err))
		}
	}
}
