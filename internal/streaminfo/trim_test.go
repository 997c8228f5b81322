package streaminfo_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/streaminfo"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/testutil"
)

func TestTrimBelow(t *testing.T) {
	g := func(name string, pending int64, oldest, last string) streaminfo.GroupInfo {
		return streaminfo.GroupInfo{Name: name, Pending: pending, OldestPendingID: oldest, LastDeliveredID: last}
	}
	cases := []struct {
		name   string
		groups []streaminfo.GroupInfo
		want   string
		ok     bool
	}{
		{"no group: keep everything", nil, "", false},
		{"a group that read nothing", []streaminfo.GroupInfo{g("a", 0, "", "0-0")}, "", false},
		{"all acknowledged", []streaminfo.GroupInfo{g("a", 0, "", "5-3")}, "5-4", true},
		{"oldest pending bounds it", []streaminfo.GroupInfo{g("a", 2, "4-0", "9-0")}, "4-0", true},
		{"slowest group wins", []streaminfo.GroupInfo{g("a", 0, "", "9-0"), g("b", 1, "3-7", "8-0")}, "3-7", true},
		{"ms compared as numbers", []streaminfo.GroupInfo{g("a", 0, "", "10-0"), g("b", 0, "", "9-5")}, "9-6", true},
		{"one group not started holds all", []streaminfo.GroupInfo{g("a", 0, "", "9-0"), g("b", 0, "", "0-0")}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := streaminfo.TrimBelow(streaminfo.StreamInfo{Stream: "s", Groups: tc.groups})
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestTrimKeepsEverythingUnacknowledged: two groups at different places;
// only entries both acknowledged go.
func TestTrimKeepsEverythingUnacknowledged(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := context.Background()
	key := streams.KeyFor(prefix, "tenants", "users", 0)
	lonely := streams.KeyFor(prefix, "tenants", "users", 1) // no group yet
	require.NoError(t, rdb.SAdd(ctx, streams.Registry(prefix), key, lonely).Err())
	var ids []string
	for i := 0; i < 10; i++ {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"n", "x"}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: lonely, Values: []string{"n", "x"}}).Err())
	}
	read := func(group string, n int64) []redis.XMessage {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{key, ">"}, Count: n}).Result()
		require.NoError(t, err)
		return res[0].Messages
	}
	require.NoError(t, rdb.XGroupCreate(ctx, key, "fast", "0").Err())
	require.NoError(t, rdb.XGroupCreate(ctx, key, "slow", "0").Err())
	for _, m := range read("fast", 8) { // fast acks 0..5, leaves 6 and 7 pending
		if m.ID != ids[6] && m.ID != ids[7] {
			require.NoError(t, rdb.XAck(ctx, key, "fast", m.ID).Err())
		}
	}
	for _, m := range read("slow", 4) { // slow acks 0..3
		require.NoError(t, rdb.XAck(ctx, key, "slow", m.ID).Err())
	}

	trimmed, err := streaminfo.Trim(ctx, rdb, prefix)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{key: 4}, trimmed, "entries 0..3, acknowledged by both groups")
	left, err := rdb.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	require.Equal(t, ids[4], left[0].ID)
	n, err := rdb.XLen(ctx, lonely).Result()
	require.NoError(t, err)
	require.EqualValues(t, 10, n, "a stream without groups keeps everything")

	// Pending entries stay even when every later entry is acknowledged.
	for _, m := range read("slow", 100) {
		require.NoError(t, rdb.XAck(ctx, key, "slow", m.ID).Err())
	}
	_, err = streaminfo.Trim(ctx, rdb, prefix)
	require.NoError(t, err)
	left, err = rdb.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	require.Equal(t, ids[6], left[0].ID, "fast's oldest pending entry is kept")
}
