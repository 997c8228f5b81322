package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/testutil"
)

func TestStreamsVerb(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	busy := streams.KeyFor(prefix, "tenants", "users", 0)
	idle := streams.KeyFor(prefix, "admin", "orders", 1)
	require.NoError(t, rdb.SAdd(ctx, streams.Registry(prefix), busy, idle).Err())
	for i := 0; i < 5; i++ {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: busy, Values: []string{"n", "x"}}).Err())
	}
	require.NoError(t, rdb.XGroupCreate(ctx, busy, "wk", "0").Err())
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "wk", Consumer: "pod-1", Streams: []string{busy, ">"}, Count: 2}).Result()
	require.NoError(t, err)
	_, err = dlq.Move(ctx, rdb, prefix, "wk", dlq.Letter{Fields: dlq.FieldsFromValues(res[0].Messages[0].Values),
		Reason: dlq.ReasonPermanent, SourceStream: busy, SourceID: res[0].Messages[0].ID})
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)

	code, out, errOut := redisCLI(t, ctx, prefix, "--worker.group", "wk", "streams")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"STREAM", "OLDEST-PENDING", busy, idle, "wk", "GROUP", "BACKLOG", "DLQ",
		"Group wk has 1 dead letter(s): eventsctl dlq list --group wk"} {
		require.Contains(t, out, want)
	}

	code, out, errOut = redisCLI(t, ctx, prefix, "streams", "--group", "wk", "--json")
	require.Equal(t, 0, code, errOut)
	var rep streamsReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Streams, 2)
	require.Equal(t, idle, rep.Streams[0].Stream)
	require.Empty(t, rep.Streams[0].Groups)
	g := rep.Streams[1].Groups
	require.Len(t, g, 1)
	require.EqualValues(t, 1, g[0].Pending)
	require.EqualValues(t, 3, g[0].Lag)
	require.Positive(t, g[0].OldestPendingAge)
	require.Equal(t, map[string]int64{"wk": 1}, rep.DLQ)
	require.Equal(t, map[string]int64{"wk": 4}, rep.Backlog)

	code, out, errOut = redisCLI(t, ctx, prefix, "streams", "--group", "nobody")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `No stream has a group "nobody"`)

	code, _, errOut = redisCLI(t, ctx, prefix, "streams", "extra")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no arguments")
}

func TestStreamsVerbEmpty(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	_, prefix := testutil.NewRedis(t)
	code, out, errOut := redisCLI(t, testutil.Context(t), prefix, "streams")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "No streams registered")
}

func TestHumanAge(t *testing.T) {
	for in, want := range map[time.Duration]string{
		-time.Second:                 "0s",
		45 * time.Second:             "45s",
		12*time.Minute + time.Second: "12m",
		3*time.Hour + 12*time.Minute: "3h12m",
		52 * time.Hour:               "2d4h",
	} {
		require.Equal(t, want, humanAge(in), in.String())
	}
}
