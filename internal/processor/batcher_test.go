package processor

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

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
