package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/neo-events/neo-events/event"
)

// StatusUpdate is one status write of a worker. Zero fields leave the
// column as it is, so a later write never erases an earlier one's data.
type StatusUpdate struct {
	ID     uuid.UUID
	Status event.Status

	ProcessingStartedAt   time.Time
	ProcessingCompletedAt time.Time
	ProcessingDurationMS  *int32
	// RetryCount only ever grows (the largest number of retries any action
	// needed), and is capped at the row's max_retries so the table's check
	// cannot fail the whole batch.
	RetryCount   int
	ErrorMessage string
	ErrorDetails json.RawMessage // a JSON object
	// MessageID is the stream entry id; it is written only if the row has none.
	MessageID string
}

// transitionMoves lists every legal status move of event.Status.CanTransition
// as "from>to", for the UPDATE to test with = ANY. (A join against two
// unnested arrays made the planner look each event up once per matching
// move: three index probes per row instead of one.)
var transitionMoves = func() []string {
	var moves []string
	for _, a := range event.Statuses {
		for _, b := range event.Statuses {
			if a.CanTransition(b) {
				moves = append(moves, string(a)+">"+string(b))
			}
		}
	}
	return moves
}()

// transitionMovesArg is transitionMoves as the UPDATE's last parameter.
var transitionMovesArg = func() pgArray[pgtype.Text] {
	a := make(pgArray[pgtype.Text], len(transitionMoves))
	for i, m := range transitionMoves {
		a[i] = validText(m)
	}
	return a
}()

// UpdateStatuses applies a batch of status writes in one statement. A write
// whose move is illegal by event.Status.CanTransition (for example anything
// after completed, as an at-least-once redelivery would attempt) is skipped,
// as is one for an id that does not exist; a NULL status counts as pending.
// When ups names an id twice, the later write wins.
func UpdateStatuses(ctx context.Context, db DB, schema string, ups []StatusUpdate) error {
	sql, args, n, err := updateStatement(schema, ups, nil)
	if err != nil || sql == "" {
		return err
	}
	if _, err := db.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("update %d statuses in %s: %w", n, schema, err)
	}
	return nil
}

// QueueUpdateStatuses queues UpdateStatuses on b. When the statement
// updates fewer rows than ups names distinct ids, *short is set: a row is
// missing (an event that reached a stream without its row) or a move is
// illegal, which UpdateStatuses would skip silently. A caller that must
// insert missing rows first then redoes the batch step by step (as the
// status writer does), instead of asking PostgreSQL which ids exist before
// every update.
//
// The statement's arrays are built in arr (nil: fresh memory), which must
// not be given to another call until b has been sent.
func QueueUpdateStatuses(b *pgx.Batch, schema string, ups []StatusUpdate, short *bool, arr *StatusArrays) error {
	sql, args, n, err := updateStatement(schema, ups, arr)
	if err != nil || sql == "" {
		return err
	}
	b.Queue(sql, args...).Exec(func(ct pgconn.CommandTag) error {
		if ct.RowsAffected() < int64(n) {
			*short = true
		}
		return nil
	})
	return nil
}

// updateStatement builds UpdateStatuses' statement ("" when there is
// nothing to write) and the number of rows it names, its arrays in arr.
func updateStatement(schema string, ups []StatusUpdate, arr *StatusArrays) (string, []any, int, error) {
	sql, err := updateSQL(schema) // validates the schema, rows or none
	if err != nil {
		return "", nil, 0, fmt.Errorf("update statuses: %w", err)
	}
	ups = lastPerID(ups)
	if len(ups) == 0 {
		return "", nil, 0, nil
	}
	cols, err := statusColumns(ups, arr)
	if err != nil {
		return "", nil, 0, fmt.Errorf("update statuses in %s: %w", schema, err)
	}
	return sql, append(cols, transitionMovesArg), len(ups), nil
}

// updateStatements caches each schema's UPDATE statement (schema -> SQL):
// building it was one allocation of about 1 KB per status flush. At most
// maxCachedStatements schemas are kept, so entries naming endless schemas
// cannot grow it without bound; the others build theirs every time.
var (
	updateStatements sync.Map
	cachedStatements atomic.Int64
)

const maxCachedStatements = 4096

// updateSQL is the UPDATE of schema's events, from the cache.
func updateSQL(schema string) (string, error) {
	if s, ok := updateStatements.Load(schema); ok {
		return s.(string), nil
	}
	table, err := eventsTable(schema)
	if err != nil {
		return "", err
	}
	sql := `
UPDATE ` + table + ` AS e SET
    status = u.status::platform_common.event_status,
    processing_started_at = COALESCE(u.started_at, e.processing_started_at),
    processing_completed_at = COALESCE(u.completed_at, e.processing_completed_at),
    processing_duration_ms = COALESCE(u.duration_ms, e.processing_duration_ms),
    retry_count = CASE WHEN e.max_retries IS NULL THEN GREATEST(COALESCE(e.retry_count, 0), u.retry_count)
                       ELSE LEAST(GREATEST(COALESCE(e.retry_count, 0), u.retry_count), e.max_retries) END,
    error_message = COALESCE(u.error_message, e.error_message),
    error_details = COALESCE(u.error_details::jsonb, e.error_details),
    message_id = COALESCE(e.message_id, u.message_id)
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int4[], $6::int4[],
            $7::text[], $8::text[], $9::text[])
     AS u(id, status, started_at, completed_at, duration_ms, retry_count, error_message, error_details, message_id)
WHERE e.id = u.id
  AND (COALESCE(e.status::text, 'pending') || '>' || u.status) = ANY($10::text[])`
	if cachedStatements.Add(1) <= maxCachedStatements {
		updateStatements.Store(schema, sql)
	}
	return sql, nil
}

// lastPerID keeps the last write per id, in first-seen order, because one
// UPDATE ... FROM may apply only one source row per target row. Without a
// repeated id (a status flush never repeats one) it returns ups itself.
func lastPerID(ups []StatusUpdate) []StatusUpdate {
	idx := make(map[uuid.UUID]int, len(ups))
	dup := false
	for i := range ups {
		if _, dup = idx[ups[i].ID]; dup {
			break
		}
		idx[ups[i].ID] = i
	}
	if !dup {
		return ups
	}
	clear(idx)
	out := make([]StatusUpdate, 0, len(ups))
	for _, u := range ups {
		if i, ok := idx[u.ID]; ok {
			out[i] = u
			continue
		}
		idx[u.ID] = len(out)
		out = append(out, u)
	}
	return out
}

// StatusArrays is memory for the nine arrays of a status UPDATE, which a
// caller that writes batch after batch reuses (QueueUpdateStatuses): they
// were the largest part of what building the statement allocated.
type StatusArrays struct {
	ids                                 pgArray[pgtype.UUID]
	statuses, messages, details, msgIDs pgArray[pgtype.Text]
	started, completed                  pgArray[pgtype.Timestamptz]
	durations, retries                  pgArray[pgtype.Int4]
}

// Release drops the arrays' references to the strings they were given,
// keeping the memory of arrays of up to maxRows elements (larger ones are
// dropped, so one large batch does not pin its memory).
func (a *StatusArrays) Release(maxRows int) {
	if cap(a.ids) > maxRows {
		*a = StatusArrays{}
		return
	}
	for _, s := range []*pgArray[pgtype.Text]{&a.statuses, &a.messages, &a.details, &a.msgIDs} {
		clear(*s) // the elements of the last use; earlier ones were cleared after theirs
		*s = (*s)[:0]
	}
	a.ids, a.started, a.completed = a.ids[:0], a.started[:0], a.completed[:0]
	a.durations, a.retries = a.durations[:0], a.retries[:0]
}

// sized returns s with length n, reusing its memory when it can; every
// element is overwritten by statusColumns.
func sized[T any](s pgArray[T], n int) pgArray[T] {
	if cap(s) < n {
		return make(pgArray[T], n)
	}
	return s[:n]
}

// statusColumns validates the writes and turns them into the nine parallel
// arrays the UPDATE unnests, built in arr (nil: fresh memory).
func statusColumns(ups []StatusUpdate, arr *StatusArrays) ([]any, error) {
	if arr == nil {
		arr = new(StatusArrays)
	}
	n := len(ups)
	// pgArray: the form pgx encodes with the least work (exec_writes.go).
	ids := sized(arr.ids, n)
	statuses := sized(arr.statuses, n)
	started, completed := sized(arr.started, n), sized(arr.completed, n)
	durations, retries := sized(arr.durations, n), sized(arr.retries, n)
	messages, details, msgIDs := sized(arr.messages, n), sized(arr.details, n), sized(arr.msgIDs, n)
	arr.ids, arr.statuses, arr.started, arr.completed = ids, statuses, started, completed
	arr.durations, arr.retries, arr.messages, arr.details, arr.msgIDs = durations, retries, messages, details, msgIDs
	for i := range ups {
		u := &ups[i]
		if err := u.validate(); err != nil {
			return nil, err
		}
		ids[i], statuses[i] = pgUUID(u.ID), validText(string(u.Status))
		started[i] = pgTime(u.ProcessingStartedAt)
		completed[i] = pgTime(u.ProcessingCompletedAt)
		durations[i] = pgtype.Int4{}
		if u.ProcessingDurationMS != nil {
			durations[i] = pgtype.Int4{Int32: *u.ProcessingDurationMS, Valid: true}
		}
		retries[i] = pgtype.Int4{Int32: int32(u.RetryCount), Valid: true}
		messages[i] = pgText(u.ErrorMessage)
		details[i] = pgText(string(u.ErrorDetails))
		msgIDs[i] = pgText(u.MessageID)
	}
	// One more place for updateStatement's transitionMovesArg.
	return append(make([]any, 0, 10), ids, statuses, started, completed, durations, retries, messages, details, msgIDs), nil
}

func (u StatusUpdate) validate() error {
	switch {
	case u.ID == uuid.Nil:
		return invalidArg("status update without an id")
	case !u.Status.Valid():
		return invalidArg("event %s: unknown status %q", u.ID, string(u.Status))
	case u.ProcessingDurationMS != nil && *u.ProcessingDurationMS < 0:
		return invalidArg("event %s: negative processing_duration_ms", u.ID)
	case u.RetryCount < 0 || u.RetryCount > 1<<30:
		return invalidArg("event %s: retry_count %d out of range", u.ID, u.RetryCount)
	case len(u.MessageID) > event.MaxMessageIDLen:
		return invalidArg("event %s: message_id longer than %d bytes", u.ID, event.MaxMessageIDLen)
	case u.ErrorDetails != nil && !isObject(u.ErrorDetails):
		return invalidArg("event %s: error_details must be a JSON object", u.ID)
	}
	return nil
}

func isObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

func pgTime(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: event.Normalize(t), Valid: true}
}

func pgText(s string) pgtype.Text {
	if s == "" {
		return pgtype.Text{}
	}
	return pgtype.Text{String: s, Valid: true}
}
