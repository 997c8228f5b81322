package processor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/dispatch"
	"github.com/neo-events/neo-events/internal/retry"
)

// TestPolicyCache: a cached policy is the one retry.Resolve gives for the
// same action policy, event max_retries and presence of that field.
func TestPolicyCache(t *testing.T) {
	fallback := retry.Policy{MaxRetries: 2, Initial: time.Second, Multiplier: 2, Max: time.Minute}
	p := New(nil, nil, nil, nil, Options{Group: "g", Fallback: fallback})
	t.Cleanup(p.Close)
	jobWith := func(maxRetries int, has bool) *job {
		j := p.newJob(&event.Event{MaxRetries: maxRetries}, "s", "1-1")
		j.pairs = []string{}
		if has {
			j.pairs = []string{event.FieldMaxRetries, "x"}
		}
		return j
	}
	own := dispatch.Action{Name: "own", RetryPolicy: json.RawMessage(`{"max_retries": 7, "initial_delay_ms": 5}`)}
	none := dispatch.Action{Name: "none"}
	bad := dispatch.Action{Name: "bad", RetryPolicy: json.RawMessage(`{"max_retries": "many"}`)}
	cases := []struct {
		a          dispatch.Action
		maxRetries int
		has        bool
	}{
		{own, 3, true}, {own, 3, false}, {none, 3, true}, {none, 5, true}, {none, 5, false}, {none, 3, false},
		{bad, 1, true}, {bad, 3, false},
	}
	for round := range 2 { // the second round is served from the cache
		for _, tc := range cases {
			want, err := retry.Resolve(tc.a.RetryPolicy, tc.maxRetries, tc.has, fallback)
			if err != nil {
				want, _ = retry.Resolve(nil, tc.maxRetries, tc.has, fallback)
			}
			got := p.policy(jobWith(tc.maxRetries, tc.has), &tc.a)
			require.Equal(t, want, got, "round %d: %s max_retries=%d has=%v", round, tc.a.Name, tc.maxRetries, tc.has)
		}
	}
	require.Equal(t, len(cases), p.policyCount, "one entry per distinct input")
}
