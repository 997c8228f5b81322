package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streams"
)

// AppendFields appends the DLQ entry of a failed entry to dst as field,
// value pairs (the form XADD takes): the original fields first, the known
// event fields in event.EntryFields order and any others sorted by name, so
// equal inputs give equal entries; then the dlq_* fields. Original dlq_*
// fields are dropped in favour of the new ones. d.Fields is ignored: original
// is used. A zero d.FailedAt means now.
func AppendFields(dst []string, original map[string]string, d Letter) []string {
	dst = appendOriginal(dst, original)
	failedAt := d.FailedAt
	if failedAt.IsZero() {
		failedAt = time.Now()
	}
	dst = append(dst,
		FieldReason, string(d.Reason),
		FieldError, truncateError(d.Error),
		FieldAttempts, strconv.Itoa(d.Attempts),
	)
	if d.Action != "" {
		dst = append(dst, FieldAction, d.Action)
	}
	return append(dst,
		FieldSourceStream, d.SourceStream,
		FieldSourceID, d.SourceID,
		FieldFailedAt, event.FormatTime(failedAt),
	)
}

// appendOriginal appends the non-dlq_* fields of original in a stable order.
func appendOriginal(dst []string, original map[string]string) []string {
	known := make(map[string]bool, len(event.EntryFields))
	for _, k := range event.EntryFields {
		known[k] = true
		if v, ok := original[k]; ok {
			dst = append(dst, k, v)
		}
	}
	var extra []string
	for k := range original {
		if !known[k] && !strings.HasPrefix(k, FieldPrefix) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		dst = append(dst, k, original[k])
	}
	return dst
}

func truncateError(s string) string {
	if len(s) <= MaxErrorLen {
		return s
	}
	cut := MaxErrorLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// AddFragment is Lua source defining `dlq_add(key, argv, first)`, which
// XADDs argv[first], argv[first+1], … (field, value pairs built by
// AppendFields) to the stream key and returns the new id. Prepend it to a
// bigger script to dead-letter inside the same atomic step, e.g.
// `AddFragment + "\nlocal id = dlq_add(KEYS[2], ARGV, 3)\n..."`.
const AddFragment = `local function dlq_add(key, argv, first)
  return redis.call('XADD', key, '*', unpack(argv, first))
end`

// MoveScript dead-letters a pending entry atomically.
//
//	KEYS[1] source stream, KEYS[2] DLQ stream (streams.DLQ)
//	ARGV[1] group, ARGV[2] source entry id, ARGV[3..] AppendFields pairs
//
// It returns the DLQ entry id, or nil (redis.Nil) without writing anything
// when the entry is not pending for the group. A missing group or stream is
// an error (NOGROUP) raised before any write.
var MoveScript = redis.NewScript(AddFragment + `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return false end
local id = dlq_add(KEYS[2], ARGV, 3)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
`)

// Move dead-letters l atomically: XADD to `{prefix}:dlq:{group}` and XACK of
// l.SourceID on l.SourceStream for group, in one script. It refuses (with
// ErrNotPending, writing nothing) an entry that is no longer pending for the
// group: then another consumer has already acked or dead-lettered it, and a
// second dead letter would be a duplicate; it also makes a retried Move after
// a lost reply harmless. To dead-letter an entry that was acked on purpose
// (a retry held outside the pending list), use Add.
func Move(ctx context.Context, rdb redis.Cmdable, prefix, group string, l Letter) (string, error) {
	if err := l.Validate(); err != nil {
		return "", err
	}
	dlqKey := streams.DLQ(prefix, group)
	args := make([]any, 0, 2+2*len(l.Fields)+14)
	args = append(args, group, l.SourceID)
	for _, s := range AppendFields(make([]string, 0, 2*len(l.Fields)+14), l.Fields, l) {
		args = append(args, s)
	}
	res, err := MoveScript.Run(ctx, rdb, []string{l.SourceStream, dlqKey}, args...).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", fmt.Errorf("dead-letter %s %s: %w", l.SourceStream, l.SourceID, ErrNotPending)
	case isCrossSlot(err):
		return moveTwoStep(ctx, rdb, dlqKey, group, l, args[2:])
	case err != nil:
		return "", fmt.Errorf("dead-letter %s %s to %s: %w", l.SourceStream, l.SourceID, dlqKey, err)
	}
	return toString(res), nil
}

// moveTwoStep is Move where one script cannot reach both keys (Redis
// Cluster): check, XADD, then XACK, so a crash in between duplicates the
// dead letter on reprocessing but never loses the entry.
func moveTwoStep(ctx context.Context, rdb redis.Cmdable, dlqKey, group string, l Letter, pairs []any) (string, error) {
	p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: l.SourceStream, Group: group, Start: l.SourceID, End: l.SourceID, Count: 1,
	}).Result()
	if err != nil {
		return "", fmt.Errorf("dead-letter %s %s: check pending: %w", l.SourceStream, l.SourceID, err)
	}
	if len(p) == 0 {
		return "", fmt.Errorf("dead-letter %s %s: %w", l.SourceStream, l.SourceID, ErrNotPending)
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: dlqKey, Values: pairs}).Result()
	if err != nil {
		return "", fmt.Errorf("dead-letter %s %s to %s: %w", l.SourceStream, l.SourceID, dlqKey, err)
	}
	if err := rdb.XAck(ctx, l.SourceStream, group, l.SourceID).Err(); err != nil {
		return id, fmt.Errorf("dead-letter %s %s: written as %s but ack failed: %w", l.SourceStream, l.SourceID, id, err)
	}
	return id, nil
}

// Add appends l to the group's DLQ without touching the source entry: for a
// failure whose source entry was already acknowledged (a retry the worker
// held outside the pending list). Prefer Move whenever the entry is pending.
func Add(ctx context.Context, rdb redis.Cmdable, prefix, group string, l Letter) (string, error) {
	if err := l.Validate(); err != nil {
		return "", err
	}
	dlqKey := streams.DLQ(prefix, group)
	pairs := AppendFields(nil, l.Fields, l)
	values := make([]any, len(pairs))
	for i, s := range pairs {
		values[i] = s
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: dlqKey, Values: values}).Result()
	if err != nil {
		return "", fmt.Errorf("dead-letter %s %s to %s: %w", l.SourceStream, l.SourceID, dlqKey, err)
	}
	return id, nil
}

// Len is the number of entries in the group's DLQ (0 if it does not exist).
func Len(ctx context.Context, rdb redis.Cmdable, prefix, group string) (int64, error) {
	n, err := rdb.XLen(ctx, streams.DLQ(prefix, group)).Result()
	if err != nil {
		return 0, fmt.Errorf("dlq length of group %s: %w", group, err)
	}
	return n, nil
}

// isCrossSlot recognises Redis Cluster's refusal of a multi-slot script.
// Redis offers no error code beyond the message prefix.
func isCrossSlot(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "CROSSSLOT")
}
