package processor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/neo-events/neo-events/internal/logging"
	"github.com/neo-events/neo-events/internal/store"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

func TestRetryItemRoundTrip(t *testing.T) {
	it := &retryItem{V: 1, Stream: "p:tenants:users:1", EntryID: "1-2", Fields: map[string]string{"id": "x"},
		StartedAt: time.Unix(100, 0).UTC(), Failed: true, RetryCount: 2, LastError: "boom", Nonce: "n",
		Actions: []pendingAction{{ID: uuid.New(), Name: "a", Attempt: 3, Due: 500}, {ID: uuid.New(), Name: "b", Attempt: 2, Due: 200}}}
	raw, err := it.encode()
	require.NoError(t, err)
	got, err := decodeRetryItem(raw)
	require.NoError(t, err)
	require.Equal(t, it, got)
	require.EqualValues(t, 200, got.due(), "an item is due with its earliest action")

	for _, bad := range []string{``, `{`, `{"v":2,"actions":[{}],"fields":{}}`, `{"v":1,"actions":[],"fields":{}}`, `{"v":1,"actions":[{}]}`} {
		_, err := decodeRetryItem(bad)
		require.Error(t, err, bad)
	}
}

// TestClaimDueLeasesItems: a due retry is handed out once, then hidden
// for the lease; if its worker dies, it is handed out again afterwards.
func TestClaimDueLeasesItems(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := context.Background()
	key := RetryKey(prefix, "g")
	now := time.Now().UnixMilli()
	require.NoError(t, rdb.ZAdd(ctx, key, redis.Z{Score: float64(now - 10), Member: "due"},
		redis.Z{Score: float64(now + 60_000), Member: "later"}).Err())

	claim := func(at, lease int64) []string {
		got, err := claimDue.Run(ctx, rdb, []string{key}, at, at+lease, 10).StringSlice()
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []string{"due"}, claim(now, 1000))
	require.Empty(t, claim(now+500, 1000), "leased: nobody else takes it")
	require.Equal(t, []string{"due"}, claim(now+1001, 1000), "lease over: taken again")
	require.Equal(t, []string{"due", "later"}, claim(now+70_000, 1000))
}

// TestBatcherMergesAcks: plain acknowledgements of one pipeline become one
// XACK per stream, and the done-markers of their events are dropped.
func TestBatcherMergesAcks(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := context.Background()
	streams := []string{prefix + ":tenants:users:0", prefix + ":tenants:users:1"}
	var ids [][]string
	for _, s := range streams {
		var got []string
		for i := 0; i < 3; i++ {
			id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []string{"n", "1"}}).Result()
			require.NoError(t, err)
			got = append(got, id)
		}
		require.NoError(t, rdb.XGroupCreate(ctx, s, "g", "0").Err())
		require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{s, ">"}}).Err())
		ids = append(ids, got)
	}
	marker := DoneKey(prefix, "g", uuid.New())
	require.NoError(t, rdb.HSet(ctx, marker, "a", "1").Err())

	core, logs := observer.New(zap.WarnLevel)
	b := newBatcher(rdb, 64, "g", zap.New(core))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { b.run(stop); close(done) }()

	// Acknowledgements are queued, not waited for (some concurrently, so
	// that they share pipelines); stopping the batcher sends every one.
	errs := make(chan error, 6)
	for si, s := range streams {
		for i, id := range ids[si] {
			key := ""
			if si == 0 && i == 0 {
				key = marker
			}
			go func(s, id, key string) {
				errs <- b.ack(ctx, ackOp{stream: s, id: id, doneKey: key, eventID: uuid.New()})
			}(s, id, key)
		}
	}
	for i := 0; i < 6; i++ {
		require.NoError(t, <-errs, "queued")
	}
	// A failing command is logged with the event's ids: the entry stays
	// pending, to be redelivered.
	require.NoError(t, rdb.Set(ctx, prefix+":notastream", "x", 0).Err())
	evID, corrID := uuid.New(), uuid.New()
	require.NoError(t, b.ack(ctx, ackOp{stream: prefix + ":notastream", id: "1-0", eventID: evID, correlationID: corrID}))
	close(stop)
	<-done

	for _, s := range streams {
		p, err := rdb.XPending(ctx, s, "g").Result()
		require.NoError(t, err)
		require.Zero(t, p.Count, "every entry of %s acknowledged", s)
	}
	n, err := rdb.Exists(ctx, marker).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the done-marker is dropped with the acknowledgement")

	failed := logs.FilterMessageSnippet("could not acknowledge").FilterField(zap.Stringer(logging.KeyEventID, evID)).All()
	require.Len(t, failed, 1, "the failed acknowledgement is logged once, with its event_id: %v", logs.All())
	require.Equal(t, corrID.String(), failed[0].ContextMap()[logging.KeyCorrelationID])
	require.Equal(t, prefix+":notastream", failed[0].ContextMap()[logging.KeyStream])

	// A context that ended before the acknowledgement was queued is the
	// caller's error: nothing was sent.
	full := newBatcher(rdb, 1, "g", zap.NewNop()) // queue of 4, nobody serving it
	for range cap(full.ops) {
		require.NoError(t, full.ack(ctx, ackOp{stream: streams[0], id: "1-0"}))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, full.ack(cctx, ackOp{stream: streams[0], id: "1-0"}), context.Canceled)
}

// TestExecutionRecordRoundTrip: the execution row kept in a done-marker
// comes back as it was, so a redelivery can write it for a dead worker.
func TestExecutionRecordRoundTrip(t *testing.T) {
	d := int32(12)
	ev := uuid.New()
	cases := []store.Execution{
		{ID: uuid.New(), EventID: ev, ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 1,
			StartedAt: time.Unix(10, 5000).UTC(), CompletedAt: time.Unix(11, 0).UTC(), QueuedAt: time.Unix(10, 5000).UTC(),
			DurationMS: &d, QueueMessageID: "1-0", WorkerID: "w"},
		{ID: uuid.New(), EventID: ev, ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 3, IsRetry: true,
			ParentExecutionID: uuid.New(), OutputData: json.RawMessage(`{"status_code":204}`),
			ExecutionContext: json.RawMessage(`{"redrive":true}`)},
	}
	m1, m2 := int32(64), int32(0)
	cases = append(cases,
		store.Execution{ID: uuid.New(), EventID: ev, ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 2,
			QueuedAt: time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC), CreatedAt: time.Unix(5, 1).UTC(), UpdatedAt: time.Unix(6, 2).UTC(),
			ErrorMessage: "quote \" backslash \\ tab \t <b>&amp;", ErrorStackTrace: "goroutine 1 [running]:\n\tmain.go:1",
			ErrorDetails: json.RawMessage(`{"a":[1,2]}`), InputData: json.RawMessage(`{"x":"y"}`),
			QueueMessageID: "1700000000000-15", WorkerID: "wörker-ü-\u2028", MemoryUsageMB: &m1, CPUTimeMS: &m2},
	)
	for _, want := range cases {
		// Markers written by json.Marshal (earlier versions) and by
		// appendRecord both read back as the row.
		raw, err := json.Marshal(want)
		require.NoError(t, err)
		got, ok := decodeRecord(string(raw), ev)
		require.True(t, ok)
		require.Equal(t, want, got)
		got, ok = decodeRecord(string(appendRecord(nil, &want)), ev)
		require.True(t, ok, string(appendRecord(nil, &want)))
		require.Equal(t, want, got)
	}
	_, ok := decodeRecord("1", ev)
	require.False(t, ok, "a bare marker holds no record")
	raw, _ := json.Marshal(cases[0])
	_, ok = decodeRecord(string(raw), uuid.New())
	require.False(t, ok, "a record of another event is ignored")
}

// FuzzAppendRecord: whatever the strings and the handler's output, a
// marker written by appendRecord reads back as one written by json.Marshal.
func FuzzAppendRecord(f *testing.F) {
	f.Add("1-0", "w1", "", `{"status_code":204}`, int64(1700000000123456789))
	f.Add("\x00\xff\"<", "\u2028é", "boom\n", `[1,"a",{"b":null}]`, int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, msgID, worker, errMsg, output string, ns int64) {
		if !json.Valid([]byte(output)) {
			return // handler.SetOutput refuses invalid JSON
		}
		ts := time.Unix(0, ns).UTC()
		d := int32(ns % 1000)
		x := store.Execution{ID: uuid.New(), EventID: uuid.New(), ActionID: uuid.New(), Status: store.ExecCompleted,
			Attempt: int(d&7) + 1, QueuedAt: ts, StartedAt: ts, CompletedAt: ts, DurationMS: &d,
			QueueMessageID: msgID, WorkerID: worker, ErrorMessage: errMsg, OutputData: json.RawMessage(output)}
		old, err := json.Marshal(x)
		if err != nil {
			return // json.Marshal refuses it (a year outside 0..9999): so did the old marker
		}
		want, ok := decodeRecord(string(old), x.EventID)
		require.True(t, ok)
		got, ok := decodeRecord(string(appendRecord(nil, &x)), x.EventID)
		require.True(t, ok, string(appendRecord(nil, &x)))
		// json.Marshal compacts the raw output; appendRecord keeps its bytes.
		require.JSONEq(t, string(want.OutputData), string(got.OutputData))
		want.OutputData, got.OutputData = nil, nil
		require.Equal(t, want, got)
	})
}

// BenchmarkDoneRecord: encoding the execution row a done-marker holds
// (every completed attempt with status writes on).
func BenchmarkDoneRecord(b *testing.B) {
	d := int32(3)
	now := time.Now().UTC()
	x := store.Execution{ID: uuid.New(), EventID: uuid.New(), ActionID: uuid.New(), Status: store.ExecCompleted, Attempt: 1,
		QueuedAt: now, StartedAt: now, CompletedAt: now, DurationMS: &d, QueueMessageID: "1700000000000-15", WorkerID: "worker-7c9f"}
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = appendRecord(make([]byte, 0, 512), &x)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = json.Marshal(x)
		}
	})
}
