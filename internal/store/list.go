package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
)

// Page sizes of ListEvents.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Filter selects events for ListEvents. Zero fields do not filter.
type Filter struct {
	// TypePattern is an event pattern: `*`, `users.*`, `*.created` or exact.
	TypePattern   string
	AggregateType string
	AggregateID   uuid.UUID
	CorrelationID uuid.UUID
	// Status keeps events in any of these statuses.
	Status []event.Status
	// From and To bound created_at: From <= created_at < To.
	From, To time.Time
	// IncludeDeleted also returns soft-deleted rows (deleted_at set).
	IncludeDeleted bool
	// Limit is the page size. Defaults to DefaultListLimit; at most MaxListLimit.
	Limit int
	// Cursor continues after the page that returned it; "" starts at the beginning.
	Cursor string
}

// ListEvents returns one page of matching events in (created_at, id) order
// and the cursor of the next page ("" when this page is the last). Paging is
// keyset on (created_at, id), so pages stay stable while rows are inserted.
// Rows with a NULL created_at are never listed.
func ListEvents(ctx context.Context, db DB, schema string, f Filter) ([]*event.Event, string, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	where, args, err := f.where()
	if err != nil {
		return nil, "", fmt.Errorf("list events in %s: %w", schema, err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	if limit > MaxListLimit {
		return nil, "", fmt.Errorf("list events in %s: %w", schema, invalidArg("limit %d is above %d", limit, MaxListLimit))
	}
	args = append(args, limit+1)
	sql := "SELECT " + columnsFor(schema).list + " FROM " + table + " WHERE " + where +
		" ORDER BY created_at, id LIMIT $" + strconv.Itoa(len(args))
	evs, err := queryEvents(ctx, db, schema, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list events in %s: %w", schema, err)
	}
	if len(evs) <= limit {
		return evs, "", nil
	}
	evs = evs[:limit]
	last := evs[limit-1]
	return evs, encodeCursor(last.CreatedAt, last.ID), nil
}

// where translates the filter into SQL conditions and their arguments. Only
// placeholders carry values; the SQL text is built from constants.
func (f Filter) where() (string, []any, error) {
	var conds []string
	var args []any
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		conds = append(conds, cond)
	}
	add("created_at IS NOT NULL")
	if !f.IncludeDeleted {
		add("deleted_at IS NULL")
	}
	if err := addPattern(f.TypePattern, add); err != nil {
		return "", nil, err
	}
	if f.AggregateType != "" {
		add("aggregate_type = ?", f.AggregateType)
	}
	if f.AggregateID != uuid.Nil {
		add("aggregate_id = ?", f.AggregateID)
	}
	if f.CorrelationID != uuid.Nil {
		add("correlation_id = ?", f.CorrelationID)
	}
	if len(f.Status) > 0 {
		ss := make([]string, len(f.Status))
		for i, s := range f.Status {
			if !s.Valid() {
				return "", nil, invalidArg("unknown status %q", string(s))
			}
			ss[i] = string(s)
		}
		add("status::text = ANY(?::text[])", ss)
	}
	if !f.From.IsZero() {
		add("created_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("created_at < ?", f.To)
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		add("(created_at, id) > (?, ?)", at, id)
	}
	return strings.Join(conds, " AND "), args, nil
}

// addPattern turns an event pattern into an index-friendly condition: a
// category becomes a range on event_type, since `_` would be a wildcard in LIKE.
func addPattern(pattern string, add func(string, ...any)) error {
	if pattern == "" || pattern == "*" {
		return nil
	}
	if _, err := event.ParsePattern(pattern); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	cat, act, _ := strings.Cut(pattern, ".")
	switch {
	case cat == "*":
		add("split_part(event_type, '.', 2) = ?", act)
	case act == "*":
		// '/' is the byte after '.', so this range is exactly the "cat." prefix.
		add("event_type >= ? AND event_type < ?", cat+".", cat+"/")
	default:
		add("event_type = ?", pattern)
	}
	return nil
}

// The cursor is opaque to callers: base64url of "<unix micros>:<uuid>".
func encodeCursor(at time.Time, id uuid.UUID) string {
	raw := strconv.FormatInt(at.UnixMicro(), 10) + ":" + id.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, fmt.Errorf("%w: not base64", ErrInvalidCursor)
	}
	micros, idText, ok := strings.Cut(string(raw), ":")
	if !ok {
		return time.Time{}, uuid.Nil, fmt.Errorf("%w: malformed", ErrInvalidCursor)
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, uuid.Nil, fmt.Errorf("%w: bad time", ErrInvalidCursor)
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return time.Time{}, uuid.Nil, fmt.Errorf("%w: bad id", ErrInvalidCursor)
	}
	return time.UnixMicro(us).UTC(), id, nil
}
