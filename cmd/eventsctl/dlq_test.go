package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/dlq"
	"github.com/neo-events/neo-events/internal/streams"
	"github.com/neo-events/neo-events/internal/testutil"
)

const dlqTestGroup = "ops"

// redisCLI runs the CLI in-process against the test Redis under prefix.
func redisCLI(t *testing.T, ctx context.Context, prefix string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--redis.url", testutil.RedisURL(), "--streams.prefix", prefix}, args...)
	code = run(ctx, full, &out, &errOut)
	return code, out.String(), errOut.String()
}

// dlqWorld is a source stream whose group dead-lettered two entries: a
// valid users.created event whose action "mail" was exhausted, and an
// undecodable entry carrying a terminal escape sequence.
type dlqWorld struct {
	rdb                    *redis.Client
	prefix, stream         string
	exhaustedID, invalidID string
}

func newDLQWorld(t *testing.T) *dlqWorld {
	t.Helper()
	rdb, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	w := &dlqWorld{rdb: rdb, prefix: prefix, stream: streams.KeyFor(prefix, "tenants", "users", 2)}
	require.NoError(t, rdb.SAdd(ctx, streams.Registry(prefix), w.stream).Err())
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, w.stream, dlqTestGroup, "0").Err())

	e, err := event.New("tenant_acme", "users.created", "user", uuid.New(), json.RawMessage(`{"email":"a@example.com"}`))
	require.NoError(t, err)
	valid, err := e.AppendEntry(nil)
	require.NoError(t, err)
	for _, fields := range [][]string{valid, {"id", "nope", "event_type", "users.\x1b[31mevil"}} {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: w.stream, Values: fields}).Err())
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: dlqTestGroup, Consumer: "c", Streams: []string{w.stream, ">"}}).Result()
	require.NoError(t, err)
	msgs := res[0].Messages
	require.Len(t, msgs, 2)
	w.exhaustedID, err = dlq.Move(ctx, rdb, prefix, dlqTestGroup, dlq.Letter{Fields: dlq.FieldsFromValues(msgs[0].Values),
		Reason: dlq.ReasonExhausted, Error: "smtp: 550 mailbox unavailable", Attempts: 4, Action: "mail",
		SourceStream: w.stream, SourceID: msgs[0].ID})
	require.NoError(t, err)
	w.invalidID, err = dlq.Move(ctx, rdb, prefix, dlqTestGroup, dlq.Letter{Fields: dlq.FieldsFromValues(msgs[1].Values),
		Reason: dlq.ReasonInvalid, Error: "invalid event: id: not a UUID\n\x1b]0;pwned\x07",
		SourceStream: w.stream, SourceID: msgs[1].ID})
	require.NoError(t, err)
	return w
}

func (w *dlqWorld) dlqLen(t *testing.T) int64 {
	t.Helper()
	n, err := dlq.Len(context.Background(), w.rdb, w.prefix, dlqTestGroup)
	require.NoError(t, err)
	return n
}

func TestDLQListAndShow(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	w := newDLQWorld(t)
	ctx := testutil.Context(t)

	code, out, errOut := redisCLI(t, ctx, w.prefix, "dlq", "list", "--group", dlqTestGroup)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, w.exhaustedID)
	require.Contains(t, out, w.invalidID)
	require.Contains(t, out, "smtp: 550")
	require.Contains(t, out, "2 dead letter(s) shown")
	require.NotContains(t, out, "\x1b", "escape sequences must not reach the terminal")

	// The group defaults to worker.group.
	code, out, errOut = redisCLI(t, ctx, w.prefix, "--worker.group", dlqTestGroup, "dlq", "list", "--reason", "invalid", "--json")
	require.Equal(t, 0, code, errOut)
	var entries []jsonEntry
	require.NoError(t, json.Unmarshal([]byte(out), &entries))
	require.Len(t, entries, 1)
	require.Equal(t, w.invalidID, entries[0].ID)
	require.Equal(t, "users.\x1b[31mevil", entries[0].EventType, "JSON keeps the bytes, escaped by encoding/json")

	code, out, _ = redisCLI(t, ctx, w.prefix, "dlq", "list", "--group", dlqTestGroup, "--limit", "1")
	require.Equal(t, 0, code)
	require.Contains(t, out, "More match")
	require.NotContains(t, out, w.invalidID)

	code, out, errOut = redisCLI(t, ctx, w.prefix, "dlq", "show", w.exhaustedID, "--group", dlqTestGroup)
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"Reason:", "exhausted", "Action:", "mail", "Attempts:", "4", w.stream,
		"Original entry:", "a@example.com", "dlq redrive " + w.exhaustedID} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "Decodes:")

	code, out, _ = redisCLI(t, ctx, w.prefix, "dlq", "show", w.invalidID, "--group", dlqTestGroup)
	require.Equal(t, 0, code)
	require.Contains(t, out, "Decodes:")
	require.Contains(t, out, "a redrive would fail again")
	require.NotContains(t, out, "\x1b")
	require.NotContains(t, out, "\x07")
}

func TestDLQUsageAndMissing(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	_, prefix := testutil.NewRedis(t)
	ctx := testutil.Context(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"dlq"}, 2, "needs a subcommand"},
		{"unknown subcommand", []string{"dlq", "frob"}, 2, "unknown dlq subcommand"},
		{"flag of another subcommand", []string{"dlq", "list", "--rate", "5"}, 2, "does not take --rate"},
		{"bad reason", []string{"dlq", "list", "--reason", "bored"}, 2, "reason"},
		{"bad pattern", []string{"dlq", "list", "--event-type", "Users"}, 2, "event pattern"},
		{"show without id", []string{"dlq", "show"}, 2, "exactly one DLQ id"},
		{"show bad id", []string{"dlq", "show", "abc"}, 2, "not <ms>-<seq>"},
		{"show missing id", []string{"dlq", "show", "1-1"}, 1, "no dead letter 1-1"},
		{"purge without filter", []string{"dlq", "purge", "--yes"}, 2, "--all"},
		{"purge all with filter", []string{"dlq", "purge", "--all", "--reason", "invalid"}, 2, "without filters"},
		{"negative limit", []string{"dlq", "list", "--limit", "-1"}, 2, "--limit"},
		{"bad group", []string{"dlq", "list", "--group", "a:b"}, 2, "--group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := redisCLI(t, ctx, prefix, tt.args...)
			require.Equal(t, tt.code, code, errOut)
			require.Contains(t, errOut, tt.want)
		})
	}
}

func TestDLQRedrive(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	w := newDLQWorld(t)
	ctx := testutil.Context(t)

	code, out, errOut := redisCLI(t, ctx, w.prefix, "dlq", "redrive", "--group", dlqTestGroup, "--action", "mail", "--dry-run")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Dry run: 1 dead letter(s) would go back")
	require.EqualValues(t, 2, w.dlqLen(t))

	code, out, errOut = redisCLI(t, ctx, w.prefix, "dlq", "redrive", "--group", dlqTestGroup, "--action", "mail", "--rate", "0")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Redrove 1 dead letter(s)")
	require.EqualValues(t, 1, w.dlqLen(t))
	res, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: dlqTestGroup, Consumer: "c", Streams: []string{w.stream, ">"}}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 1)
	got := res[0].Messages[0].Values
	require.Equal(t, "mail", got[dlq.FieldRedriveActions])
	require.Equal(t, "1", got[dlq.FieldRedriveCount])
	require.Equal(t, "users.created", got["event_type"])

	code, out, errOut = redisCLI(t, ctx, w.prefix, "dlq", "redrive", w.invalidID, "--group", dlqTestGroup, "--json")
	require.Equal(t, 0, code, errOut)
	var rep struct {
		Redriven int      `json:"redriven"`
		Skipped  []string `json:"skipped"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, 1, rep.Redriven)
	require.Empty(t, rep.Skipped)
	require.EqualValues(t, 0, w.dlqLen(t))
}

func TestDLQPurge(t *testing.T) {
	testutil.SkipIfShort(t)
	t.Parallel()
	w := newDLQWorld(t)
	ctx := testutil.Context(t)

	code, out, errOut := redisCLI(t, ctx, w.prefix, "dlq", "purge", "--group", dlqTestGroup, "--reason", "invalid")
	require.Equal(t, 1, code)
	require.Contains(t, out, "Would delete 1 dead letter(s)")
	require.Contains(t, errOut, "--yes")
	require.EqualValues(t, 2, w.dlqLen(t))

	code, out, errOut = redisCLI(t, ctx, w.prefix, "dlq", "purge", "--group", dlqTestGroup, "--reason", "invalid", "--yes")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Deleted 1 dead letter(s)")
	require.EqualValues(t, 1, w.dlqLen(t))
	_, err := dlq.Get(ctx, w.rdb, w.prefix, dlqTestGroup, w.exhaustedID)
	require.NoError(t, err, "the other entry stays")

	code, out, _ = redisCLI(t, ctx, w.prefix, "dlq", "purge", "--group", dlqTestGroup, "--all")
	require.Equal(t, 1, code)
	require.Contains(t, out, "Would delete 1")
	code, out, errOut = redisCLI(t, ctx, w.prefix, "dlq", "purge", "--group", dlqTestGroup, "--all", "--yes", "--json")
	require.Equal(t, 0, code, errOut)
	require.JSONEq(t, `{"purged":1}`, out)
	require.EqualValues(t, 0, w.dlqLen(t))
}

func TestPrintable(t *testing.T) {
	tests := map[string]struct {
		in, want string
		max      int
	}{
		"plain":        {"users.created", "users.created", 50},
		"escape":       {"a\x1b[31mb", `a\x1b[31mb`, 50},
		"tab newline":  {"a\tb\nc", `a\x09b\x0ac`, 50},
		"invalid utf8": {"a\xffb", `a\xffb`, 50},
		"c1 control":   {"a\u009bb", `a\x9bb`, 50},
		"unicode kept": {"Zoë", "Zoë", 50},
		"cut":          {strings.Repeat("x", 10), "xxxx…", 4},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tt.want, printable(tt.in, tt.max))
		})
	}
}
