// Package testutil gives integration tests their own isolated piece of the
// real services: a fresh PostgreSQL database per test and a unique Redis key
// prefix per test, both removed in t.Cleanup. Connection URLs come from
// TEST_DATABASE_URL and TEST_REDIS_URL (scripts/devstack.sh prints them), with
// the local defaults.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/internal/streams"
)

// Default service URLs, matching scripts/devstack.sh.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// DatabaseURL is the admin database tests create their databases from.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// RedisURL is the Redis tests use.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// Context returns a context cancelled at the end of the test (or after two
// minutes, so a hung test fails instead of stalling CI).
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// RandomName returns prefix_<12 hex chars>, usable as a database, schema
// slug or key prefix.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// NewDatabase creates an empty database for this test and returns its URL.
// The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, DatabaseURL())
	if err != nil {
		t.Fatalf("connect to PostgreSQL at %s (run scripts/devstack.sh): %v", DatabaseURL(), err)
	}
	defer admin.Close(ctx)
	name := RandomName("neo_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), DatabaseURL())
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(DatabaseURL())
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewPool opens a pgx pool on url, closed when the test ends.
func NewPool(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewRedis returns a client on the test Redis and a key prefix unique to
// this test. Every key under the prefix is deleted when the test ends.
func NewRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("parse TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("connect to Redis at %s (run scripts/devstack.sh): %v", RedisURL(), err)
	}
	prefix := RandomName("t")
	t.Cleanup(func() {
		DeleteKeys(context.Background(), rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// DeleteKeys removes every key that starts with prefix + ":".
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) {
	_, _ = streams.DeletePrefix(ctx, rdb, prefix)
}

// SkipIfShort skips integration tests under `go test -short`.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL and Redis")
	}
}
