// Package ratelimit is the fleet-wide per-action rate limit of the worker
// (`actions.rate_limit_per_minute`). Every worker process asks the same Redis,
// so N pods share one budget instead of each allowing the full rate.
//
// The limit is an exact sliding window: a sorted set per key holds the times
// of the calls allowed in the last window, and a Lua script trims, counts and
// records atomically, so two workers can never both take the last slot. Time
// comes from the Redis server (TIME), not from the workers, whose clocks may
// disagree. Memory per key is one entry per allowed call in the window, so
// the design suits the per-minute limits actions use (tens to thousands), not
// millions per minute.
package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Window is the span a per-minute limit counts over.
const Window = time.Minute

// MaxKeyLen bounds a key so that a malformed caller cannot build huge Redis keys.
const MaxKeyLen = 512

// ErrInvalidKey is returned for an empty or over-long key.
var ErrInvalidKey = errors.New("invalid rate limit key")

// Limiter is a fleet-wide sliding-window limiter. It is safe for concurrent use.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	window time.Duration
}

// New returns a limiter whose keys are `{prefix}:ratelimit:<key>`.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix, window: Window}
}

// script trims the window, then either records this call or reports how long
// until the oldest recorded call leaves the window.
//
// KEYS[1] the set; ARGV[1] limit; ARGV[2] window in microseconds; ARGV[3] a
// unique member suffix. Returns {allowed (0/1), retry-in microseconds}.
var script = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return {0, wait}
`)

// Allow records one call under key if fewer than perMinute calls were allowed
// in the last minute across the fleet. When it refuses, retryIn says when a
// slot frees up. perMinute <= 0 means no limit.
func (l *Limiter) Allow(ctx context.Context, key string, perMinute int) (ok bool, retryIn time.Duration, err error) {
	if perMinute <= 0 {
		return true, 0, nil
	}
	if key == "" || len(key) > MaxKeyLen {
		return false, 0, fmt.Errorf("%w: length %d, want 1..%d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	res, err := script.Run(ctx, l.rdb, []string{l.Key(key)}, perMinute, l.window.Microseconds(), nonce()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit %s: script returned %d values, want 2", key, len(res))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

// Key returns the Redis key that holds key's window.
func (l *Limiter) Key(key string) string { return l.prefix + ":ratelimit:" + key }

// nonce keeps members unique when two calls land in the same microsecond.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
