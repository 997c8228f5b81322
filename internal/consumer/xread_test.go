package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/internal/streams"
	tu "github.com/neo-events/neo-events/internal/testutil"
)

// rawRead sends XREADGROUP as the read loop does and returns the raw reply.
func rawRead(t *testing.T, rdb *redis.Client, group string, args ...any) []byte {
	t.Helper()
	cmd := redis.NewRawCmd(context.Background(), append([]any{"xreadgroup", "group", group, "c"}, args...)...)
	require.NoError(t, rdb.Process(context.Background(), cmd))
	return cmd.Val()
}

// The raw parse gives what go-redis's XReadGroup gives, in RESP2 and RESP3:
// the same streams, ids and fields, whatever bytes the values hold.
func TestParseXReadMatchesGoRedis(t *testing.T) {
	tu.SkipIfShort(t)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", proto), func(t *testing.T) {
			base, prefix := tu.NewRedis(t)
			opt := *base.Options()
			opt.Protocol = proto
			rdb := redis.NewClient(&opt)
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			keys := []string{streams.KeyFor(prefix, "tenants", "users", 0), streams.KeyFor(prefix, "tenants", "orders", 1),
				streams.KeyFor(prefix, "tenants", "empty", 2)}
			values := [][]string{
				{"id", "1", "event_data", `{"a":"x"}`},
				{"crlf", "a\r\nb\r\n", "empty", "", "bin", "\x00\xff$3\r\n*2"},
				{"dup", "first", "dup", "second"}, // XADD keeps both; go-redis's map the last
				{"utf8", "é€😀", strings.Repeat("k", 300), strings.Repeat("v", 70000)},
			}
			for i, v := range values {
				require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys[i%2], Values: v}).Err())
			}
			for _, k := range keys {
				require.NoError(t, rdb.XGroupCreateMkStream(ctx, k, "raw", "0").Err())
				require.NoError(t, rdb.XGroupCreateMkStream(ctx, k, "typed", "0").Err())
			}
			raw := rawRead(t, rdb, "raw", "count", 10, "streams", keys[0], keys[1], keys[2], ">", ">", ">")
			got, err := parseXRead(nil, raw, keys)
			require.NoError(t, err)
			want, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "typed", Consumer: "c", Count: 10,
				Streams: []string{keys[0], keys[1], keys[2], ">", ">", ">"}}).Result()
			require.NoError(t, err)
			var n int
			for _, s := range want {
				for _, m := range s.Messages {
					require.Less(t, n, len(got))
					d := got[n]
					require.Equal(t, s.Stream, d.Stream)
					require.Equal(t, m.ID, d.ID)
					require.Equal(t, m.Values, asMap(d.Fields))
					n++
				}
			}
			require.Len(t, got, n)
			require.Len(t, got, len(values))
			require.Equal(t, values[2], got[1].Fields, "both values of a repeated field, in order")
			require.Equal(t, unsafe.StringData(keys[0]), unsafe.StringData(got[0].Stream), "the stream is the key read, not a copy")

			// Nothing new: a null reply.
			raw = rawRead(t, rdb, "raw", "count", 10, "block", 1, "streams", keys[0], ">")
			_, err = parseXRead(nil, raw, keys)
			require.ErrorIs(t, err, errNoEntries)

			// An entry deleted while pending has no fields.
			require.NoError(t, rdb.XDel(ctx, keys[0], got[0].ID).Err())
			raw = rawRead(t, rdb, "raw", "streams", keys[0], "0")
			pending, err := parseXRead(nil, raw, keys)
			require.NoError(t, err)
			require.Equal(t, got[0].ID, pending[0].ID)
			require.Nil(t, pending[0].Fields)
			require.NotNil(t, pending[1].Fields)

			// An error reply.
			raw = rawRead(t, rdb, "nosuchgroup", "streams", keys[0], ">")
			_, err = parseXRead(nil, raw, keys)
			var reply ReplyError
			require.ErrorAs(t, err, &reply)
			require.True(t, strings.HasPrefix(err.Error(), "NOGROUP"), err.Error())
		})
	}
}

func asMap(kv []string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// validReplies are XREADGROUP replies as Redis writes them.
var validReplies = []string{
	"*1\r\n*2\r\n$3\r\nstr\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$1\r\na\r\n$2\r\nbc\r\n$1\r\nd\r\n$0\r\n\r\n" +
		"*2\r\n$3\r\n1-2\r\n*-1\r\n",
	"%1\r\n$3\r\nstr\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
	"*1\r\n*2\r\n$3\r\nstr\r\n*1\r\n*4\r\n$3\r\n1-1\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n:5\r\n:1\r\n",
	"_\r\n",
	"*-1\r\n",
}

// Every cut of a valid reply and every stray byte is refused with an
// error, never a panic or a delivery out of bounds.
func TestParseXReadRefusesBrokenReplies(t *testing.T) {
	t.Parallel()
	for _, r := range validReplies {
		_, err := parseXRead(nil, []byte(r), []string{"str"})
		if err != nil && !errors.Is(err, errNoEntries) {
			t.Fatalf("%q: %v", r, err)
		}
		for cut := range len(r) {
			if _, err := parseXRead(nil, []byte(r[:cut]), nil); err == nil {
				t.Fatalf("%q cut at %d accepted", r, cut)
			}
		}
		if _, err := parseXRead(nil, []byte(r+"x"), nil); err == nil {
			t.Fatalf("%q with a stray byte accepted", r)
		}
	}
	for _, r := range []string{
		"", "\r\n", "*x\r\n", "*-2\r\n", "$3\r\nabc\r\n", "*1\r\n*3\r\n", "*1\r\n*2\r\n$3\r\nstr\r\n*1\r\n*3\r\n",
		"*1\r\n*2\r\n$3\r\nstr\r\n*1\r\n*2\r\n$1\r\n1\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
		"*1\r\n*2\r\n$9\r\nstr\r\n",
	} {
		if _, err := parseXRead(nil, []byte(r), nil); err == nil || errors.Is(err, errNoEntries) {
			t.Fatalf("%q accepted (%v)", r, err)
		}
	}
}

// FuzzParseXRead: no input makes the parser panic, and what it accepts
// are deliveries whose fields come in pairs.
func FuzzParseXRead(f *testing.F) {
	for _, r := range validReplies {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r string) {
		got, err := parseXRead(nil, []byte(r), []string{"str"})
		if err != nil {
			return
		}
		for _, d := range got {
			if len(d.Fields)%2 != 0 {
				t.Fatalf("%q: odd fields %q", r, d.Fields)
			}
		}
	})
}

// The read loop reads through the raw command, from several streams and
// with a Block beyond the client's read timeout.
func TestReaderBlocksPastReadTimeout(t *testing.T) {
	tu.SkipIfShort(t)
	base, prefix := tu.NewRedis(t)
	opt := *base.Options()
	opt.ReadTimeout = 100 * time.Millisecond
	rdb := redis.NewClient(&opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	key := streams.KeyFor(prefix, "tenants", "users", 0)
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, key, "g", "0").Err())
	c, err := New(rdb, Options{Group: "g", Consumer: "c", Subscriptions: []string{"tenants:*"}, Concurrency: 1,
		BatchSize: 10, Block: 300 * time.Millisecond, ClaimMinIdle: time.Minute, ClaimInterval: time.Second}, nil)
	require.NoError(t, err)
	r := &reader{c: c}
	defer r.close()
	_, err = r.read(ctx, []string{key}, 10)
	require.ErrorIs(t, err, redis.Nil, "a Block of 300ms with a read timeout of 100ms")
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"a", "b"}}).Err())
	got, err := r.read(ctx, []string{key}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, []string{"a", "b"}, got[0].Fields)
}

// A client that is not a *redis.Client (a cluster client) reads through
// go-redis's XReadGroup: the same deliveries, with the map's pairs.
func TestReaderWithoutOwnConnection(t *testing.T) {
	tu.SkipIfShort(t)
	rdb, prefix := tu.NewRedis(t)
	ctx := context.Background()
	key := streams.KeyFor(prefix, "tenants", "users", 0)
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, key, "g", "0").Err())
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"a", "b", "c", "d"}}).Err())
	c, err := New(struct{ *redis.Client }{rdb}, Options{Group: "g", Consumer: "c", Subscriptions: []string{"tenants:*"},
		Concurrency: 1, BatchSize: 10, Block: 50 * time.Millisecond, ClaimMinIdle: time.Minute, ClaimInterval: time.Second}, nil)
	require.NoError(t, err)
	r := &reader{c: c}
	got, err := r.read(ctx, []string{key}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, key, got[0].Stream)
	require.Equal(t, map[string]any{"a": "b", "c": "d"}, asMap(got[0].Fields))
	require.Zero(t, c.readerID.Load(), "no connection of its own")
	_, err = r.read(ctx, []string{key}, 10)
	require.ErrorIs(t, err, redis.Nil)
}
