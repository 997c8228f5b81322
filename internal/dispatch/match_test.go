package dispatch_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/dispatch"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ten, adm := f.tenant, event.AdminSchema
	user1, user2 := uuid.New(), uuid.New()
	tenant1, org1 := uuid.New(), uuid.New()

	f.insertAction(t, ten, action{name: "welcome", patterns: []string{"users.created"}, active: true, priority: "high"})
	f.insertAction(t, ten, action{name: "audit_all", patterns: []string{"*"}, active: true, priority: "low"})
	f.insertAction(t, ten, action{name: "inactive", patterns: []string{"*"}, active: false})
	f.insertAction(t, ten, action{name: "deleted", patterns: []string{"*"}, active: true, deleted: true})
	f.insertAction(t, ten, action{name: "managed_activated", patterns: []string{"*"}, active: true,
		metadata: `{"managed_by":"neo-events-config"}`})
	f.insertAction(t, ten, action{name: "admins_only", patterns: []string{"users.*"}, active: true,
		conditions: `{"user.role":"admin"}`})
	f.insertAction(t, ten, action{name: "paid_plans", patterns: []string{"*.created"}, active: true,
		conditions: `{"plan":["pro","enterprise"]}`})
	f.insertAction(t, ten, action{name: "ten_units", patterns: []string{"orders.*"}, active: true,
		conditions: `{"amount":10}`})
	f.insertAction(t, ten, action{name: "bad_pattern", patterns: []string{"Users.*"}, active: true})
	f.insertAction(t, ten, action{name: "bad_conditions", patterns: []string{"*"}, active: true, conditions: `[1]`})
	f.insertAction(t, ten, action{name: "two_patterns", patterns: []string{"billing.paid", "*.refunded"}, active: true})

	// Reached only through subscriptions.
	subTarget := f.insertAction(t, ten, action{name: "notify", patterns: []string{"none.none"}, active: true})
	f.insertSubscription(t, ten, subscription{actionID: subTarget, pattern: "users.*", active: true,
		users: []string{user1.String()}, sources: []string{"auth"}})
	f.insertSubscription(t, ten, subscription{actionID: subTarget, pattern: "orders.shipped", active: true,
		conditions: `{"carrier":"dhl"}`})
	f.insertSubscription(t, ten, subscription{actionID: subTarget, pattern: "teams.*", active: false})
	// Matches both directly and through a subscription: listed once, as direct.
	dup := f.insertAction(t, ten, action{name: "dup", patterns: []string{"users.created"}, active: true})
	f.insertSubscription(t, ten, subscription{actionID: dup, pattern: "users.*", active: true})
	// A subscription of an inactive action does nothing.
	off := f.insertAction(t, ten, action{name: "off", patterns: []string{"none.none"}, active: false})
	f.insertSubscription(t, ten, subscription{actionID: off, pattern: "*", active: true})
	// A subscription with a malformed pattern is skipped.
	f.insertSubscription(t, ten, subscription{actionID: subTarget, pattern: "nope", active: true})

	adminTarget := f.insertAction(t, adm, action{name: "admin_hook", patterns: []string{"none.none"}, active: true})
	f.insertSubscription(t, adm, subscription{actionID: adminTarget, pattern: "*", active: true,
		tenants: []string{tenant1.String()}, orgs: []string{org1.String()}})

	d := dispatch.New(f.pool, dispatch.Options{Bindings: []config.HandlerConfig{
		{Match: "users.created", Handler: "webhook", Config: map[string]any{"url": "http://127.0.0.1:1/hook"}},
	}})
	t.Cleanup(d.Close)

	type evOpt func(*event.Event)
	withUser := func(u uuid.UUID) evOpt { return func(e *event.Event) { e.UserID = u } }
	withSource := func(s string) evOpt { return func(e *event.Event) { e.SourceService = s } }
	withTenant := func(tid, oid uuid.UUID) evOpt {
		return func(e *event.Event) { e.TenantID, e.OrganizationID = tid, oid }
	}
	tests := []struct {
		name   string
		schema string
		typ    string
		data   string
		opts   []evOpt
		want   []string
	}{
		{name: "exact, wildcard, config, dedupe, priority order", schema: ten, typ: "users.created", data: `{}`,
			want: []string{"welcome", "config:webhook:users.created", "dup", "audit_all"}},
		{name: "nested condition", schema: ten, typ: "users.updated", data: `{"user":{"role":"admin"}}`,
			want: []string{"admins_only", "dup", "audit_all"}},
		{name: "nested condition differs", schema: ten, typ: "users.updated", data: `{"user":{"role":"guest"}}`,
			want: []string{"dup", "audit_all"}},
		{name: "one of", schema: ten, typ: "teams.created", data: `{"plan":"enterprise"}`,
			want: []string{"paid_plans", "audit_all"}},
		{name: "one of miss", schema: ten, typ: "teams.created", data: `{"plan":"free"}`,
			want: []string{"audit_all"}},
		{name: "number as float", schema: ten, typ: "orders.placed", data: `{"amount":10.0}`,
			want: []string{"ten_units", "audit_all"}},
		{name: "number differs", schema: ten, typ: "orders.placed", data: `{"amount":10.5}`,
			want: []string{"audit_all"}},
		{name: "second pattern of an action", schema: ten, typ: "orders.refunded", data: `{}`,
			want: []string{"two_patterns", "audit_all"}},
		{name: "subscription filters pass", schema: ten, typ: "users.deleted", data: `{}`,
			opts: []evOpt{withUser(user1), withSource("auth")}, want: []string{"dup", "notify", "audit_all"}},
		{name: "subscription user filter", schema: ten, typ: "users.deleted", data: `{}`,
			opts: []evOpt{withUser(user2), withSource("auth")}, want: []string{"dup", "audit_all"}},
		{name: "subscription source filter", schema: ten, typ: "users.deleted", data: `{}`,
			opts: []evOpt{withUser(user1), withSource("billing")}, want: []string{"dup", "audit_all"}},
		{name: "subscription filter vs NULL column", schema: ten, typ: "users.deleted", data: `{}`,
			opts: []evOpt{withSource("auth")}, want: []string{"dup", "audit_all"}},
		{name: "subscription conditions", schema: ten, typ: "orders.shipped", data: `{"carrier":"dhl"}`,
			want: []string{"notify", "audit_all"}},
		{name: "subscription conditions miss", schema: ten, typ: "orders.shipped", data: `{"carrier":"ups"}`,
			want: []string{"audit_all"}},
		{name: "admin tenant and org filters", schema: adm, typ: "billing.paid", data: `{}`,
			opts: []evOpt{withTenant(tenant1, org1)}, want: []string{"admin_hook"}},
		{name: "admin org filter miss", schema: adm, typ: "billing.paid", data: `{}`,
			opts: []evOpt{withTenant(tenant1, uuid.New())}, want: []string{}},
		{name: "admin config binding", schema: adm, typ: "users.created", data: `{}`,
			want: []string{"config:webhook:users.created"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvent(t, tc.schema, tc.typ, tc.data)
			for _, o := range tc.opts {
				o(ev)
			}
			got, err := d.Match(f.ctx, ev)
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, names(got)); diff != "" {
				t.Fatalf("matched actions (-want +got):\n%s", diff)
			}
			// AppendMatches appends the same after what dst holds, in
			// dst's room when it suffices.
			buf := make([]dispatch.Action, 1, 8)
			buf[0].Name = "already_there"
			got, err = d.AppendMatches(f.ctx, buf, ev)
			require.NoError(t, err)
			require.Equal(t, append([]string{"already_there"}, tc.want...), names(got))
			require.Same(t, &buf[0], &got[0], "no allocation with room in dst")
		})
	}
}

func TestMatchActionFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.insertAction(t, f.tenant, action{name: "mail", actionType: "email", handlerClass: " ",
		patterns: []string{"users.*"}, active: true, priority: "critical", rateLimit: 30})
	f.exec(t, `UPDATE `+f.tenant+`.actions SET timeout_seconds = 7, max_concurrent_executions = 3,
		config = '{"to":"ops"}', retry_policy = '{"max_retries":1}' WHERE id = $1`, id)
	subID := f.insertSubscription(t, f.tenant, subscription{actionID: id, pattern: "teams.*", active: true})
	f.exec(t, `UPDATE `+f.tenant+`.event_subscriptions SET rate_limit_per_minute = 9 WHERE id = $1`, subID)
	d := dispatch.New(f.pool, dispatch.Options{})
	t.Cleanup(d.Close)

	got, err := d.Match(f.ctx, newEvent(t, f.tenant, "users.created", `{}`))
	require.NoError(t, err)
	want := dispatch.Action{ID: id, Schema: f.tenant, Name: "mail", Type: "email", HandlerName: "email",
		Config: []byte(`{"to": "ops"}`), RetryPolicy: []byte(`{"max_retries": 1}`), Timeout: 7 * time.Second,
		MaxConcurrent: 3, RateLimitPerMinute: 30, Priority: 4, Source: dispatch.SourceAction}
	require.Equal(t, []dispatch.Action{want}, got, "blank handler_class falls back to action_type")

	got, err = d.Match(f.ctx, newEvent(t, f.tenant, "teams.created", `{}`))
	require.NoError(t, err)
	want.Source, want.SubscriptionID, want.SubscriptionRateLimitPerMinute = dispatch.SourceSubscription, subID, 9
	require.Equal(t, []dispatch.Action{want}, got)
}

func TestMatchErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := dispatch.New(f.pool, dispatch.Options{})
	t.Cleanup(d.Close)

	_, err := d.Match(f.ctx, nil)
	require.ErrorIs(t, err, dispatch.ErrNilEvent)

	ev := newEvent(t, f.tenant, "users.created", `{}`)
	ev.Schema = `tenant_x"; DROP TABLE admin.events; --`
	_, err = d.Match(f.ctx, ev)
	require.ErrorIs(t, err, event.ErrInvalidSchema)

	ev.Schema = "tenant_missing"
	_, err = d.Match(f.ctx, ev)
	require.ErrorIs(t, err, dispatch.ErrSchemaNotFound)

	// Conditions against event_data that is not JSON: no match, no crash.
	f.insertAction(t, f.tenant, action{name: "cond", patterns: []string{"*"}, active: true, conditions: `{"a":1}`})
	ev = newEvent(t, f.tenant, "users.created", `{}`)
	ev.Data = []byte(`{not json`)
	got, err := d.Match(f.ctx, ev)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestEnsureConfigActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// An operator's own row already holds one binding's name.
	f.insertAction(t, f.tenant, action{name: "config:audit:*", patterns: []string{"none.none"}, active: false})
	d := dispatch.New(f.pool, dispatch.Options{Bindings: []config.HandlerConfig{
		{Match: "users.*", Handler: "webhook", Config: map[string]any{"url": "http://127.0.0.1:1/a"}},
		{Match: "*", Handler: "audit"},
		{Match: "Bad Pattern", Handler: "audit"},
	}})
	t.Cleanup(d.Close)

	for range 2 { // idempotent
		err := d.EnsureConfigActions(f.ctx, f.tenant)
		require.ErrorIs(t, err, dispatch.ErrNameClash)
	}
	var (
		n                                int
		typ, class, meta, cfg, managedBy string
		active                           bool
		patterns                         []string
	)
	err := f.pool.QueryRow(f.ctx, `SELECT count(*) OVER (), action_type::text, handler_class, metadata::text,
		config::text, is_active, event_patterns, metadata->>'managed_by'
		FROM `+f.tenant+`.actions WHERE name = 'config:webhook:users.*'`).
		Scan(&n, &typ, &class, &meta, &cfg, &active, &patterns, &managedBy)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "webhook", typ)
	require.Equal(t, "webhook", class)
	require.Equal(t, dispatch.ManagedBy, managedBy)
	require.JSONEq(t, `{"url":"http://127.0.0.1:1/a"}`, cfg)
	require.False(t, active, "managed rows stay inactive")
	require.Equal(t, []string{"users.*"}, patterns)

	var unmanagedMeta string
	require.NoError(t, f.pool.QueryRow(f.ctx, `SELECT metadata::text FROM `+f.tenant+
		`.actions WHERE name = 'config:audit:*'`).Scan(&unmanagedMeta))
	require.JSONEq(t, `{}`, unmanagedMeta, "an unmanaged row is never taken over")

	// The clashing binding is left out of matching; the other one works.
	got, err := d.Match(f.ctx, newEvent(t, f.tenant, "users.created", `{}`))
	require.NoError(t, err)
	require.Equal(t, []string{"config:webhook:users.*"}, names(got))
	require.Equal(t, dispatch.SourceConfig, got[0].Source)

	err = d.EnsureConfigActions(f.ctx, "public")
	require.True(t, errors.Is(err, event.ErrInvalidSchema), "got %v", err)
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := dispatch.New(f.pool, dispatch.Options{Refresh: 30 * time.Millisecond})
	t.Cleanup(d.Close)
	ev := newEvent(t, f.tenant, "users.created", `{"plan":"pro"}`)
	matchNames := func() []string {
		got, err := d.Match(f.ctx, ev)
		require.NoError(t, err)
		return names(got)
	}
	require.Empty(t, matchNames())

	id := f.insertAction(t, f.tenant, action{name: "late", patterns: []string{"users.*"}, active: true})
	require.Eventually(t, func() bool { return cmp.Equal(matchNames(), []string{"late"}) },
		5*time.Second, 10*time.Millisecond, "an inserted action takes effect without restart")

	f.exec(t, `UPDATE `+f.tenant+`.actions SET conditions = '{"plan":"free"}' WHERE id = $1`, id)
	require.Eventually(t, func() bool { return len(matchNames()) == 0 },
		5*time.Second, 10*time.Millisecond, "a changed condition takes effect")

	f.exec(t, `UPDATE `+f.tenant+`.actions SET conditions = '{}', event_patterns = '{orders.*}' WHERE id = $1`, id)
	f.insertAction(t, f.tenant, action{name: "other", patterns: []string{"*"}, active: true})
	require.Eventually(t, func() bool { return cmp.Equal(matchNames(), []string{"other"}) },
		5*time.Second, 10*time.Millisecond, "a changed pattern takes effect")

	f.exec(t, `UPDATE `+f.tenant+`.actions SET is_active = false WHERE name = 'other'`)
	require.Eventually(t, func() bool { return len(matchNames()) == 0 },
		5*time.Second, 10*time.Millisecond, "a deactivated action stops matching")
}

// TestIdleSchemaEvicted: a schema whose events keep coming stays cached
// past IdleEvict; once none come for IdleEvict, its definitions are
// dropped, and the next event loads them again.
func TestIdleSchemaEvicted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	idle := 300 * time.Millisecond
	d := dispatch.New(f.pool, dispatch.Options{Refresh: 20 * time.Millisecond, IdleEvict: idle})
	t.Cleanup(d.Close)
	f.insertAction(t, f.tenant, action{name: "a", patterns: []string{"users.*"}, active: true})
	ev := newEvent(t, f.tenant, "users.created", `{}`)
	match := func() {
		got, err := d.Match(f.ctx, ev)
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, names(got))
	}
	match()
	first := d.CacheOf(f.tenant)
	require.NotNil(t, first)
	for end := time.Now().Add(3 * idle); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		match()
	}
	require.Same(t, first, d.CacheOf(f.tenant), "kept while used, for longer than IdleEvict (not evicted and reloaded)")
	require.Eventually(t, func() bool { return len(d.CachedSchemas()) == 0 },
		10*idle, 10*time.Millisecond, "dropped once idle for IdleEvict")
	match()
	require.Equal(t, []string{f.tenant}, d.CachedSchemas(), "loaded again by the next event")
}
