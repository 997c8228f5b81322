package dispatch_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/config"
	"github.com/neo-events/neo-events/internal/dispatch"
)

// BenchmarkMatch measures the hot path: a warm schema with 20 actions (a
// few with conditions, a few reached through subscriptions) and one config
// binding; the event matches five of them, two through subscriptions.
func BenchmarkMatch(b *testing.B) {
	f := newFixture(b)
	for i := range 14 {
		f.insertAction(b, f.tenant, action{name: fmt.Sprintf("cat_%02d", i),
			patterns: []string{fmt.Sprintf("cat_%c.*", 'a'+i)}, active: true})
	}
	f.insertAction(b, f.tenant, action{name: "all", patterns: []string{"*"}, active: true, priority: "low"})
	f.insertAction(b, f.tenant, action{name: "created", patterns: []string{"*.created"}, active: true})
	f.insertAction(b, f.tenant, action{name: "admins", patterns: []string{"users.*"}, active: true,
		conditions: `{"user.role":["admin","owner"]}`})
	f.insertAction(b, f.tenant, action{name: "big_orders", patterns: []string{"users.*"}, active: true,
		conditions: `{"amount":1000}`})
	for i := range 2 {
		id := f.insertAction(b, f.tenant, action{name: fmt.Sprintf("sub_%d", i), patterns: []string{"none.none"}, active: true})
		f.insertSubscription(b, f.tenant, subscription{actionID: id, pattern: "users.created", active: true,
			sources: []string{"auth"}})
	}
	d := dispatch.New(f.pool, dispatch.Options{Bindings: []config.HandlerConfig{
		{Match: "orders.*", Handler: "webhook", Config: map[string]any{"url": "http://127.0.0.1:1/x"}},
	}})
	b.Cleanup(d.Close)
	ev := newEvent(b, f.tenant, "users.created", `{"user":{"id":7,"role":"admin"},"amount":12,"note":"hello"}`)
	ev.SourceService = "auth"
	got, err := d.Match(f.ctx, ev) // warm the cache
	require.NoError(b, err)
	require.Equal(b, []string{"admins", "created", "sub_0", "sub_1", "all"}, names(got))

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Match(f.ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
