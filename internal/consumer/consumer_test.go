package consumer_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/consumer"
	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

const group = "g"

type fixture struct {
	rdb    *redis.Client
	prefix string
}

func newFixture(t *testing.T) fixture {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	return fixture{rdb: rdb, prefix: prefix}
}

// add puts n entries on a stream and registers it.
func (f fixture) add(t *testing.T, key string, n int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, f.rdb.SAdd(ctx, streams.Registry(f.prefix), key).Err())
	for i := 0; i < n; i++ {
		require.NoError(t, f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"n", fmt.Sprint(i)}}).Err())
	}
}

func (f fixture) options(name string) consumer.Options {
	return consumer.Options{
		Prefix: f.prefix, Group: group, Consumer: name, Subscriptions: []string{"tenants:*"},
		Concurrency: 8, BatchSize: 16, Block: 50 * time.Millisecond,
		ClaimMinIdle: time.Hour, ClaimInterval: 50 * time.Millisecond, Refresh: 50 * time.Millisecond,
	}
}

// collector acknowledges and records every delivery.
type collector struct {
	rdb  *redis.Client
	mu   sync.Mutex
	got  map[string][]consumer.Delivery // by stream
	hold time.Duration

	inflight, peak atomic.Int64
}

func (c *collector) Process(ctx context.Context, d consumer.Delivery) {
	n := c.inflight.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(c.hold)
	c.inflight.Add(-1)
	_ = c.rdb.XAck(ctx, d.Stream, group, d.ID).Err()
	c.mu.Lock()
	c.got[d.Stream] = append(c.got[d.Stream], d)
	c.mu.Unlock()
}

func (c *collector) count(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[stream])
}

func run(t *testing.T, rdb redis.UniversalClient, opt consumer.Options, p consumer.Processor) (*consumer.Consumer, func()) {
	t.Helper()
	c, err := consumer.New(rdb, opt, p)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx, context.Background()); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

func TestDiscoversStreamsAtRuntimeAndReadsFromZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	early := streams.KeyFor(f.prefix, "tenants", "users", 0)
	late := streams.KeyFor(f.prefix, "tenants", "orders", 3)
	other := streams.KeyFor(f.prefix, "admin", "users", 0)
	f.add(t, early, 20) // published before any worker existed
	f.add(t, other, 5)  // not subscribed

	col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}}
	c, _ := run(t, f.rdb, f.options("c1"), col)
	require.Eventually(t, func() bool { return col.count(early) == 20 }, 10*time.Second, 10*time.Millisecond)

	f.add(t, late, 7) // a stream that appears while running
	require.Eventually(t, func() bool { return col.count(late) == 7 }, 10*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{early, late}, c.Streams())
	require.Zero(t, col.count(other), "unsubscribed streams are not read")
	for _, d := range col.got[early] {
		require.False(t, d.Redelivered)
	}
}

// pooled is a client that is not a *redis.Client (as a cluster client is
// not), so the consumer reads through go-redis.
type pooled struct{ *redis.Client }

// TestReadPathsDeliverTheSameFields: the read loop's own connection
// (internal/xread) and go-redis (any other client) deliver the same
// entries with the same fields, and both pick up a stream that appears.
func TestReadPathsDeliverTheSameFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		name string // also the stream category
		rdb  redis.UniversalClient
		own  bool // reads on its own connection
	}{
		{"own_connection", f.rdb, true},
		{"go_redis", pooled{f.rdb}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			first := streams.KeyFor(f.prefix, "tenants", tc.name, 0)
			later := streams.KeyFor(f.prefix, "tenants", tc.name, 1)
			f.add(t, first, 5)
			col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}}
			opt := f.options(tc.name)
			opt.Subscriptions = []string{"tenants:" + tc.name}
			if tc.own {
				opt.Block = 5 * time.Second // a new stream must not wait out the block
			}
			c, _ := run(t, tc.rdb, opt, col)
			require.Eventually(t, func() bool { return col.count(first) == 5 }, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, tc.own, c.ReaderID() != 0, "reads on its own connection")
			start := time.Now()
			f.add(t, later, 1)
			require.NoError(t, f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: later, Values: []string{"k", "v", "empty", ""}}).Err())
			require.Eventually(t, func() bool { return col.count(later) == 2 }, 10*time.Second, 10*time.Millisecond)
			if tc.own {
				require.Less(t, time.Since(start), 3*time.Second, "the new stream waited out the block")
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			var got, want [][]string
			for i, d := range col.got[first] {
				got = append(got, d.Fields)
				want = append(want, []string{"n", fmt.Sprint(i)})
			}
			require.ElementsMatch(t, want, got) // handled concurrently: in any order
			var later2 []map[string]string
			for _, d := range col.got[later] {
				require.Len(t, d.Fields, 2*len(fieldMap(d.Fields)), "pairs")
				later2 = append(later2, fieldMap(d.Fields))
			}
			// (go-redis returns a map: its pairs come in any order.)
			require.ElementsMatch(t, []map[string]string{{"n": "0"}, {"k": "v", "empty": ""}}, later2)
		})
	}
}

func fieldMap(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestConcurrencyIsBoundedAndReadsWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := streams.KeyFor(f.prefix, "tenants", "users", 1)
	f.add(t, key, 120)
	col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}, hold: 20 * time.Millisecond}
	opt := f.options("c1")
	opt.Concurrency = 4

	var maxPending atomic.Int64
	stopWatch := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if p, err := f.rdb.XPending(context.Background(), key, group).Result(); err == nil && p.Count > maxPending.Load() {
				maxPending.Store(p.Count)
			}
		}
	}()
	defer close(stopWatch)
	run(t, f.rdb, opt, col)
	require.Eventually(t, func() bool { return col.count(key) == 120 }, 20*time.Second, 10*time.Millisecond)
	require.LessOrEqual(t, col.peak.Load(), int64(4), "never more than worker.concurrency in flight")
	// Backpressure: entries are read only when a slot is free, so what is
	// delivered but unfinished stays near the concurrency, not the backlog.
	require.LessOrEqual(t, maxPending.Load(), int64(2*opt.Concurrency), "delivered-but-unprocessed entries stay bounded")
}

func TestReclaimsEntriesOfADeadConsumer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := streams.KeyFor(f.prefix, "tenants", "users", 2)
	f.add(t, key, 10)
	ctx := context.Background()
	require.NoError(t, f.rdb.XGroupCreate(ctx, key, group, "0").Err())
	// "dead" takes every entry and never acknowledges.
	res, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{key, ">"}, Count: 100}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 10)

	col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}}
	opt := f.options("rescuer")
	opt.ClaimMinIdle = 300 * time.Millisecond
	run(t, f.rdb, opt, col)
	require.Eventually(t, func() bool { return col.count(key) == 10 }, 10*time.Second, 10*time.Millisecond)
	for _, d := range col.got[key] {
		require.True(t, d.Redelivered, "reclaimed entries are marked as redelivered")
	}
	p, err := f.rdb.XPending(ctx, key, group).Result()
	require.NoError(t, err)
	require.Zero(t, p.Count)
}

func TestRemovesIdleConsumersWithNothingPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := streams.KeyFor(f.prefix, "tenants", "users", 3)
	f.add(t, key, 1)
	ctx := context.Background()
	require.NoError(t, f.rdb.XGroupCreate(ctx, key, group, "0").Err())
	require.NoError(t, f.rdb.XGroupCreateConsumer(ctx, key, group, "ghost").Err())
	// "holder" owns an entry: it must stay however idle it is.
	require.NoError(t, f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "holder", Streams: []string{key, ">"}, Count: 1}).Err())

	opt := f.options("live")
	opt.IdleConsumerAfter = 200 * time.Millisecond
	run(t, f.rdb, opt, consumer.ProcessorFunc(func(context.Context, consumer.Delivery) {}))
	require.Eventually(t, func() bool {
		cs, err := f.rdb.XInfoConsumers(ctx, key, group).Result()
		if err != nil {
			return false
		}
		names := map[string]bool{}
		for _, c := range cs {
			names[c.Name] = true
		}
		return !names["ghost"] && names["holder"] && names["live"]
	}, 10*time.Second, 50*time.Millisecond)
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	good := consumer.Options{Prefix: "p", Group: "g", Consumer: "c", Subscriptions: []string{"admin:*"},
		Concurrency: 1, BatchSize: 1, Block: time.Second, ClaimMinIdle: time.Second, ClaimInterval: time.Second}
	cases := map[string]func(*consumer.Options){
		"no subscriptions": func(o *consumer.Options) { o.Subscriptions = nil },
		"bad subscription": func(o *consumer.Options) { o.Subscriptions = []string{"nocolon"} },
		"zero concurrency": func(o *consumer.Options) { o.Concurrency = 0 },
		"zero batch":       func(o *consumer.Options) { o.BatchSize = 0 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := good
			mutate(&o)
			_, err := consumer.New(nil, o, consumer.ProcessorFunc(func(context.Context, consumer.Delivery) {}))
			require.Error(t, err)
		})
	}
	_, err := consumer.New(nil, good, consumer.ProcessorFunc(func(context.Context, consumer.Delivery) {}))
	require.NoError(t, err)
}

// TestNewStreamsAreReadWithinAFewProbes: with a long Block and Refresh, a
// stream that appears is still read at once: the registry's size is polled
// between full refreshes, and the blocked read is woken (CLIENT UNBLOCK, or
// the wake signal when there was nothing to read yet). Without that, the
// entry would wait for the next full refresh (5s) and then the blocked
// XREADGROUP (10s).
func TestNewStreamsAreReadWithinAFewProbes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first bool // a stream exists (and the reader blocks on it) before the new one
	}{
		{"reader blocked on other streams", true},
		{"reader had no streams yet", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			opt := f.options("c1")
			opt.Block, opt.Refresh = 10*time.Second, 5*time.Second
			col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}}
			old := streams.KeyFor(f.prefix, "tenants", "users", 0)
			if tt.first {
				f.add(t, old, 1)
			}
			c, _ := run(t, f.rdb, opt, col)
			if tt.first {
				require.Eventually(t, func() bool { return col.count(old) == 1 }, 10*time.Second, 10*time.Millisecond)
			} else {
				require.Eventually(t, c.Ready, 10*time.Second, 10*time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond) // the reader is now blocked (or waiting for streams)

			late := streams.KeyFor(f.prefix, "tenants", "orders", 2)
			start := time.Now()
			f.add(t, late, 3)
			require.Eventually(t, func() bool { return col.count(late) == 3 }, 4*time.Second, 10*time.Millisecond,
				"a new stream must not wait for the next full refresh and the blocked read")
			t.Logf("new stream read after %s", time.Since(start))
		})
	}
}

// poolWorkers counts the goroutines of consumers' worker pools.
func poolWorkers() int {
	buf := make([]byte, 1<<22)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "consumer.(*Consumer).poolWorker")
}

// TestWorkerPoolIsBoundedAndStops: dispatched work runs on pooled
// goroutines, never more than Concurrency of them, and they are gone once
// Run returns.
func TestWorkerPoolIsBoundedAndStops(t *testing.T) {
	f := newFixture(t)
	key := streams.KeyFor(f.prefix, "tenants", "users", 1)
	f.add(t, key, 300)
	opt := f.options("c1")
	opt.Concurrency = 4
	col := &collector{rdb: f.rdb, got: map[string][]consumer.Delivery{}, hold: time.Millisecond}
	before := poolWorkers() // other tests' consumers may still be winding down: not parallel
	_, stop := run(t, f.rdb, opt, col)
	peak := 0
	require.Eventually(t, func() bool {
		peak = max(peak, poolWorkers()-before)
		return col.count(key) == 300
	}, 20*time.Second, 2*time.Millisecond)
	require.LessOrEqual(t, peak, opt.Concurrency, "pool larger than the concurrency bound")
	require.Positive(t, peak, "work ran on pool workers")
	stop()
	require.Eventually(t, func() bool { return poolWorkers() <= before }, 5*time.Second, 10*time.Millisecond,
		"pool workers left after Run returned")
}

// TestReleasedSlotsAreBoundedApart: a delivery that releases its slot
// (its handlers are done, its outcome is being recorded) lets the next one
// start, up to RecordingFactor × Concurrency recording at once; then the
// next delivery keeps its slot in Release, and reads stop. A second
// Release of the same delivery changes nothing. Once the burst is over the
// pool shrinks back to Concurrency idle workers.
func TestReleasedSlotsAreBoundedApart(t *testing.T) {
	f := newFixture(t)
	key := streams.KeyFor(f.prefix, "tenants", "users", 1)
	const total = 30
	f.add(t, key, total)
	opt := f.options("c1")
	opt.Concurrency = 2
	gate := make(chan struct{})
	var started, done atomic.Int64
	proc := consumer.ProcessorFunc(func(ctx context.Context, d consumer.Delivery) {
		started.Add(1)
		d.Slot.Release(ctx)
		d.Slot.Release(ctx) // no-op: must not free a second slot
		<-gate              // recording, e.g. a slow status write
		require.NoError(t, f.rdb.XAck(ctx, d.Stream, group, d.ID).Err())
		done.Add(1)
	})
	before := poolWorkers() // not parallel: other tests' pools may be winding down
	run(t, f.rdb, opt, proc)
	bound := int64(opt.Concurrency * (1 + consumer.RecordingFactor))
	require.Eventually(t, func() bool { return started.Load() == bound }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, bound, started.Load(), "more deliveries started than slots plus recording slots")
	require.LessOrEqual(t, poolWorkers()-before, int(bound), "pool larger than its bound")
	close(gate)
	require.Eventually(t, func() bool { return done.Load() == total }, 10*time.Second, 5*time.Millisecond)
	// After the burst, workers beyond Concurrency idle ones exit.
	require.Eventually(t, func() bool { return poolWorkers()-before <= opt.Concurrency }, 5*time.Second, 5*time.Millisecond,
		"the pool kept the burst's workers")
}

// TestDispatchAfterRunReturned: work dispatched once Run has returned (a
// due retry racing the shutdown) still runs, on a goroutine of its own,
// while work dispatched before ran on the pool.
func TestDispatchAfterRunReturned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, stop := run(t, f.rdb, f.options("c1"), consumer.ProcessorFunc(func(context.Context, consumer.Delivery) {}))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		ran := make(chan struct{})
		require.True(t, c.Dispatch(ctx, ctx, func(context.Context) { close(ran) }), "round %d", i)
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: dispatched work did not run", i)
		}
		stop()
	}
}
