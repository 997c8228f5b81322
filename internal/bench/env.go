package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/builtin"
	"github.com/neo-events/neo-events/internal/store"
	"github.com/neo-events/neo-events/internal/streams"
)

// benchGroup is the consumer group of the bench's workers.
const benchGroup = "bench"

// env is one isolated playground: a fresh database with the platform's
// schemas and the bench's tenants and actions, and a private key prefix.
type env struct {
	cfg     Config
	dbName  string
	dbURL   string
	pool    *pgxpool.Pool
	rdb     *redis.Client
	prefix  string
	schemas []string
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// newEnv creates the database and connects; close drops it unless Keep.
func newEnv(ctx context.Context, cfg Config) (*env, error) {
	e := &env{cfg: cfg, dbName: cfg.Database, prefix: randomName("bench")}
	if e.dbName == "" {
		e.dbName = randomName("neo_bench")
	}
	if err := e.createDatabase(ctx); err != nil {
		return nil, err
	}
	if err := e.connect(ctx); err != nil {
		e.close(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := e.prepare(ctx); err != nil {
		e.close(context.WithoutCancel(ctx))
		return nil, err
	}
	return e, nil
}

func (e *env) createDatabase(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, e.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	// The name matched databaseName (or is ours), so it is a safe identifier.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+event.QuoteIdent(e.dbName)); err != nil {
		return fmt.Errorf("create database %s (the bench wants a fresh one): %w", e.dbName, err)
	}
	u, err := url.Parse(e.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres url: %w", err)
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()
	return nil
}

func (e *env) connect(ctx context.Context) error {
	pcfg, err := pgxpool.ParseConfig(e.dbURL)
	if err != nil {
		return fmt.Errorf("postgres url: %w", err)
	}
	pcfg.MaxConns = max(pcfg.MaxConns, 16)
	if e.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return fmt.Errorf("connect to %s: %w", e.dbName, err)
	}
	ropt, err := redis.ParseURL(e.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	ropt.PoolSize = max(ropt.PoolSize, 64)
	e.rdb = redis.NewClient(ropt)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect to Redis: %w", err)
	}
	return nil
}

// prepare migrates, creates the tenants and gives every schema the
// ActionsPerEvent noop actions that match every event.
func (e *env) prepare(ctx context.Context) error {
	if _, err := store.Migrate(ctx, e.pool); err != nil {
		return err
	}
	if e.cfg.Tune {
		// Before the tenants, which inherit it from tenant_template.
		if _, err := store.Tune(ctx, e.pool); err != nil {
			return err
		}
	}
	if e.cfg.Tenants == 0 {
		e.schemas = []string{event.AdminSchema}
	}
	for i := 0; i < e.cfg.Tenants; i++ {
		s, err := store.CreateTenant(ctx, e.pool, "bench_"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		e.schemas = append(e.schemas, s)
	}
	for _, s := range e.schemas {
		if err := e.addActions(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) addActions(ctx context.Context, schema string) error {
	b := &pgx.Batch{}
	for i := 0; i < e.cfg.ActionsPerEvent; i++ {
		// High max_concurrent_executions: the bench measures the pipeline,
		// not a per-action concurrency cap.
		b.Queue(`INSERT INTO `+event.QuoteIdent(schema)+`.actions
			(name, action_type, handler_class, event_patterns, max_concurrent_executions, timeout_seconds)
			VALUES ($1, 'custom', $2, ARRAY['*'], 100000, 10)`, "bench_noop_"+strconv.Itoa(i), builtin.Noop)
	}
	if err := e.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("create actions in %s: %w", schema, err)
	}
	return nil
}

// close removes everything the run created, unless Keep.
func (e *env) close(ctx context.Context) error {
	var errs []error
	if e.rdb != nil {
		if !e.cfg.Keep {
			errs = append(errs, deleteKeys(ctx, e.rdb, e.prefix))
		}
		_ = e.rdb.Close()
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.cfg.Keep || e.dbURL == "" {
		return errors.Join(errs...)
	}
	admin, err := pgx.Connect(ctx, e.cfg.PostgresURL)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("drop database %s: %w", e.dbName, err))...)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+event.QuoteIdent(e.dbName)+" WITH (FORCE)"); err != nil {
		errs = append(errs, fmt.Errorf("drop database %s: %w", e.dbName, err))
	}
	return errors.Join(errs...)
}

// deleteKeys removes every key under prefix.
func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string) error {
	_, err := streams.DeletePrefix(ctx, rdb, prefix)
	return err
}

// rssMiB reads VmRSS of this process; 0 where /proc is not there.
func rssMiB() float64 {
	total, _ := rssOf(os.Getpid())
	return total
}
