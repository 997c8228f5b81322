package publisher

import (
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestRegistryMissing(t *testing.T) {
	type step struct {
		after   time.Duration // clock advance before the step
		keys    []any
		learn   bool // the SADD succeeded
		missing []any
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"new keys are sent once", []step{
			{keys: []any{"a", "b"}, learn: true, missing: []any{"a", "b"}},
			{after: time.Second, keys: []any{"a", "b"}, learn: true, missing: nil},
			{after: time.Second, keys: []any{"b", "c"}, learn: true, missing: []any{"c"}},
		}},
		{"a failed SADD is sent again", []step{
			{keys: []any{"a"}, learn: false, missing: []any{"a"}},
			{keys: []any{"a"}, learn: true, missing: []any{"a"}},
			{keys: []any{"a"}, missing: nil},
		}},
		{"everything is sent again after the refresh", []step{
			{keys: []any{"a", "b"}, learn: true, missing: []any{"a", "b"}},
			{after: registryRefresh - time.Millisecond, keys: []any{"a"}, missing: nil},
			{after: time.Millisecond, keys: []any{"a"}, learn: true, missing: []any{"a"}},
			{keys: []any{"a", "b"}, learn: true, missing: []any{"b"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r := newRegistry()
			r.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = now.Add(s.after)
				got := r.missing(s.keys)
				require.Equal(t, s.missing, got, "step %d", i)
				if s.learn {
					r.learned(got)
				}
			}
		})
	}
	var nilReg *registry
	require.Equal(t, []any{"x"}, nilReg.missing([]any{"x"}), "no registry: always send")
}

func TestEntryBatchKeys(t *testing.T) {
	var b entryBatch
	b.gen++
	a1, first := b.key("a")
	require.True(t, first)
	_, first = b.key("a")
	require.False(t, first, "once per batch")
	b.gen++
	a2, first := b.key("a")
	require.True(t, first, "again in the next batch")
	require.Equal(t, a1, a2)
	for i := 0; i <= maxCachedKeys+1; i++ {
		b.key(uuid.NewString())
	}
	require.LessOrEqual(t, len(b.keys), maxCachedKeys+1, "the cache is bounded")
}

func testEvents(t *testing.T, n int, prefix string) []*event.Event {
	t.Helper()
	evs := make([]*event.Event, n)
	for i := range evs {
		typ := []string{"users.created", "orders.paid"}[i%2]
		e, err := event.New("tenant_acme", typ, "user", uuid.New(), json.RawMessage(`{"i":1}`))
		require.NoError(t, err)
		route(e, prefix, 2)
		evs[i] = e
	}
	return evs
}

// TestAddToStreamsRegistry shows the registry set is written only for keys
// this process has not registered recently, and rewritten after the
// refresh, so a Redis that lost its data relearns the streams.
func TestAddToStreamsRegistry(t *testing.T) {
	tu.SkipIfShort(t)
	t.Parallel()
	rdb, prefix := tu.NewRedis(t)
	ctx := tu.Context(t)
	now := time.Now()
	reg := newRegistry()
	reg.now = func() time.Time { return now }
	var scratch entryBatch
	members := func() []string {
		m, err := rdb.SMembers(ctx, streams.Registry(prefix)).Result()
		require.NoError(t, err)
		sort.Strings(m)
		return m
	}
	evs := testEvents(t, 8, prefix)
	var keys []string
	for _, e := range evs {
		if !contains(keys, e.QueueName) {
			keys = append(keys, e.QueueName)
		}
	}
	sort.Strings(keys)

	// A pipeline that fails registers nothing, and remembers nothing.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	_, err := addToStreams(ctx, dead, prefix, false, evs, reg, &scratch)
	require.Error(t, err)

	n, err := addToStreams(ctx, rdb, prefix, false, evs, reg, &scratch)
	require.NoError(t, err)
	require.Equal(t, len(evs), n)
	require.Equal(t, keys, members())
	for _, e := range evs {
		require.NotEmpty(t, e.MessageID)
	}
	require.Empty(t, scratch.fields, "scratch emptied")

	// Redis loses the set: within the refresh it stays lost...
	require.NoError(t, rdb.Del(ctx, streams.Registry(prefix)).Err())
	_, err = addToStreams(ctx, rdb, prefix, false, evs, reg, &scratch)
	require.NoError(t, err)
	require.Empty(t, members())
	// ...and after it every stream in use is registered again.
	now = now.Add(registryRefresh)
	_, err = addToStreams(ctx, rdb, prefix, false, evs, reg, &scratch)
	require.NoError(t, err)
	require.Equal(t, keys, members())

	// Every entry is on its stream and decodes to its event.
	byID := map[string]*event.Event{}
	for _, e := range evs {
		byID[e.QueueName+" "+e.MessageID] = e
	}
	total, matched := 0, 0
	for _, k := range keys {
		msgs, err := rdb.XRange(ctx, k, "-", "+").Result()
		require.NoError(t, err)
		total += len(msgs)
		for _, m := range msgs {
			got, err := event.DecodeValues(m.Values)
			require.NoError(t, err)
			if want, ok := byID[k+" "+m.ID]; ok {
				require.Equal(t, want.ID, got.ID)
				require.Equal(t, k, want.QueueName)
				require.JSONEq(t, string(want.Data), string(got.Data))
				matched++
			}
		}
	}
	require.Equal(t, 3*len(evs), total)
	require.Equal(t, len(evs), matched, "the last batch's MessageIDs name its entries")
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestCommitGate(t *testing.T) {
	cases := []struct {
		name    string
		running int // commits already in
		n       int
		want    bool
	}{
		{"idle: any batch goes", 0, 1, true},
		{"busy: a small batch waits", 1, 99, false},
		{"busy: a big batch goes alongside", 1, 100, true},
		{"two busy: a big batch still goes (Flushers bounds it)", 2, 500, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newCommitGate(100)
			for i := 0; i < tc.running; i++ {
				ok, _ := g.enter(1000, false)
				require.True(t, ok)
			}
			ok, changed := g.enter(tc.n, false)
			require.Equal(t, tc.want, ok)
			if ok {
				return
			}
			select {
			case <-changed:
				t.Fatal("signalled before any commit ended")
			default:
			}
			g.leave()
			<-changed // a commit ended: try again
			ok, _ = g.enter(tc.n, true)
			require.Equal(t, tc.running == 1, ok)
		})
	}
}

// TestCommitGateWaiterGoesFirst: when a commit ends, the flusher that was
// waiting for it commits next, not the flusher that just committed and
// came straight back with a small batch (that starved the waiter's
// callers for several commits in a row).
func TestCommitGateWaiterGoesFirst(t *testing.T) {
	g := newCommitGate(100)
	ok, _ := g.enter(1, false) // A commits
	require.True(t, ok)
	ok, changed := g.enter(1, false) // B waits
	require.False(t, ok)
	g.leave() // A is done
	<-changed

	// A is back before B woke up: it must queue behind B.
	ok, changedA := g.enter(1, false)
	require.False(t, ok, "the flusher that just committed jumped the queue")
	// A big batch still goes alongside, waiter or not.
	ok, _ = g.enter(100, false)
	require.True(t, ok)
	g.leave()

	ok, _ = g.enter(1, true) // B, woken
	require.True(t, ok)
	ok, _ = g.enter(1, true) // A again: B is committing
	require.False(t, ok)
	g.leave()
	<-changedA
	ok, _ = g.enter(1, true) // now A
	require.True(t, ok)
	require.Equal(t, 0, g.waiting)
}

func TestParallelCommitMinDefaults(t *testing.T) {
	require.Equal(t, DefaultParallelCommitMin, Options{}.withDefaults().ParallelCommitMin)
	require.Equal(t, 5, Options{ParallelCommitMin: 5}.withDefaults().ParallelCommitMin)
}
