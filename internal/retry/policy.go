package retry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidPolicy is wrapped by every error about a retry policy, so
// callers can tell a bad `actions.retry_policy` from other failures.
var ErrInvalidPolicy = errors.New("invalid retry policy")

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidPolicy, key, fmt.Sprintf(format, args...))
}

// actionPolicy is `actions.retry_policy` as the platform writes it, for
// example {"max_retries": 3, "backoff_type": "exponential",
// "initial_delay_ms": 1000}. Numbers stay json.Number so 1000.0 and 1e3 are
// accepted but 1.5 retries is not. Unknown keys are ignored: the platform
// may add some.
type actionPolicy struct {
	MaxRetries     *json.Number `json:"max_retries"`
	BackoffType    *string      `json:"backoff_type"`
	InitialDelayMS *json.Number `json:"initial_delay_ms"`
	MaxDelayMS     *json.Number `json:"max_delay_ms"`
	Multiplier     *json.Number `json:"multiplier"`
	Jitter         *json.Number `json:"jitter"`
}

// Resolve builds the policy for one (event, action) pair. Sources, highest
// first, key by key:
//
//  1. the action's retry_policy JSON, for the keys it has (null counts as
//     absent; nil, empty or null JSON means no keys);
//  2. the event's max_retries, when eventHasMaxRetries (only MaxRetries);
//  3. fallback (the worker config, see FromConfig).
//
// When the action sets initial_delay_ms above the fallback's Max and no
// max_delay_ms, Max is raised to the initial delay rather than refusing.
//
// A malformed policy or out-of-range value yields an error wrapping
// ErrInvalidPolicy; the Policy returned with it is the one sources 2 and 3
// give, so the caller can log and carry on with it.
func Resolve(actionPolicy json.RawMessage, eventMaxRetries int, eventHasMaxRetries bool, fallback Policy) (Policy, error) {
	p := fallback
	if eventHasMaxRetries {
		if eventMaxRetries < 0 || eventMaxRetries > MaxRetriesLimit {
			return fallback, invalid("event max_retries", "%d is outside 0..%d", eventMaxRetries, MaxRetriesLimit)
		}
		p.MaxRetries = eventMaxRetries
	}
	got, err := applyAction(p, actionPolicy)
	if err != nil {
		return p, err
	}
	return got, nil
}

func applyAction(p Policy, raw json.RawMessage) (Policy, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return p, nil
	}
	if raw[0] != '{' {
		return p, fmt.Errorf("%w: retry_policy must be a JSON object", ErrInvalidPolicy)
	}
	var a actionPolicy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return p, fmt.Errorf("%w: retry_policy: %v", ErrInvalidPolicy, err)
	}
	steps := []func(*Policy, actionPolicy) error{
		applyMaxRetries, applyBackoff, applyDelays, applyMultiplier, applyJitter,
	}
	for _, step := range steps {
		if err := step(&p, a); err != nil {
			return p, err
		}
	}
	return p, p.Validate()
}

func applyMaxRetries(p *Policy, a actionPolicy) error {
	if a.MaxRetries == nil {
		return nil
	}
	n, err := integer("max_retries", *a.MaxRetries, 0, MaxRetriesLimit)
	p.MaxRetries = int(n)
	return err
}

func applyBackoff(p *Policy, a actionPolicy) error {
	if a.BackoffType == nil {
		return nil
	}
	b := Backoff(strings.ToLower(strings.TrimSpace(*a.BackoffType)))
	if !b.Valid() {
		return invalid("backoff_type", "%q: want exponential, linear or fixed", truncate(*a.BackoffType))
	}
	p.Backoff = b
	return nil
}

func applyDelays(p *Policy, a actionPolicy) error {
	const maxMS = int64(Ceiling / time.Millisecond)
	if a.InitialDelayMS != nil {
		ms, err := integer("initial_delay_ms", *a.InitialDelayMS, 0, maxMS)
		if err != nil {
			return err
		}
		p.Initial = time.Duration(ms) * time.Millisecond
	}
	if a.MaxDelayMS != nil {
		ms, err := integer("max_delay_ms", *a.MaxDelayMS, 1, maxMS)
		if err != nil {
			return err
		}
		p.Max = time.Duration(ms) * time.Millisecond
		if p.Max < p.Initial {
			return invalid("max_delay_ms", "%d is below the initial delay %s", ms, p.Initial)
		}
	} else if p.Max > 0 && p.Max < p.Initial {
		p.Max = p.Initial
	}
	return nil
}

func applyMultiplier(p *Policy, a actionPolicy) error {
	if a.Multiplier == nil {
		return nil
	}
	f, err := a.Multiplier.Float64()
	if err != nil || math.IsNaN(f) || f < 1 || f > 100 {
		return invalid("multiplier", "%s: want a number in [1, 100]", truncate(a.Multiplier.String()))
	}
	p.Multiplier = f
	return nil
}

func applyJitter(p *Policy, a actionPolicy) error {
	if a.Jitter == nil {
		return nil
	}
	f, err := a.Jitter.Float64()
	if err != nil || !(f >= 0 && f < 1) {
		return invalid("jitter", "%s: want a number in [0, 1)", truncate(a.Jitter.String()))
	}
	p.Jitter = f
	return nil
}

// integer parses a JSON number that must be a whole number in [lo, hi];
// 1000.0 and 1e3 are whole numbers.
func integer(key string, n json.Number, lo, hi int64) (int64, error) {
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, invalid(key, "%s: want a whole number in [%d, %d]", truncate(n.String()), lo, hi)
	}
	return int64(f), nil
}

// Validate checks a policy built by hand or by Resolve. The error wraps
// ErrInvalidPolicy and names the field.
func (p Policy) Validate() error {
	switch {
	case p.Backoff != "" && !p.Backoff.Valid():
		return invalid("backoff_type", "%q: want exponential, linear or fixed", truncate(string(p.Backoff)))
	case p.MaxRetries < 0 || p.MaxRetries > MaxRetriesLimit:
		return invalid("max_retries", "%d is outside 0..%d", p.MaxRetries, MaxRetriesLimit)
	case p.Initial < 0 || p.Initial > Ceiling:
		return invalid("initial_delay", "%s is outside 0..%s", p.Initial, Ceiling)
	case p.Max > 0 && p.Max < p.Initial:
		return invalid("max_delay", "%s is below the initial delay %s", p.Max, p.Initial)
	case p.Multiplier != 0 && !(p.Multiplier >= 1):
		return invalid("multiplier", "%g is below 1", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter < 1):
		return invalid("jitter", "%g is outside [0, 1)", p.Jitter)
	}
	return nil
}

func truncate(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
