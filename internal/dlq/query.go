package dlq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/streams"
)

// pageSize is the COUNT of one XRANGE while scanning the DLQ.
const pageSize = 500

// Filter selects dead letters. The zero Filter matches every entry.
type Filter struct {
	// ID selects one dead letter by its DLQ id; the age criteria are then
	// ignored, the others still apply.
	ID string
	// EventType is an event pattern (`*`, `users.*`, `*.created`, exact).
	EventType string
	// Action matches entries one of whose dlq_action names equals it.
	Action string
	// Reason matches dlq_reason exactly.
	Reason Reason
	// OlderThan keeps entries dead-lettered more than this long ago.
	OlderThan time.Duration
	// NewerThan keeps entries dead-lettered less than this long ago.
	NewerThan time.Duration
	// Now anchors OlderThan/NewerThan; zero means time.Now(). For tests.
	Now time.Time
}

// IsZero reports whether f matches everything.
func (f Filter) IsZero() bool {
	return f.ID == "" && f.EventType == "" && f.Action == "" && f.Reason == "" && f.OlderThan == 0 && f.NewerThan == 0
}

// Validate refuses a malformed pattern, an unknown reason or negative ages.
func (f Filter) Validate() error {
	if f.ID != "" && !ValidID(f.ID) {
		return fmt.Errorf("%w: id %q is not <ms>-<seq> (as `dlq list` prints it)", ErrInvalid, f.ID)
	}
	if f.EventType != "" {
		if _, err := event.ParsePattern(f.EventType); err != nil {
			return fmt.Errorf("%w: event type filter: %v", ErrInvalid, err)
		}
	}
	if f.Reason != "" && !f.Reason.Valid() {
		return fmt.Errorf("%w: reason %q is not one of %v", ErrInvalid, f.Reason, Reasons)
	}
	if f.OlderThan < 0 || f.NewerThan < 0 {
		return fmt.Errorf("%w: negative age filter", ErrInvalid)
	}
	return nil
}

// Match reports whether e passes every criterion except the age ones, which
// scan applies as XRANGE bounds (entries are in dead-lettering order).
func (f Filter) Match(e Entry) bool {
	if f.Reason != "" && e.Reason != f.Reason {
		return false
	}
	if f.EventType != "" && !event.MatchPattern(f.EventType, e.EventType()) {
		return false
	}
	if f.Action != "" && !contains(e.Actions(), f.Action) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bounds turns the id and age criteria into XRANGE start and end: a DLQ
// id's time is when the entry was dead-lettered.
func (f Filter) bounds() (start, end string) {
	if f.ID != "" {
		return f.ID, f.ID
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	start, end = "-", "+"
	if f.NewerThan > 0 {
		start = strconv.FormatInt(now.Add(-f.NewerThan).UnixMilli(), 10)
	}
	if f.OlderThan > 0 {
		end = strconv.FormatInt(now.Add(-f.OlderThan).UnixMilli(), 10)
	}
	return start, end
}

// scan calls fn for every entry matching f, oldest first, until fn returns
// false or an error.
func scan(ctx context.Context, rdb redis.Cmdable, key string, f Filter, fn func(Entry) (bool, error)) error {
	if err := f.Validate(); err != nil {
		return err
	}
	start, end := f.bounds()
	for {
		msgs, err := rdb.XRangeN(ctx, key, start, end, pageSize).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		for _, m := range msgs {
			e := parseEntry(m.ID, m.Values)
			if !f.Match(e) {
				continue
			}
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		if len(msgs) < pageSize {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// List returns up to limit matching dead letters of group, oldest first;
// limit <= 0 means all.
func List(ctx context.Context, rdb redis.Cmdable, prefix, group string, f Filter, limit int) ([]Entry, error) {
	var out []Entry
	err := scan(ctx, rdb, streams.DLQ(prefix, group), f, func(e Entry) (bool, error) {
		out = append(out, e)
		return limit <= 0 || len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters of group %s: %w", group, err)
	}
	return out, nil
}

// Get returns the dead letter with DLQ id id, or ErrNotFound.
func Get(ctx context.Context, rdb redis.Cmdable, prefix, group, id string) (Entry, error) {
	if !ValidID(id) {
		return Entry{}, fmt.Errorf("%w: id %q is not <ms>-<seq> (as `dlq list` prints it)", ErrInvalid, id)
	}
	key := streams.DLQ(prefix, group)
	msgs, err := rdb.XRange(ctx, key, id, id).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("read %s %s: %w", key, id, err)
	}
	if len(msgs) == 0 {
		return Entry{}, fmt.Errorf("%s in %s: %w", id, key, ErrNotFound)
	}
	return parseEntry(msgs[0].ID, msgs[0].Values), nil
}

// Purge deletes the matching dead letters and returns how many went. It
// refuses the zero Filter (ErrEmptyFilter): deleting everything is PurgeAll.
func Purge(ctx context.Context, rdb redis.Cmdable, prefix, group string, f Filter) (int, error) {
	if f.IsZero() {
		return 0, ErrEmptyFilter
	}
	key := streams.DLQ(prefix, group)
	var ids []string
	n := 0
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		d, err := rdb.XDel(ctx, key, ids...).Result()
		n += int(d)
		ids = ids[:0]
		return err
	}
	err := scan(ctx, rdb, key, f, func(e Entry) (bool, error) {
		ids = append(ids, e.ID)
		if len(ids) < pageSize {
			return true, nil
		}
		return true, flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, fmt.Errorf("purge dead letters of group %s: %w", group, err)
	}
	return n, nil
}

// purgeAllScript deletes the DLQ and says how long it was, atomically, so
// the count is exactly what went.
var purgeAllScript = redis.NewScript(`
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
`)

// PurgeAll deletes every dead letter of group and returns how many went.
func PurgeAll(ctx context.Context, rdb redis.Cmdable, prefix, group string) (int, error) {
	key := streams.DLQ(prefix, group)
	n, err := purgeAllScript.Run(ctx, rdb, []string{key}).Int()
	if err != nil {
		return 0, fmt.Errorf("purge all dead letters of group %s: %w", group, err)
	}
	return n, nil
}
