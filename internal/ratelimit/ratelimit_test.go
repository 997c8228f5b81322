package ratelimit

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/testutil"
)

func TestAllowUpToLimitThenRefuse(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	l := New(rdb, prefix)

	for i := range 5 {
		ok, wait, err := l.Allow(ctx, "tenant_a:act", 5)
		require.NoError(t, err)
		require.True(t, ok, "call %d", i+1)
		require.Zero(t, wait)
	}
	ok, wait, err := l.Allow(ctx, "tenant_a:act", 5)
	require.NoError(t, err)
	require.False(t, ok, "sixth call within the minute must be refused")
	require.Greater(t, wait, 50*time.Second, "the oldest call was just now, so the slot frees in about a minute")
	require.LessOrEqual(t, wait, Window)

	// Another key has its own budget.
	ok, _, err = l.Allow(ctx, "tenant_a:other", 5)
	require.NoError(t, err)
	require.True(t, ok)

	ttl, err := rdb.PTTL(ctx, l.Key("tenant_a:act")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "keys must expire")
	require.LessOrEqual(t, ttl, Window+2*time.Second)
}

func TestTwoLimitersShareTheBudget(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	rdb1, prefix := testutil.NewRedis(t)
	opt, err := redis.ParseURL(testutil.RedisURL())
	require.NoError(t, err)
	rdb2 := redis.NewClient(opt) // a second connection pool, as a second pod would have
	t.Cleanup(func() { _ = rdb2.Close() })
	limiters := []*Limiter{New(rdb1, prefix), New(rdb2, prefix)}

	const limit = 20
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := limiters[i%2].Allow(ctx, "admin:shared", limit)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, limit, allowed.Load(), "exactly the limit is allowed across both limiters")
}

func TestWindowSlides(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	l := New(rdb, prefix)
	l.window = 300 * time.Millisecond

	for range 2 {
		ok, _, err := l.Allow(ctx, "k", 2)
		require.NoError(t, err)
		require.True(t, ok)
	}
	ok, wait, err := l.Allow(ctx, "k", 2)
	require.NoError(t, err)
	require.False(t, ok)
	require.Greater(t, wait, time.Duration(0))
	require.LessOrEqual(t, wait, l.window)

	time.Sleep(wait + 20*time.Millisecond)
	ok, _, err = l.Allow(ctx, "k", 2)
	require.NoError(t, err)
	require.True(t, ok, "a slot frees once the oldest call leaves the window")
}

func TestNoLimitAndBadKeys(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	ctx := testutil.Context(t)
	rdb, prefix := testutil.NewRedis(t)
	l := New(rdb, prefix)

	tests := []struct {
		name      string
		key       string
		perMinute int
		wantOK    bool
		wantErr   error
	}{
		{name: "zero limit allows", key: "k", perMinute: 0, wantOK: true},
		{name: "negative limit allows", key: "k", perMinute: -3, wantOK: true},
		{name: "empty key", key: "", perMinute: 1, wantErr: ErrInvalidKey},
		{name: "huge key", key: strings.Repeat("x", MaxKeyLen+1), perMinute: 1, wantErr: ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, _, err := l.Allow(ctx, tc.key, tc.perMinute)
			if tc.wantErr != nil {
				require.True(t, errors.Is(err, tc.wantErr), "got %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantOK, ok)
		})
	}
	n, err := rdb.Exists(ctx, l.Key("k")).Result()
	require.NoError(t, err)
	require.Zero(t, n, "an unlimited call records nothing")
}
