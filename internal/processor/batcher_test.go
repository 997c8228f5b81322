package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// TestBatcherReusesAckScratch: pipelines one after another, on the same
// batcher, acknowledge exactly their own entries and drop exactly their
// own done-markers, whichever streams the ones before used.
func TestBatcherReusesAckScratch(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := context.Background()
	streams := []string{prefix + ":tenants:a:0", prefix + ":tenants:b:0", prefix + ":tenants:c:0"}
	ids := map[string][]string{}
	for _, s := range streams {
		for i := 0; i < 4; i++ {
			id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []string{"n", fmt.Sprint(i)}}).Result()
			require.NoError(t, err)
			ids[s] = append(ids[s], id)
		}
		require.NoError(t, rdb.XGroupCreate(ctx, s, "g", "0").Err())
		require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{s, ">"}}).Err())
	}
	b := newBatcher(rdb, 64, "g", zap.NewNop())
	type ack struct {
		stream string
		n      int // the entry's index
		marked bool
	}
	a, bb, c := streams[0], streams[1], streams[2]
	rounds := []struct {
		name string
		acks []ack
	}{
		{"two streams, markers", []ack{{a, 0, true}, {bb, 0, false}, {a, 1, false}, {bb, 1, true}}},
		{"one of them", []ack{{bb, 2, false}}},
		{"another stream", []ack{{c, 0, true}, {c, 1, true}}},
		{"all three", []ack{{a, 2, false}, {c, 2, false}, {bb, 3, true}, {a, 3, true}}},
	}
	pending := map[string]int64{a: 4, bb: 4, c: 4}
	for _, r := range rounds {
		var batch []*op
		var markers []string
		for _, x := range r.acks {
			o := &op{isAck: true, ack: ackOp{stream: x.stream, id: ids[x.stream][x.n]}}
			if x.marked {
				o.ack.doneKey = DoneKey(prefix, "g", uuid.New())
				require.NoError(t, rdb.HSet(ctx, o.ack.doneKey, "a", "1").Err())
				markers = append(markers, o.ack.doneKey)
			}
			batch = append(batch, o)
			pending[x.stream]--
		}
		b.exec(batch)
		for _, s := range streams {
			p, err := rdb.XPending(ctx, s, "g").Result()
			require.NoError(t, err)
			require.Equal(t, pending[s], p.Count, "%s: pending on %s", r.name, s)
		}
		if len(markers) > 0 {
			n, err := rdb.Exists(ctx, markers...).Result()
			require.NoError(t, err)
			require.Zero(t, n, "%s: done-markers left", r.name)
		}
	}
}

// TestBatcherLingers: writes nobody waits for, queued a few at a time,
// wait in the batcher for more (here for as long as it takes); an op
// someone waits for ends the wait, and all go in one pipeline; stopping
// sends what lingers.
func TestBatcherLingers(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	pipelines := &pipelineCounter{}
	rdb.AddHook(pipelines)
	ctx := context.Background()
	b := newBatcher(rdb, 64, "g", zap.NewNop())
	b.linger = time.Hour // only a waiting op, a full batch or stop ends it
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { b.run(stop); close(done) }()

	key := func(i int) string { return fmt.Sprintf("%s:linger:%d", prefix, i) }
	set := func(i int) func(redis.Pipeliner) {
		return func(pipe redis.Pipeliner) { pipe.Set(ctx, key(i), "1", time.Minute) }
	}
	mark := func(i int) { b.sendMark(ctx, newMark(), key(i), "a") }
	exists := func(from, to int) int64 {
		var keys []string
		for i := from; i < to; i++ {
			keys = append(keys, key(i))
		}
		n, err := rdb.Exists(ctx, keys...).Result()
		require.NoError(t, err)
		return n
	}
	for i := range 3 {
		mark(i)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, exists(0, 3), "sent although small and nobody waits")
	require.Zero(t, pipelines.n.Load())

	res := make(chan error, 1)
	go func() { res <- b.do(ctx, set(3)) }()
	select {
	case err := <-res:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting op did not end the linger")
	}
	require.EqualValues(t, 4, exists(0, 4))
	require.EqualValues(t, 1, pipelines.n.Load(), "one pipeline for all four")

	mark(4)
	time.Sleep(5 * time.Millisecond)
	close(stop)
	<-done
	require.EqualValues(t, 1, exists(4, 5), "stopping sends what lingers")
}

// TestMarksKeepTheirRecords: done-marker ops are pooled with their
// buffers; marks queued from many goroutines at once each write their own
// record, readable as their own row, with the marker's expiry.
func TestMarksKeepTheirRecords(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := context.Background()
	b := newBatcher(rdb, 16, "g", zap.NewNop())
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { b.run(stop); close(done) }()

	const n = 400
	ids := make([]uuid.UUID, n)
	key := func(i int) string { return fmt.Sprintf("%s:mark:%d", prefix, i) }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				ids[i] = uuid.New()
				o := newMark()
				require.Equal(t, uuid.Nil, o.mark.row.ID, "a pooled op came back with a row")
				o.mark.row.ID, o.mark.row.EventID, o.mark.row.Attempt = ids[i], ids[i], 1+i%3
				o.mark.row.Status = store.ExecCompleted
				if i%50 == 0 { // now and then a record too large to keep
					o.mark.row.OutputData = json.RawMessage(`"` + strings.Repeat("x", 2*maxKeptRecord) + `"`)
				}
				b.sendMark(ctx, o, key(i), "act")
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
	for i := range n {
		raw, err := rdb.HGet(ctx, key(i), "act").Result()
		require.NoError(t, err, "mark %d", i)
		x, ok := decodeRecord(raw, ids[i])
		require.True(t, ok, "mark %d: record %q", i, raw)
		require.Equal(t, ids[i], x.ID, "mark %d holds another row", i)
		require.Equal(t, 1+i%3, x.Attempt)
		ttl, err := rdb.PTTL(ctx, key(i)).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0), "mark %d has no expiry", i)
	}
}

// pipelineCounter counts the pipelines with a SET or HSET that a client sends
// (not the ones go-redis sends to set up a connection).
type pipelineCounter struct{ n atomic.Int64 }

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "set" || cmd.Name() == "hset" {
				c.n.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}
