// Package retry is the retry policy of neo-events (DESIGN §3): which of the
// action's retry_policy, the event's max_retries and the worker config
// decides, how long to wait before each retry, and when to stop. It is pure
// computation: no clock, no randomness, no I/O. Callers pass the random draw,
// so every delay is reproducible in tests.
package retry

import (
	"math"
	"time"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
)

// Backoff is how the delay grows from one retry to the next. The values
// are those of the platform's retry_policy.backoff_type.
type Backoff string

// The backoff types.
const (
	// Exponential waits Initial × Multiplier^(n-1) before retry n.
	Exponential Backoff = "exponential"
	// Linear waits Initial × n before retry n.
	Linear Backoff = "linear"
	// Fixed waits Initial before every retry.
	Fixed Backoff = "fixed"
)

// Valid reports whether b is a known backoff type.
func (b Backoff) Valid() bool { return b == Exponential || b == Linear || b == Fixed }

// Limits on any policy, whatever its source.
const (
	// Ceiling caps every delay, even of a policy whose Max is larger or
	// unset: a retry parked for more than a day is a bug, not a policy.
	Ceiling = 24 * time.Hour
	// MaxRetryAfter caps a handler's RetryAfter request when the policy's
	// Max is smaller: a server may ask for a longer wait than our own
	// backoff would pick, but not hold an event for days.
	MaxRetryAfter = time.Hour
	// MaxRetriesLimit bounds max_retries (the config's max_attempts is at most 1000).
	MaxRetriesLimit = 999
	// DefaultMultiplier is used for exponential backoff when a policy has
	// no multiplier (the platform's retry_policy usually has none).
	DefaultMultiplier = 2.0
)

// Policy says how often and how late to retry a failed action.
type Policy struct {
	// Backoff is the growth curve. Empty means Exponential.
	Backoff Backoff
	// Initial is the delay before the first retry.
	Initial time.Duration
	// Max caps one delay, after jitter. Zero or less means Ceiling.
	Max time.Duration
	// Multiplier grows exponential delays; below 1 means DefaultMultiplier.
	Multiplier float64
	// MaxRetries counts retries after the first attempt: 3 means at most
	// 4 attempts.
	MaxRetries int
	// Jitter in [0,1) spreads a delay d uniformly over [d(1-j), d(1+j)].
	Jitter float64
}

// FromConfig is the worker's fallback policy: exponential, from the retry
// section of the config. MaxRetries is MaxAttempts-1.
func FromConfig(c config.Retry) Policy {
	return Policy{
		Backoff:    Exponential,
		Initial:    c.InitialInterval,
		Max:        c.MaxInterval,
		Multiplier: c.Multiplier,
		MaxRetries: max(c.MaxAttempts-1, 0),
		Jitter:     c.Jitter,
	}
}

// MaxAttempts is MaxRetries+1: every attempt, the first included.
func (p Policy) MaxAttempts() int { return max(p.MaxRetries, 0) + 1 }

// Exhausted reports whether attempt (1-based) was the last one allowed:
// attempt >= MaxRetries+1.
func (p Policy) Exhausted(attempt int) bool { return attempt >= p.MaxAttempts() }

// Delay is the wait before retry number retry (1 is the first retry, made
// after attempt 1 failed). u in [0,1) is the random draw (rand.Float64());
// values outside are clamped. The base delay of the backoff curve is spread
// by Jitter to [base(1-j), base(1+j)], then capped at Max (and Ceiling).
// The result is never negative. Delay does not allocate.
func (p Policy) Delay(retry int, u float64) time.Duration {
	base, limit := p.base(retry)
	j := p.jitter()
	u = clamp(u, 0, 1)
	return toDuration(base*(1-j+2*j*u), limit)
}

// Bounds is the range Delay(retry, u) covers for u in [0,1].
func (p Policy) Bounds(retry int) (lo, hi time.Duration) {
	base, limit := p.base(retry)
	j := p.jitter()
	return toDuration(base*(1-j), limit), toDuration(base*(1+j), limit)
}

// base returns the un-jittered delay of retry n in nanoseconds, already
// capped (so jitter cannot overflow), and the cap.
func (p Policy) base(n int) (base, limit float64) {
	limit = float64(Ceiling)
	if p.Max > 0 && p.Max < Ceiling {
		limit = float64(p.Max)
	}
	n = max(n, 1)
	initial := max(float64(p.Initial), 0)
	switch p.Backoff {
	case Fixed:
		base = initial
	case Linear:
		base = initial * float64(n)
	default:
		mult := p.Multiplier
		if !(mult >= 1) { // also catches NaN
			mult = DefaultMultiplier
		}
		base = initial * math.Pow(mult, float64(n-1))
	}
	if !(base <= limit) { // also catches +Inf and NaN
		base = limit
	}
	return base, limit
}

// jitter clamps the factor to [0,1) so a hand-built Policy cannot produce
// a negative delay.
func (p Policy) jitter() float64 {
	if !(p.Jitter > 0) {
		return 0
	}
	return min(p.Jitter, 0.999)
}

func toDuration(ns, limit float64) time.Duration {
	ns = clamp(ns, 0, limit)
	return time.Duration(ns)
}

func clamp(v, lo, hi float64) float64 {
	if !(v >= lo) { // also catches NaN
		return lo
	}
	return min(v, hi)
}

// Next decides what happens after attempt (1-based) failed with err:
// retry after delay, or stop (retry false). It stops for a nil err, a
// Permanent error, or when the policy is exhausted. A handler's RetryAfter
// replaces the backoff delay, clamped to [0, max(Max, MaxRetryAfter)] and
// never above Ceiling; the retry budget still applies. u is the random draw
// for jitter.
func Next(p Policy, attempt int, err error, u float64) (delay time.Duration, retry bool) {
	if err == nil || handler.IsPermanent(err) || p.Exhausted(attempt) {
		return 0, false
	}
	if d, ok := handler.RetryDelay(err); ok {
		return min(max(d, 0), p.retryAfterCap()), true
	}
	return p.Delay(attempt, u), true
}

func (p Policy) retryAfterCap() time.Duration {
	return min(max(p.Max, MaxRetryAfter), Ceiling)
}
