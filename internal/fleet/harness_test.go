package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/builtin"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/fleet"
	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
	"github.com/neo-events/neo-events/publisher"
)

// world is one isolated pipeline: a migrated database with tenants, a key
// prefix, a publisher, and workers started on demand.
type world struct {
	t       *testing.T
	dbURL   string
	pool    *pgxpool.Pool
	rdb     *redis.Client
	redis   string // URL of the Redis the workers use
	prefix  string
	group   string
	tenants []string
	pub     *publisher.Publisher
	calls   *calls
}

func newWorld(t *testing.T, slugs ...string) *world {
	t.Helper()
	tu.SkipIfShort(t)
	ctx := tu.Context(t)
	dbURL := tu.NewDatabase(t)
	pool := tu.NewPool(t, dbURL)
	_, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	w := &world{t: t, dbURL: dbURL, pool: pool, group: "g", calls: newCalls(), redis: tu.RedisURL()}
	for _, s := range slugs {
		schema, err := store.CreateTenant(ctx, pool, s)
		require.NoError(t, err)
		w.tenants = append(w.tenants, schema)
	}
	w.rdb, w.prefix = tu.NewRedis(t)
	w.startPublisher(w.rdb)
	return w
}

func (w *world) startPublisher(rdb *redis.Client) {
	pub, err := publisher.New(w.pool, rdb, publisher.Options{Prefix: w.prefix, Partitions: 4})
	require.NoError(w.t, err)
	w.t.Cleanup(func() { _ = pub.Close() })
	w.pub = pub
}

// schemas is admin plus the tenants.
func (w *world) schemas() []string { return append([]string{event.AdminSchema}, w.tenants...) }

func (w *world) config(consumer string) config.Config {
	c := config.Default()
	c.Redis.URL = w.redis
	c.Postgres.URL = w.dbURL
	c.Streams.Prefix = w.prefix
	c.Streams.Partitions = 4
	c.Worker.Group = w.group
	c.Worker.Consumer = consumer
	c.Worker.Concurrency = 32
	c.Worker.Block = 100 * time.Millisecond
	c.Worker.ClaimMinIdle = 2 * time.Second
	c.Worker.ClaimInterval = 200 * time.Millisecond
	c.Worker.ShutdownTimeout = 5 * time.Second
	c.Retry.InitialInterval = 100 * time.Millisecond
	c.Outbox.Interval = 200 * time.Millisecond
	c.Outbox.MinAge = time.Second
	c.HTTP.Addr = "127.0.0.1:0"
	c.Log.Level = "warn"
	return c
}

// registry has the test handlers: ok, flaky (fails twice per event),
// fail (always), permanent, toggle (fails while w.calls.broken is set).
func (w *world) registry() *handler.Registry {
	reg := handler.NewRegistry()
	c := w.calls
	reg.MustRegister("ok", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		c.add("ok", r)
		return nil
	}))
	reg.MustRegister("flaky", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		if n := c.add("flaky", r); n <= 2 {
			return fmt.Errorf("flaky failure %d", n)
		}
		return nil
	}))
	reg.MustRegister("fail", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		c.add("fail", r)
		return errors.New("always fails")
	}))
	reg.MustRegister("permanent", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		c.add("permanent", r)
		return handler.Permanent(errors.New("bad request"))
	}))
	reg.MustRegister("toggle", handler.HandlerFunc(func(_ context.Context, r *handler.Request) error {
		c.add("toggle", r)
		if c.isBroken() {
			return handler.Permanent(errors.New("toggle is broken"))
		}
		return nil
	}))
	require.NoError(w.t, builtin.Register(reg))
	return reg
}

// startWorker runs an in-process worker until the returned stop is called
// (or the test ends). stop returns Run's error.
func (w *world) startWorker(cfg config.Config, log *zap.Logger) (stop func() error) {
	w.t.Helper()
	if log == nil {
		log = zaptest.NewLogger(w.t, zaptest.Level(zap.WarnLevel))
	}
	wk, err := fleet.New(cfg, fleet.Options{Registry: w.registry(), Logger: log, StatsInterval: 200 * time.Millisecond})
	require.NoError(w.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("worker did not stop within 30s")
			}
		})
		return runErr
	}
	w.t.Cleanup(func() { _ = stop() })
	return stop
}

// addAction inserts an active action row and returns its id.
func (w *world) addAction(schema, name, handlerName string, patterns []string, retryPolicy string) uuid.UUID {
	w.t.Helper()
	if retryPolicy == "" {
		retryPolicy = `{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 100}`
	}
	var id uuid.UUID
	err := w.pool.QueryRow(context.Background(), fmt.Sprintf(`
		INSERT INTO %s.actions (name, action_type, handler_class, event_patterns, retry_policy, max_concurrent_executions, timeout_seconds)
		VALUES ($1, 'custom', $2, $3, $4::jsonb, 16, 10) RETURNING id`, event.QuoteIdent(schema)),
		name, handlerName, patterns, retryPolicy).Scan(&id)
	require.NoError(w.t, err)
	return id
}

func (w *world) newEvent(schema, typ string) *event.Event {
	w.t.Helper()
	e, err := event.New(schema, typ, "user", uuid.New(), json.RawMessage(`{"email":"a@example.com"}`))
	require.NoError(w.t, err)
	e.CorrelationID = uuid.New()
	return e
}

func (w *world) publish(evs ...*event.Event) {
	w.t.Helper()
	for _, e := range evs {
		require.NoError(w.t, w.pub.Publish(context.Background(), e.Schema, e))
	}
}

// waitFinal waits until every event has a final status and returns them by id.
func (w *world) waitFinal(evs []*event.Event, within time.Duration) map[uuid.UUID]*event.Event {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := map[uuid.UUID]*event.Event{}
		for _, e := range evs {
			row, err := store.GetEvent(context.Background(), w.pool, e.Schema, e.ID)
			if err == nil && (row.Status == event.StatusCompleted || row.Status == event.StatusFailed) {
				got[e.ID] = row
			}
		}
		if len(got) == len(evs) {
			return got
		}
		if time.Now().After(deadline) {
			var missing []string
			for _, e := range evs {
				if _, ok := got[e.ID]; !ok {
					row, _ := store.GetEvent(context.Background(), w.pool, e.Schema, e.ID)
					st := "no row"
					if row != nil {
						st = string(row.Status)
					}
					missing = append(missing, fmt.Sprintf("%s(%s)", e.ID, st))
					if len(missing) == 5 {
						break
					}
				}
			}
			w.t.Fatalf("%d of %d events final after %s; e.g. %s", len(got), len(evs), within, strings.Join(missing, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) executions(e *event.Event) []store.Execution {
	w.t.Helper()
	xs, err := store.ExecutionsForEvent(context.Background(), w.pool, e.Schema, e.ID)
	require.NoError(w.t, err)
	return xs
}

// calls counts handler invocations per (handler, event).
type calls struct {
	mu     sync.Mutex
	n      map[string]int
	broken bool
}

func newCalls() *calls { return &calls{n: map[string]int{}} }

func (c *calls) add(name string, r *handler.Request) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := name + "/" + r.Event.ID.String()
	c.n[k]++
	return c.n[k]
}

func (c *calls) get(name string, id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name+"/"+id.String()]
}

func (c *calls) setBroken(b bool) {
	c.mu.Lock()
	c.broken = b
	c.mu.Unlock()
}

func (c *calls) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// TestMain keeps the worker binary for the process tests in one place.
func TestMain(m *testing.M) {
	code := m.Run()
	if workerBin != "" {
		_ = os.RemoveAll(workerBinDir)
	}
	os.Exit(code)
}
