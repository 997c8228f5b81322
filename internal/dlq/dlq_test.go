package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/testutil"
)

const group = "g1"

var failedAt = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

func TestAppendFields(t *testing.T) {
	long := strings.Repeat("é", dlq.MaxErrorLen)
	tests := []struct {
		name     string
		original map[string]string
		letter   dlq.Letter
		want     []string
	}{
		{
			name: "known fields in entry order, extras sorted, then dlq fields",
			original: map[string]string{
				"zeta": "z", "event_data": `{"a":1}`, "id": "i", "alpha": "a", "event_type": "users.created",
			},
			letter: dlq.Letter{Reason: dlq.ReasonExhausted, Error: "boom", Attempts: 4, Action: "mail",
				SourceStream: "s", SourceID: "1-0", FailedAt: failedAt},
			want: []string{"id", "i", "event_type", "users.created", "event_data", `{"a":1}`, "alpha", "a", "zeta", "z",
				"dlq_reason", "exhausted", "dlq_error", "boom", "dlq_attempts", "4", "dlq_action", "mail",
				"dlq_source_stream", "s", "dlq_source_id", "1-0", "dlq_failed_at", "2024-05-06T07:08:09.123456000Z"},
		},
		{
			name: "old dlq fields are replaced, no action field when not action-specific",
			original: map[string]string{
				"id": "i", "dlq_reason": "permanent", "dlq_action": "old", "dlq_custom": "x", "redrive_count": "1",
			},
			letter: dlq.Letter{Reason: dlq.ReasonInvalid, SourceStream: "s", SourceID: "2-0", FailedAt: failedAt},
			want: []string{"id", "i", "redrive_count", "1",
				"dlq_reason", "invalid", "dlq_error", "", "dlq_attempts", "0",
				"dlq_source_stream", "s", "dlq_source_id", "2-0", "dlq_failed_at", "2024-05-06T07:08:09.123456000Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dlq.AppendFields(nil, tt.original, tt.letter)
			require.Empty(t, cmp.Diff(tt.want, got), "(-want +got)")
		})
	}
	t.Run("long error is cut at a rune boundary", func(t *testing.T) {
		got := dlq.AppendFields(nil, nil, dlq.Letter{Error: long, FailedAt: failedAt})
		msg := got[3]
		require.LessOrEqual(t, len(msg), dlq.MaxErrorLen)
		require.True(t, strings.HasSuffix(msg, "…"))
		require.True(t, strings.HasPrefix(long, strings.TrimSuffix(msg, "…")))
	})
}

func TestLetterValidate(t *testing.T) {
	ok := dlq.Letter{Reason: dlq.ReasonPermanent, SourceStream: "s", SourceID: "1-1"}
	require.NoError(t, ok.Validate())
	for name, mut := range map[string]func(*dlq.Letter){
		"reason":   func(l *dlq.Letter) { l.Reason = "oops" },
		"stream":   func(l *dlq.Letter) { l.SourceStream = "" },
		"id":       func(l *dlq.Letter) { l.SourceID = "1" },
		"attempts": func(l *dlq.Letter) { l.Attempts = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			l := ok
			mut(&l)
			require.ErrorIs(t, l.Validate(), dlq.ErrInvalid)
		})
	}
}

// fixture is a source stream with group g1 and one entry delivered to a consumer.
type fixture struct {
	rdb            *redis.Client
	prefix, stream string
	id             string
	fields         map[string]string
	ordered        []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	f := &fixture{rdb: rdb, prefix: prefix, stream: streams.KeyFor(prefix, "tenants", "users", 3)}
	// Odd bytes and an unknown field must survive byte for byte.
	f.ordered = []string{
		"id", "0190a0c0-0000-7000-8000-000000000001", "event_type", "users.created", "schema", "tenant_acme",
		"aggregate_id", "0190a0c0-0000-7000-8000-000000000002", "aggregate_type", "user",
		"event_data", "{\"name\":\"Zoë \\u0000\",\"raw\":\"\xff\xfe\"}", "x_custom", "keep me\r\n",
	}
	f.fields = map[string]string{}
	for i := 0; i < len(f.ordered); i += 2 {
		f.fields[f.ordered[i]] = f.ordered[i+1]
	}
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, f.stream, group, "0").Err())
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.stream, Values: f.ordered}).Result()
	require.NoError(t, err)
	f.id = id
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c1", Streams: []string{f.stream, ">"}, Count: 10}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 1)
	f.fields = dlq.FieldsFromValues(res[0].Messages[0].Values)
	return f
}

func (f *fixture) letter() dlq.Letter {
	return dlq.Letter{Fields: f.fields, Reason: dlq.ReasonExhausted, Error: "smtp: 550", Attempts: 4,
		Action: "welcome_mail", SourceStream: f.stream, SourceID: f.id, FailedAt: failedAt}
}

func (f *fixture) pending(t *testing.T) int64 {
	t.Helper()
	p, err := f.rdb.XPending(context.Background(), f.stream, group).Result()
	require.NoError(t, err)
	return p.Count
}

// rawEntry reads a stream entry with its fields in stored order.
func rawEntry(t *testing.T, rdb *redis.Client, key, id string) []string {
	t.Helper()
	v, err := rdb.Do(context.Background(), "XRANGE", key, id, id).Slice()
	require.NoError(t, err)
	require.Len(t, v, 1, "entry %s in %s", id, key)
	var out []string
	for _, x := range v[0].([]any)[1].([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestMoveIsAtomicAndByteExact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testutil.Context(t)
	require.EqualValues(t, 1, f.pending(t))

	id, err := dlq.Move(ctx, f.rdb, f.prefix, group, f.letter())
	require.NoError(t, err)
	require.EqualValues(t, 0, f.pending(t), "source entry must be acked")

	got := rawEntry(t, f.rdb, streams.DLQ(f.prefix, group), id)
	want := dlq.AppendFields(nil, f.fields, f.letter())
	require.Empty(t, cmp.Diff(want, got), "(-want +got)")
	e, err := dlq.Get(ctx, f.rdb, f.prefix, group, id)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(f.fields, e.Fields), "original fields (-want +got)")
	require.Equal(t, "{\"name\":\"Zoë \\u0000\",\"raw\":\"\xff\xfe\"}", e.Fields["event_data"])
	require.Equal(t, dlq.Entry{ID: id, Fields: e.Fields, Reason: dlq.ReasonExhausted, Error: "smtp: 550",
		Attempts: 4, Action: "welcome_mail", SourceStream: f.stream, SourceID: f.id, FailedAt: failedAt}, e)
	n, err := dlq.Len(ctx, f.rdb, f.prefix, group)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestMoveNotPendingWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testutil.Context(t)
	_, err := dlq.Move(ctx, f.rdb, f.prefix, group, f.letter())
	require.NoError(t, err)
	// A retried Move (lost reply) or a consumer that lost the entry to
	// another one must not write a second dead letter.
	_, err = dlq.Move(ctx, f.rdb, f.prefix, group, f.letter())
	require.ErrorIs(t, err, dlq.ErrNotPending)
	n, err := dlq.Len(ctx, f.rdb, f.prefix, group)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestMoveFailureWritesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(t *testing.T, f *fixture) dlq.Letter
	}{
		{"group missing", func(t *testing.T, f *fixture) dlq.Letter {
			require.NoError(t, f.rdb.XGroupDestroy(context.Background(), f.stream, group).Err())
			return f.letter()
		}},
		{"source stream missing", func(t *testing.T, f *fixture) dlq.Letter {
			l := f.letter()
			l.SourceStream = f.prefix + ":tenants:nothing:0"
			return l
		}},
		{"dlq key of the wrong type", func(t *testing.T, f *fixture) dlq.Letter {
			require.NoError(t, f.rdb.Set(context.Background(), streams.DLQ(f.prefix, group), "x", 0).Err())
			return f.letter()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := testutil.Context(t)
			wasPending := f.pending(t)
			l := tt.break_(t, f)
			_, err := dlq.Move(ctx, f.rdb, f.prefix, group, l)
			require.Error(t, err)
			require.NotErrorIs(t, err, dlq.ErrNotPending)
			typ, err := f.rdb.Type(ctx, streams.DLQ(f.prefix, group)).Result()
			require.NoError(t, err)
			require.NotEqual(t, "stream", typ, "no dead letter may be written")
			if tt.name == "dlq key of the wrong type" {
				require.Equal(t, wasPending, f.pending(t), "the source entry must stay pending")
			}
		})
	}
}

func TestMoveRefusesBadLetter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.letter()
	l.SourceID = "not-an-id"
	_, err := dlq.Move(testutil.Context(t), f.rdb, f.prefix, group, l)
	require.ErrorIs(t, err, dlq.ErrInvalid)
	require.EqualValues(t, 1, f.pending(t))
}

func TestAddLeavesSourceAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testutil.Context(t)
	id, err := dlq.Add(ctx, f.rdb, f.prefix, group, f.letter())
	require.NoError(t, err)
	require.EqualValues(t, 1, f.pending(t))
	e, err := dlq.Get(ctx, f.rdb, f.prefix, group, id)
	require.NoError(t, err)
	require.Equal(t, f.fields, e.Fields)
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	_, err := dlq.Get(ctx, rdb, prefix, group, "1-0")
	require.ErrorIs(t, err, dlq.ErrNotFound)
	_, err = dlq.Get(ctx, rdb, prefix, group, "+")
	require.ErrorIs(t, err, dlq.ErrInvalid)
}

// seed writes dead letters with explicit ids so their ages are known.
type seedEntry struct {
	ms        int64
	eventType string
	reason    dlq.Reason
	action    string
	source    string // default: a valid stream under the prefix
	extra     map[string]string
}

func seed(t *testing.T, rdb *redis.Client, prefix string, entries []seedEntry) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i, s := range entries {
		src := s.source
		if src == "" {
			src = streams.KeyFor(prefix, "tenants", "users", 0)
		}
		orig := map[string]string{"id": fmt.Sprintf("e%d", i), "event_type": s.eventType}
		for k, v := range s.extra {
			orig[k] = v
		}
		pairs := dlq.AppendFields(nil, orig, dlq.Letter{Reason: s.reason, Action: s.action, Error: "x",
			Attempts: 1, SourceStream: src, SourceID: fmt.Sprintf("%d-0", i+1), FailedAt: time.UnixMilli(s.ms)})
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: streams.DLQ(prefix, group), ID: fmt.Sprintf("%d-0", s.ms), Values: pairs}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(d time.Duration) int64 { return base.Add(d).UnixMilli() }

func filterFixture() []seedEntry {
	return []seedEntry{
		{ms: ms(0), eventType: "users.created", reason: dlq.ReasonExhausted, action: "mail"},
		{ms: ms(time.Hour), eventType: "users.deleted", reason: dlq.ReasonPermanent, action: "crm,mail"},
		{ms: ms(2 * time.Hour), eventType: "orders.created", reason: dlq.ReasonInvalid},
		{ms: ms(3 * time.Hour), eventType: "orders.paid", reason: dlq.ReasonUnknownHandler, action: "billing"},
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	ids := seed(t, rdb, prefix, filterFixture())
	now := base.Add(3*time.Hour + 30*time.Minute)
	tests := []struct {
		name   string
		filter dlq.Filter
		limit  int
		want   []int
	}{
		{"all", dlq.Filter{}, 0, []int{0, 1, 2, 3}},
		{"limit", dlq.Filter{}, 2, []int{0, 1}},
		{"category pattern", dlq.Filter{EventType: "users.*"}, 0, []int{0, 1}},
		{"action pattern", dlq.Filter{EventType: "*.created"}, 0, []int{0, 2}},
		{"exact type", dlq.Filter{EventType: "orders.paid"}, 0, []int{3}},
		{"action in a list", dlq.Filter{Action: "mail"}, 0, []int{0, 1}},
		{"action alone", dlq.Filter{Action: "billing"}, 0, []int{3}},
		{"reason", dlq.Filter{Reason: dlq.ReasonInvalid}, 0, []int{2}},
		{"older than", dlq.Filter{OlderThan: 2 * time.Hour, Now: now}, 0, []int{0, 1}},
		{"newer than", dlq.Filter{NewerThan: 2 * time.Hour, Now: now}, 0, []int{2, 3}},
		{"window and reason", dlq.Filter{OlderThan: time.Hour, NewerThan: 3 * time.Hour, Reason: dlq.ReasonPermanent, Now: now}, 0, []int{1}},
		{"nothing", dlq.Filter{EventType: "users.*", Reason: dlq.ReasonInvalid}, 0, nil},
		{"by id", dlq.Filter{ID: ids[2]}, 0, []int{2}},
		{"by id, other criteria still apply", dlq.Filter{ID: ids[2], Reason: dlq.ReasonExhausted}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dlq.List(ctx, rdb, prefix, group, tt.filter, tt.limit)
			require.NoError(t, err)
			var gotIDs, wantIDs []string
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			for _, i := range tt.want {
				wantIDs = append(wantIDs, ids[i])
			}
			require.Equal(t, wantIDs, gotIDs)
		})
	}
}

func TestListPagesThroughLargeDLQ(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	var entries []seedEntry
	for i := 0; i < 1203; i++ {
		typ := "users.created"
		if i%3 == 0 {
			typ = "orders.created"
		}
		entries = append(entries, seedEntry{ms: int64(1000 + i), eventType: typ, reason: dlq.ReasonExhausted})
	}
	seed(t, rdb, prefix, entries)
	got, err := dlq.List(ctx, rdb, prefix, group, dlq.Filter{EventType: "orders.*"}, 0)
	require.NoError(t, err)
	require.Len(t, got, 401)
	n, err := dlq.Purge(ctx, rdb, prefix, group, dlq.Filter{EventType: "users.*"})
	require.NoError(t, err)
	require.Equal(t, 802, n)
	left, err := dlq.Len(ctx, rdb, prefix, group)
	require.NoError(t, err)
	require.EqualValues(t, 401, left)
}

func TestFilterValidate(t *testing.T) {
	for name, f := range map[string]dlq.Filter{
		"pattern": {EventType: "Users.*"},
		"reason":  {Reason: "nope"},
		"age":     {OlderThan: -time.Second},
		"id":      {ID: "-"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, f.Validate(), dlq.ErrInvalid)
			_, err := dlq.List(context.Background(), nil, "p", group, f, 0)
			require.ErrorIs(t, err, dlq.ErrInvalid)
		})
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	ids := seed(t, rdb, prefix, filterFixture())

	_, err := dlq.Purge(ctx, rdb, prefix, group, dlq.Filter{})
	require.ErrorIs(t, err, dlq.ErrEmptyFilter)

	n, err := dlq.Purge(ctx, rdb, prefix, group, dlq.Filter{Action: "mail"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	left, err := dlq.List(ctx, rdb, prefix, group, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Len(t, left, 2)
	require.Equal(t, ids[2], left[0].ID)

	n, err = dlq.PurgeAll(ctx, rdb, prefix, group)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	l, err := dlq.Len(ctx, rdb, prefix, group)
	require.NoError(t, err)
	require.Zero(t, l)
}

func TestRedriveRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testutil.Context(t)
	_, err := dlq.Move(ctx, f.rdb, f.prefix, group, f.letter())
	require.NoError(t, err)

	n, err := dlq.Redrive(ctx, f.rdb, f.prefix, group, dlq.Filter{}, 0, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	left, err := dlq.Len(ctx, f.rdb, f.prefix, group)
	require.NoError(t, err)
	require.Zero(t, left, "the dead letter must be deleted")

	// The redriven entry is the original, in its stored order, plus the redrive fields.
	res, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c1", Streams: []string{f.stream, ">"}}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 1)
	newID := res[0].Messages[0].ID
	want := append(append([]string{}, dlq.AppendFields(nil, f.fields, dlq.Letter{})[:len(f.ordered)]...),
		"redrive_actions", "welcome_mail", "redrive_count", "1")
	require.Empty(t, cmp.Diff(want, rawEntry(t, f.rdb, f.stream, newID)), "(-want +got)")

	// Fails again (not action-specific this time), redriven again: one
	// redrive_actions, one redrive_count, counted up.
	redriven := dlq.FieldsFromValues(res[0].Messages[0].Values)
	_, err = dlq.Move(ctx, f.rdb, f.prefix, group, dlq.Letter{Fields: redriven, Reason: dlq.ReasonInvalid,
		SourceStream: f.stream, SourceID: newID})
	require.NoError(t, err)
	n, err = dlq.Redrive(ctx, f.rdb, f.prefix, group, dlq.Filter{Reason: dlq.ReasonInvalid}, 0, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	msgs, err := f.rdb.XRange(ctx, f.stream, "("+newID, "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	raw := rawEntry(t, f.rdb, f.stream, msgs[0].ID)
	require.Len(t, raw, len(f.ordered)+4)
	got := dlq.FieldsFromValues(msgs[0].Values)
	require.Equal(t, "", got[dlq.FieldRedriveActions])
	require.Equal(t, "2", got[dlq.FieldRedriveCount])
}

func TestRedriveFieldsMatchesScript(t *testing.T) {
	e := dlq.Entry{ID: "1-0", Action: "a,b", Fields: map[string]string{
		"id": "i", "x": "y", "redrive_actions": "old", "redrive_count": "7",
	}}
	want := []string{"id", "i", "x", "y", "redrive_actions", "a,b", "redrive_count", "8"}
	require.Equal(t, want, dlq.RedriveFields(e))
	e.Fields["redrive_count"] = "99999999999999999999"
	require.Equal(t, "1", dlq.RedriveFields(e)[7], "a junk count restarts at 1")
}

func TestRedriveLimitAndBadSource(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	ids := seed(t, rdb, prefix, []seedEntry{
		{ms: 1000, eventType: "users.created", reason: dlq.ReasonExhausted, source: "elsewhere:secret"},
		{ms: 2000, eventType: "users.created", reason: dlq.ReasonExhausted},
		{ms: 3000, eventType: "users.created", reason: dlq.ReasonExhausted},
		{ms: 4000, eventType: "users.created", reason: dlq.ReasonExhausted},
	})
	n, err := dlq.Redrive(ctx, rdb, prefix, group, dlq.Filter{}, 0, 2)
	require.ErrorIs(t, err, dlq.ErrBadSource)
	require.Equal(t, 2, n)
	left, err := dlq.List(ctx, rdb, prefix, group, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Len(t, left, 2)
	require.Equal(t, []string{ids[0], ids[3]}, []string{left[0].ID, left[1].ID})
	exists, err := rdb.Exists(ctx, "elsewhere:secret").Result()
	require.NoError(t, err)
	require.Zero(t, exists, "no write outside the prefix")
	src, err := rdb.XLen(ctx, streams.KeyFor(prefix, "tenants", "users", 0)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, src)
}

func TestRedriveRateLimit(t *testing.T) {
	t.Parallel()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	var entries []seedEntry
	for i := 0; i < 6; i++ {
		entries = append(entries, seedEntry{ms: int64(1000 + i), eventType: "users.created", reason: dlq.ReasonExhausted})
	}
	seed(t, rdb, prefix, entries)
	start := time.Now()
	n, err := dlq.Redrive(ctx, rdb, prefix, group, dlq.Filter{}, 20, 0)
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	// 20/s with a burst of 1: 5 waits of 50ms after the first.
	require.GreaterOrEqual(t, elapsed, 200*time.Millisecond)
	require.Less(t, elapsed, 10*time.Second)

	_, err = dlq.Redrive(ctx, rdb, prefix, group, dlq.Filter{}, 0, 0)
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	seed(t, rdb, prefix, []seedEntry{{ms: 5000, eventType: "users.created", reason: dlq.ReasonExhausted}})
	_, err = dlq.Redrive(cctx, rdb, prefix, group, dlq.Filter{}, 1, 0)
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}

func TestClusterFallbacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testutil.Context(t)
	id, err := dlq.MoveTwoStep(ctx, f.rdb, f.prefix, group, f.letter())
	require.NoError(t, err)
	require.EqualValues(t, 0, f.pending(t))
	_, err = dlq.MoveTwoStep(ctx, f.rdb, f.prefix, group, f.letter())
	require.ErrorIs(t, err, dlq.ErrNotPending)
	require.Empty(t, cmp.Diff(dlq.AppendFields(nil, f.fields, f.letter()), rawEntry(t, f.rdb, streams.DLQ(f.prefix, group), id)))

	e, err := dlq.Get(ctx, f.rdb, f.prefix, group, id)
	require.NoError(t, err)
	moved, err := dlq.RedriveTwoStep(ctx, f.rdb, f.prefix, group, e)
	require.NoError(t, err)
	require.True(t, moved)
	n, err := dlq.Len(ctx, f.rdb, f.prefix, group)
	require.NoError(t, err)
	require.Zero(t, n)
	msgs, err := f.rdb.XRange(ctx, f.stream, "("+f.id, "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, dlq.RedriveFields(e), rawEntry(t, f.rdb, f.stream, msgs[0].ID))
}

func TestFieldsFromPairs(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want map[string]string
	}{
		{"pairs", []string{"a", "1", "b", ""}, map[string]string{"a": "1", "b": ""}},
		{"last duplicate wins", []string{"a", "1", "a", "2"}, map[string]string{"a": "2"}},
		{"trailing key", []string{"a", "1", "b"}, map[string]string{"a": "1", "b": ""}},
		{"none", nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, dlq.FieldsFromPairs(tt.kv))
		})
	}
}
