package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
)

// Demo defaults: the key prefix and consumer group `make demo` uses, and its tenants.
const (
	Prefix = "demo"
	Group  = "demo"
	// Marker must appear in the database name and key prefix Reset wipes.
	Marker = "demo"
	// WebhookPath is where the receiver listens.
	WebhookPath = "/webhook"
)

// Tenants are the tenant slugs the demo creates.
var Tenants = []string{"acme", "globex"}

// Names of the demo actions, one set per schema.
const (
	ActionWebhook = "notify-webhook"
	ActionFlaky   = "flaky-sync"
	ActionBroken  = "broken-export"
)

// Errors callers branch on.
var (
	// ErrNotDemoDatabase: Reset was pointed at a database whose name lacks Marker.
	ErrNotDemoDatabase = errors.New(`demo: refusing to touch a database whose name does not contain "demo"`)
	// ErrNotDemoPrefix: Reset was given a key prefix that lacks Marker or holds glob characters.
	ErrNotDemoPrefix = errors.New(`demo: refusing to delete keys under a prefix that does not contain "demo" or holds glob characters`)
	// ErrNoSetup: the demo actions are missing; run `eventsctl demo setup` first.
	ErrNoSetup = errors.New("demo: not set up: run `eventsctl demo setup --reset` first")
)

// Schemas are the schemas the demo publishes to: admin and the tenants.
func Schemas() []string {
	out := []string{event.AdminSchema}
	for _, s := range Tenants {
		out = append(out, event.TenantPrefix+s)
	}
	return out
}

// ownedSchemas are dropped by Reset besides every tenant_* schema.
var ownedSchemas = []string{event.AdminSchema, event.TemplateSchema, "platform_common", store.OwnSchema}

// Reset drops every schema neo-events owns (admin, tenant_template,
// tenant_*, platform_common, neo_events) and deletes every Redis key under
// prefix. It refuses unless the database's name and the prefix contain Marker.
func Reset(ctx context.Context, pool *pgxpool.Pool, rdb redis.UniversalClient, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if err := CheckDatabase(ctx, pool); err != nil {
		return err
	}
	if err := dropSchemas(ctx, pool); err != nil {
		return err
	}
	// Pooled connections cache statements that name the dropped enum types
	// by OID; reused after the types are recreated they fail with "cache
	// lookup failed for type". Fresh connections start clean.
	pool.Reset()
	if _, err := DeleteKeys(ctx, rdb, prefix); err != nil {
		return err
	}
	return nil
}

func checkPrefix(prefix string) error {
	if !strings.Contains(prefix, Marker) || strings.ContainsAny(prefix, "*?[]\\ ") {
		return fmt.Errorf("%w (prefix %q)", ErrNotDemoPrefix, prefix)
	}
	return nil
}

func dropSchemas(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%' AND nspname <> 'tenant_template'`)
	if err != nil {
		return fmt.Errorf("demo reset: list tenant schemas: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("demo reset: list tenant schemas: %w", err)
	}
	var quoted []string
	for _, s := range tenants {
		// A schema outside the tenant grammar is not ours to name in SQL.
		if event.ValidateSchema(s) == nil {
			quoted = append(quoted, event.QuoteIdent(s))
		}
	}
	for _, s := range ownedSchemas {
		quoted = append(quoted, event.QuoteIdent(s))
	}
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+strings.Join(quoted, ", ")+" CASCADE"); err != nil {
		return fmt.Errorf("demo reset: drop schemas: %w", err)
	}
	return nil
}

// DeleteKeys deletes every key under prefix + ":" and returns how many went.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	if err := checkPrefix(prefix); err != nil {
		return 0, err
	}
	n, err := streams.DeletePrefix(ctx, rdb, prefix)
	if err != nil {
		return n, fmt.Errorf("demo reset: %w", err)
	}
	return n, nil
}

// Webhook is where the demo's webhook actions post, and with what secret.
type Webhook struct {
	// URL is http://127.0.0.1:<port>/webhook.
	URL string
	// Secret is the Standard Webhooks secret, whsec_<base64>.
	Secret string
}

// Addr is the URL's host:port, where the receiver must listen.
func (w Webhook) Addr() (string, error) {
	u, err := url.Parse(w.URL)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return "", fmt.Errorf("demo: webhook url %q is not http://<loopback>:<port>", w.URL)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("demo: webhook url %q is not on a loopback address", w.URL)
	}
	return u.Host, nil
}

// NewWebhook picks a fresh secret and, when addr has port 0 (or is empty), a
// free loopback port.
func NewWebhook(addr string) (Webhook, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Webhook{}, fmt.Errorf("demo: webhook address %q: %w", addr, err)
	}
	if port == "0" {
		if addr, err = freePort(host); err != nil {
			return Webhook{}, err
		}
	}
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return Webhook{}, fmt.Errorf("demo: webhook secret: %w", err)
	}
	w := Webhook{URL: "http://" + addr + WebhookPath, Secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	if _, err := w.Addr(); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("demo: find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Action is one demo action row.
type Action struct {
	Name, Type, Handler string
	Patterns            []string
	Config              json.RawMessage
	RetryPolicy         string
	Description         string
}

// Actions are the demo actions every schema gets.
func Actions(wh Webhook) []Action {
	cfg, _ := json.Marshal(map[string]any{"url": wh.URL, "secret": wh.Secret, "timeout_ms": 5000})
	return []Action{
		{Name: ActionWebhook, Type: "webhook", Handler: "webhook", Patterns: []string{"users.*"}, Config: cfg,
			RetryPolicy: `{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 200}`,
			Description: "demo: signed POST of every users.* event to the local receiver"},
		{Name: ActionFlaky, Type: "data_sync", Handler: FlakyHandler, Patterns: []string{"*"}, Config: json.RawMessage(`{}`),
			RetryPolicy: `{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 200}`,
			Description: "demo: fails the first 2 attempts of every event, then succeeds"},
		{Name: ActionBroken, Type: "data_pipeline", Handler: FailHandler, Patterns: []string{"orders.*"}, Config: json.RawMessage(`{}`),
			RetryPolicy: `{"max_retries": 2, "backoff_type": "fixed", "initial_delay_ms": 100}`,
			Description: "demo: always fails, so orders.* events end in the dead-letter queue"},
	}
}

// Setup migrates the database, creates the demo tenants (keeping existing
// ones) and upserts the demo actions, pointing the webhook at wh, in admin
// and every tenant schema. It returns the migrations it applied.
func Setup(ctx context.Context, pool *pgxpool.Pool, wh Webhook) ([]string, error) {
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		return applied, fmt.Errorf("demo setup: %w", err)
	}
	for _, slug := range Tenants {
		if _, err := store.CreateTenant(ctx, pool, slug); err != nil && !errors.Is(err, store.ErrTenantExists) {
			return applied, fmt.Errorf("demo setup: %w", err)
		}
	}
	for _, schema := range Schemas() {
		if err := upsertActions(ctx, pool, schema, Actions(wh)); err != nil {
			return applied, err
		}
	}
	return applied, nil
}

func upsertActions(ctx context.Context, pool *pgxpool.Pool, schema string, actions []Action) error {
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("demo setup: %w", err)
	}
	// Concurrency above the column default of 1, so a few thousand events
	// finish in seconds; the timeout is short so a stuck receiver shows quickly.
	sql := fmt.Sprintf(`
INSERT INTO %s.actions (name, action_type, handler_class, event_patterns, config, retry_policy,
                        max_concurrent_executions, timeout_seconds, description, owner_team)
VALUES ($1, $2::platform_common.action_type, $3, $4, $5::jsonb, $6::jsonb, 32, 10, $7, 'neo-events-demo')
ON CONFLICT (name) DO UPDATE SET action_type = EXCLUDED.action_type, handler_class = EXCLUDED.handler_class,
    event_patterns = EXCLUDED.event_patterns, config = EXCLUDED.config, retry_policy = EXCLUDED.retry_policy,
    max_concurrent_executions = EXCLUDED.max_concurrent_executions, timeout_seconds = EXCLUDED.timeout_seconds,
    description = EXCLUDED.description, is_active = true, deleted_at = NULL`, event.QuoteIdent(schema))
	for _, a := range actions {
		if _, err := pool.Exec(ctx, sql, a.Name, a.Type, a.Handler, a.Patterns, string(a.Config), a.RetryPolicy, a.Description); err != nil {
			return fmt.Errorf("demo setup: action %s in %s: %w", a.Name, schema, err)
		}
	}
	return nil
}

// LoadWebhook reads the webhook URL and secret Setup stored in admin's
// notify-webhook action, so `demo run` listens where the workers post.
func LoadWebhook(ctx context.Context, pool *pgxpool.Pool) (Webhook, error) {
	var raw []byte
	err := pool.QueryRow(ctx, `SELECT config FROM admin.actions WHERE name = $1`, ActionWebhook).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return Webhook{}, ErrNoSetup
	}
	if err != nil {
		var missing bool
		_ = pool.QueryRow(ctx, `SELECT to_regclass('admin.actions') IS NULL`).Scan(&missing)
		if missing {
			return Webhook{}, ErrNoSetup
		}
		return Webhook{}, fmt.Errorf("demo: read webhook action: %w", err)
	}
	var cfg struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return Webhook{}, fmt.Errorf("demo: webhook action config: %w", err)
	}
	wh := Webhook{URL: cfg.URL, Secret: cfg.Secret}
	if _, err := wh.Addr(); err != nil {
		return Webhook{}, err
	}
	return wh, nil
}

// CheckDatabase refuses (ErrNotDemoDatabase) a database whose name lacks Marker.
func CheckDatabase(ctx context.Context, pool *pgxpool.Pool) error {
	var db string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return fmt.Errorf("demo: read database name: %w", err)
	}
	if !strings.Contains(db, Marker) {
		return fmt.Errorf("%w (database %q)", ErrNotDemoDatabase, db)
	}
	return nil
}
