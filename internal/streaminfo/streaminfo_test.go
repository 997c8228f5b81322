package streaminfo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/testutil"
)

func add(t *testing.T, rdb *redis.Client, key string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []string{"n", fmt.Sprint(i)}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func read(t *testing.T, rdb *redis.Client, key, group string, n int64) []redis.XMessage {
	t.Helper()
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: group, Consumer: "c1", Streams: []string{key, ">"}, Count: n, Block: -1,
	}).Result()
	require.NoError(t, err)
	return res[0].Messages
}

func TestInspect(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	a := streams.KeyFor(prefix, "tenants", "users", 0)
	b := streams.KeyFor(prefix, "admin", "orders", 1)
	gone := streams.KeyFor(prefix, "tenants", "gone", 0)
	require.NoError(t, rdb.SAdd(ctx, streams.Registry(prefix), a, b, gone).Err())

	add(t, rdb, a, 10)
	require.NoError(t, rdb.XGroupCreate(ctx, a, "w1", "0").Err())
	require.NoError(t, rdb.XGroupCreate(ctx, a, "w2", "$").Err())
	msgs := read(t, rdb, a, "w1", 4) // 4 pending, 6 lag
	require.NoError(t, rdb.XAck(ctx, a, "w1", msgs[0].ID).Err())
	add(t, rdb, a, 2) // w1 lag 8, w2 lag 2

	add(t, rdb, b, 5)
	require.NoError(t, rdb.XGroupCreate(ctx, b, "w1", "0").Err())
	read(t, rdb, b, "w1", 5)
	time.Sleep(20 * time.Millisecond)

	infos, err := streaminfo.Inspect(ctx, rdb, prefix)
	require.NoError(t, err)
	require.Len(t, infos, 3)
	require.Equal(t, []string{b, gone, a}, []string{infos[0].Stream, infos[1].Stream, infos[2].Stream})

	require.EqualValues(t, 5, infos[0].Length)
	require.Len(t, infos[0].Groups, 1)
	gb := infos[0].Groups[0]
	require.Equal(t, "w1", gb.Name)
	require.EqualValues(t, 5, gb.Pending)
	require.EqualValues(t, 0, gb.Lag)
	require.True(t, gb.LagExact)

	require.Zero(t, infos[1].Length)
	require.Empty(t, infos[1].Groups)

	require.EqualValues(t, 12, infos[2].Length)
	require.Len(t, infos[2].Groups, 2)
	w1, w2 := infos[2].Groups[0], infos[2].Groups[1]
	require.Equal(t, "w1", w1.Name)
	require.EqualValues(t, 1, w1.Consumers)
	require.EqualValues(t, 3, w1.Pending)
	require.EqualValues(t, 8, w1.Lag)
	require.Equal(t, msgs[1].ID, w1.OldestPendingID)
	require.Equal(t, msgs[3].ID, w1.LastDeliveredID)
	require.GreaterOrEqual(t, w1.OldestPendingAge, 20*time.Millisecond)
	require.Less(t, w1.OldestPendingAge, time.Minute)
	require.Equal(t, "w2", w2.Name)
	require.EqualValues(t, 0, w2.Pending)
	require.EqualValues(t, 2, w2.Lag)
	require.Zero(t, w2.OldestPendingAge)

	require.EqualValues(t, 3+8+5, streaminfo.GroupBacklog(infos, "w1"))
	require.EqualValues(t, 2, streaminfo.GroupBacklog(infos, "w2"))
	require.Zero(t, streaminfo.GroupBacklog(infos, "nobody"))
	require.Equal(t, []string{"w1", "w2"}, streaminfo.Groups(infos))
}

// After XDEL of an undelivered entry Redis reports lag as nil; the
// fallback counts the entries after the last-delivered id.
func TestInspectLagFallback(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	key := streams.KeyFor(prefix, "tenants", "users", 0)
	require.NoError(t, rdb.SAdd(ctx, streams.Registry(prefix), key).Err())
	ids := add(t, rdb, key, 6)
	require.NoError(t, rdb.XGroupCreate(ctx, key, "w", "0").Err())
	read(t, rdb, key, "w", 2)
	require.NoError(t, rdb.XDel(ctx, key, ids[4]).Err())

	raw, err := rdb.XInfoGroups(ctx, key).Result()
	require.NoError(t, err)
	require.EqualValues(t, -1, raw[0].Lag, "precondition: Redis cannot tell this lag")

	infos, err := streaminfo.Inspect(ctx, rdb, prefix)
	require.NoError(t, err)
	g := infos[0].Groups[0]
	require.False(t, g.LagExact)
	require.EqualValues(t, 3, g.Lag)
	require.EqualValues(t, 2, g.Pending)
}

func TestInspectEmptyRegistry(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	infos, err := streaminfo.Inspect(testutil.Context(t), rdb, prefix)
	require.NoError(t, err)
	require.Empty(t, infos)
}
