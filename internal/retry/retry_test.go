package retry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/retry"
)

const ms = time.Millisecond

func TestDelayWithoutJitter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    retry.Policy
		want []time.Duration // Delay(1), Delay(2), ...
	}{
		{"exponential x2", retry.Policy{Backoff: retry.Exponential, Initial: 100 * ms, Max: time.Hour, Multiplier: 2},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms}},
		{"exponential x3 capped", retry.Policy{Backoff: retry.Exponential, Initial: time.Second, Max: 10 * time.Second, Multiplier: 3},
			[]time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"exponential default multiplier", retry.Policy{Initial: time.Second, Max: time.Minute},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"exponential multiplier below 1 means default", retry.Policy{Initial: time.Second, Max: time.Minute, Multiplier: 0.5},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"linear", retry.Policy{Backoff: retry.Linear, Initial: 500 * ms, Max: 2 * time.Second},
			[]time.Duration{500 * ms, time.Second, 1500 * ms, 2 * time.Second, 2 * time.Second}},
		{"fixed", retry.Policy{Backoff: retry.Fixed, Initial: 750 * ms, Max: time.Second, Multiplier: 5},
			[]time.Duration{750 * ms, 750 * ms, 750 * ms}},
		{"fixed above max is capped", retry.Policy{Backoff: retry.Fixed, Initial: 2 * time.Second, Max: time.Second},
			[]time.Duration{time.Second, time.Second}},
		{"zero initial", retry.Policy{Backoff: retry.Exponential, Initial: 0, Max: time.Second},
			[]time.Duration{0, 0, 0}},
		{"negative initial is zero", retry.Policy{Backoff: retry.Linear, Initial: -time.Second, Max: time.Second},
			[]time.Duration{0, 0}},
		{"no max means ceiling", retry.Policy{Backoff: retry.Fixed, Initial: 48 * time.Hour},
			[]time.Duration{retry.Ceiling, retry.Ceiling}},
		{"max above ceiling", retry.Policy{Backoff: retry.Fixed, Initial: 48 * time.Hour, Max: 72 * time.Hour},
			[]time.Duration{retry.Ceiling}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make([]time.Duration, len(tc.want))
			for i := range got {
				got[i] = tc.p.Delay(i+1, 0.7) // u is irrelevant without jitter
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDelayRetryBelowOneIsFirstRetry(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Initial: time.Second, Max: time.Minute}
	require.Equal(t, time.Second, p.Delay(0, 0.5))
	require.Equal(t, time.Second, p.Delay(-5, 0.5))
}

func TestDelayHugeRetryDoesNotOverflow(t *testing.T) {
	t.Parallel()
	for _, b := range []retry.Backoff{retry.Exponential, retry.Linear, retry.Fixed} {
		p := retry.Policy{Backoff: b, Initial: time.Hour, Max: 5 * time.Minute, Multiplier: 100, Jitter: 0.5}
		for _, n := range []int{1, 64, 1000, math.MaxInt32, math.MaxInt} {
			for _, u := range []float64{0, 0.5, 0.999999} {
				d := p.Delay(n, u)
				require.GreaterOrEqual(t, d, 150*time.Second, "%s retry %d u %g", b, n, u)
				require.LessOrEqual(t, d, 5*time.Minute, "%s retry %d u %g", b, n, u)
			}
		}
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		p      retry.Policy
		retry  int
		lo, hi time.Duration
	}{
		{"exponential j=0.2", retry.Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}, 3,
			3200 * ms, 4800 * ms},
		{"linear j=0.5", retry.Policy{Backoff: retry.Linear, Initial: time.Second, Max: time.Minute, Jitter: 0.5}, 2,
			time.Second, 3 * time.Second},
		{"fixed j=0", retry.Policy{Backoff: retry.Fixed, Initial: time.Second, Max: time.Minute}, 9,
			time.Second, time.Second},
		{"capped after jitter", retry.Policy{Initial: time.Second, Max: 4500 * ms, Multiplier: 2, Jitter: 0.2}, 3,
			3200 * ms, 4500 * ms},
		{"at the cap", retry.Policy{Initial: time.Second, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}, 10,
			4 * time.Second, 5 * time.Second},
		{"jitter above 1 is clamped", retry.Policy{Backoff: retry.Fixed, Initial: time.Second, Max: time.Minute, Jitter: 7}, 1,
			time.Millisecond, 1999 * ms},
		{"negative jitter is none", retry.Policy{Backoff: retry.Fixed, Initial: time.Second, Max: time.Minute, Jitter: -1}, 1,
			time.Second, time.Second},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lo, hi := tc.p.Bounds(tc.retry)
			require.Equal(t, tc.lo, lo, "lower bound")
			require.Equal(t, tc.hi, hi, "upper bound")
			require.Equal(t, lo, tc.p.Delay(tc.retry, 0), "u=0 is the lower bound")
			require.Equal(t, hi, tc.p.Delay(tc.retry, 1), "u=1 is the upper bound")
			require.Equal(t, lo, tc.p.Delay(tc.retry, -3), "u below 0 is clamped")
			require.Equal(t, lo, tc.p.Delay(tc.retry, math.NaN()), "NaN u is clamped")
			require.Equal(t, hi, tc.p.Delay(tc.retry, 42), "u above 1 is clamped")
		})
	}
	// Property: every draw lands inside the bounds and larger draws never
	// give shorter delays.
	p := retry.Policy{Initial: 100 * ms, Max: 30 * time.Second, Multiplier: 2.5, Jitter: 0.3}
	for n := 1; n <= 12; n++ {
		lo, hi := p.Bounds(n)
		var prevU float64
		prev := p.Delay(n, 0)
		for range 2000 {
			u := rng.Float64()
			d := p.Delay(n, u)
			require.True(t, d >= lo && d <= hi, "retry %d u %g: %s outside [%s, %s]", n, u, d, lo, hi)
			if u >= prevU {
				require.GreaterOrEqual(t, d, prev, "monotone in u")
			}
			prevU, prev = u, d
		}
	}
}

func TestExhausted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		maxRetries, attempt int
		want                bool
	}{
		{3, 1, false}, {3, 3, false}, {3, 4, true}, {3, 5, true},
		{0, 1, true}, {0, 0, false}, {1, 1, false}, {1, 2, true},
		{-2, 1, true}, // a negative budget means no retry at all
	}
	for _, tc := range tests {
		p := retry.Policy{MaxRetries: tc.maxRetries}
		require.Equal(t, tc.want, p.Exhausted(tc.attempt), "max_retries %d attempt %d", tc.maxRetries, tc.attempt)
	}
	require.Equal(t, 4, retry.Policy{MaxRetries: 3}.MaxAttempts())
}

func TestNext(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, MaxRetries: 3}
	long := retry.Policy{Initial: time.Second, Max: 3 * time.Hour, MaxRetries: 3}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		p       retry.Policy
		attempt int
		err     error
		delay   time.Duration
		retry   bool
	}{
		{"success", p, 1, nil, 0, false},
		{"first failure", p, 1, boom, time.Second, true},
		{"third failure", p, 3, boom, 4 * time.Second, true},
		{"last attempt", p, 4, boom, 0, false},
		{"permanent", p, 1, handler.Permanent(boom), 0, false},
		{"wrapped permanent", p, 1, fmt.Errorf("x: %w", handler.Permanent(boom)), 0, false},
		{"permanent beats retry after", p, 1, handler.Permanent(handler.RetryAfter(time.Second, boom)), 0, false},
		{"retry after", p, 1, handler.RetryAfter(7*time.Second, boom), 7 * time.Second, true},
		{"retry after above max is allowed up to an hour", p, 2, handler.RetryAfter(30*time.Minute, boom), 30 * time.Minute, true},
		{"retry after capped at an hour", p, 2, handler.RetryAfter(5*time.Hour, boom), retry.MaxRetryAfter, true},
		{"retry after capped at a longer max", long, 2, handler.RetryAfter(5*time.Hour, boom), 3 * time.Hour, true},
		{"retry after zero", p, 1, handler.RetryAfter(0, boom), 0, true},
		{"retry after but exhausted", p, 4, handler.RetryAfter(time.Second, boom), 0, false},
		{"panic is retried", p, 2, &handler.PanicError{Value: "x"}, 2 * time.Second, true},
		{"no retries", retry.Policy{Initial: time.Second}, 1, boom, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, ok := retry.Next(tc.p, tc.attempt, tc.err, 0.5)
			require.Equal(t, tc.retry, ok)
			require.Equal(t, tc.delay, d)
		})
	}
}

func TestFromConfig(t *testing.T) {
	t.Parallel()
	got := retry.FromConfig(config.Default().Retry)
	want := retry.Policy{Backoff: retry.Exponential, Initial: config.DefaultInitialInterval,
		Max: config.DefaultMaxInterval, Multiplier: config.DefaultMultiplier,
		MaxRetries: config.DefaultMaxAttempts - 1, Jitter: config.DefaultJitter}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("policy (-want +got):\n%s", diff)
	}
	require.NoError(t, got.Validate())
	require.Equal(t, 0, retry.FromConfig(config.Retry{MaxAttempts: 0}).MaxRetries)
}

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	fallback := retry.Policy{Backoff: retry.Exponential, Initial: time.Second, Max: 5 * time.Minute,
		Multiplier: 2, MaxRetries: 3, Jitter: 0.2}
	with := func(f func(*retry.Policy)) retry.Policy {
		p := fallback
		f(&p)
		return p
	}
	tests := []struct {
		name       string
		action     string
		eventMax   int
		eventHas   bool
		want       retry.Policy
		wantErrKey string
	}{
		{"config only", ``, 0, false, fallback, ""},
		{"null policy", `null`, 0, false, fallback, ""},
		{"empty object", ` {} `, 0, false, fallback, ""},
		{"event max_retries beats config", `{}`, 7, true, with(func(p *retry.Policy) { p.MaxRetries = 7 }), ""},
		{"event max_retries zero", ``, 0, true, with(func(p *retry.Policy) { p.MaxRetries = 0 }), ""},
		{"action beats event", `{"max_retries": 1}`, 7, true, with(func(p *retry.Policy) { p.MaxRetries = 1 }), ""},
		{"action null key is absent", `{"max_retries": null}`, 7, true, with(func(p *retry.Policy) { p.MaxRetries = 7 }), ""},
		{"platform default", `{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 1000}`, 9, true, fallback, ""},
		{"every key", `{"max_retries": 5, "backoff_type": "LINEAR", "initial_delay_ms": 250, "max_delay_ms": 60000, "multiplier": 1.5, "jitter": 0.1}`, 9, true,
			retry.Policy{Backoff: retry.Linear, Initial: 250 * ms, Max: time.Minute, Multiplier: 1.5, MaxRetries: 5, Jitter: 0.1}, ""},
		{"float forms of integers", `{"max_retries": 2.0, "initial_delay_ms": 1e3}`, 0, false,
			with(func(p *retry.Policy) { p.MaxRetries = 2 }), ""},
		{"numeric strings", `{"max_retries": "4"}`, 0, false, with(func(p *retry.Policy) { p.MaxRetries = 4 }), ""},
		{"unknown keys ignored", `{"retry_on": ["timeout"], "fixed": true}`, 0, false, fallback, ""},
		{"initial above config max raises max", `{"initial_delay_ms": 600000}`, 0, false,
			with(func(p *retry.Policy) { p.Initial = 10 * time.Minute; p.Max = 10 * time.Minute }), ""},
		{"zero jitter", `{"jitter": 0}`, 0, false, with(func(p *retry.Policy) { p.Jitter = 0 }), ""},

		{"not an object", `[1]`, 7, true, with(func(p *retry.Policy) { p.MaxRetries = 7 }), "retry_policy"},
		{"not JSON", `{"max_retries":`, 0, false, fallback, "retry_policy"},
		{"string policy", `"exponential"`, 0, false, fallback, "retry_policy"},
		{"negative retries", `{"max_retries": -1}`, 0, false, fallback, "max_retries"},
		{"fractional retries", `{"max_retries": 1.5}`, 0, false, fallback, "max_retries"},
		{"too many retries", `{"max_retries": 100000}`, 0, false, fallback, "max_retries"},
		{"bool retries", `{"max_retries": true}`, 0, false, fallback, "retry_policy"},
		{"unknown backoff", `{"backoff_type": "fibonacci"}`, 0, false, fallback, "backoff_type"},
		{"backoff number", `{"backoff_type": 2}`, 0, false, fallback, "retry_policy"},
		{"negative initial", `{"initial_delay_ms": -5}`, 0, false, fallback, "initial_delay_ms"},
		{"initial above a day", `{"initial_delay_ms": 86400001}`, 0, false, fallback, "initial_delay_ms"},
		{"max below initial", `{"initial_delay_ms": 2000, "max_delay_ms": 1000}`, 0, false, fallback, "max_delay_ms"},
		{"zero max", `{"max_delay_ms": 0}`, 0, false, fallback, "max_delay_ms"},
		{"multiplier below one", `{"multiplier": 0.5}`, 0, false, fallback, "multiplier"},
		{"multiplier huge", `{"multiplier": 1e308}`, 0, false, fallback, "multiplier"},
		{"jitter one", `{"jitter": 1}`, 0, false, fallback, "jitter"},
		{"jitter negative", `{"jitter": -0.1}`, 0, false, fallback, "jitter"},
		{"bad event max_retries", `{}`, -1, true, fallback, "event max_retries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := retry.Resolve(json.RawMessage(tc.action), tc.eventMax, tc.eventHas, fallback)
			if tc.wantErrKey != "" {
				require.ErrorIs(t, err, retry.ErrInvalidPolicy)
				require.Contains(t, err.Error(), tc.wantErrKey)
			} else {
				require.NoError(t, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("policy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := retry.Policy{Backoff: retry.Fixed, Initial: time.Second, Max: time.Minute, MaxRetries: 3, Jitter: 0.5}
	require.NoError(t, ok.Validate())
	require.NoError(t, retry.Policy{}.Validate(), "the zero policy means: no retries")
	bad := map[string]retry.Policy{
		"backoff_type":  {Backoff: "random"},
		"max_retries":   {MaxRetries: -1},
		"initial_delay": {Initial: -time.Second},
		"max_delay":     {Initial: time.Minute, Max: time.Second},
		"multiplier":    {Multiplier: math.NaN()},
		"jitter":        {Jitter: 1},
	}
	for key, p := range bad {
		err := p.Validate()
		require.ErrorIs(t, err, retry.ErrInvalidPolicy, key)
		require.Contains(t, err.Error(), key)
	}
}

func TestDelayDoesNotAllocate(t *testing.T) {
	p := retry.FromConfig(config.Default().Retry)
	allocs := testing.AllocsPerRun(100, func() { _ = p.Delay(5, 0.3) })
	require.Zero(t, allocs)
}

func BenchmarkDelay(b *testing.B) {
	p := retry.FromConfig(config.Default().Retry)
	b.ReportAllocs()
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += p.Delay(i%16+1, 0.42)
	}
	_ = sink
}
