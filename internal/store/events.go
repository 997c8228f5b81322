package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/neo-events/neo-events/event"
)

// GetEvent reads one event; a missing id is ErrNotFound.
func GetEvent(ctx context.Context, db DB, schema string, id uuid.UUID) (*event.Event, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	cs := columnsFor(schema)
	row := db.QueryRow(ctx, "SELECT "+cs.list+" FROM "+table+" WHERE id = $1", id)
	e, err := cs.scanEvent(row, schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("get event %s in %s: %w", id, schema, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get event %s in %s: %w", id, schema, err)
	}
	return e, nil
}

// GetEvents reads the events with the given ids that exist, ordered by
// (created_at, id). Missing ids are left out, not an error.
func GetEvents(ctx context.Context, db DB, schema string, ids []uuid.UUID) ([]*event.Event, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return nil, fmt.Errorf("get events: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cs := columnsFor(schema)
	evs, err := queryEvents(ctx, db, schema,
		"SELECT "+cs.list+" FROM "+table+" WHERE id = ANY($1::uuid[]) ORDER BY created_at, id", uuidBytes(ids))
	if err != nil {
		return nil, fmt.Errorf("get %d events in %s: %w", len(ids), schema, err)
	}
	return evs, nil
}

// queryEvents runs a query selecting columnsFor(schema).list and scans every row.
func queryEvents(ctx context.Context, db DB, schema, sql string, args ...any) ([]*event.Event, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cs := columnsFor(schema)
	var out []*event.Event
	for rows.Next() {
		e, err := cs.scanEvent(rows, schema)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CausalityChain returns the event with id, every ancestor up its
// causation_id links to the root, and every descendant (events caused by it,
// transitively), ordered by (created_at, id). Cycles in bad data end the walk
// instead of looping. A missing id is ErrNotFound.
func CausalityChain(ctx context.Context, db DB, schema string, id uuid.UUID) ([]*event.Event, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return nil, fmt.Errorf("causality chain: %w", err)
	}
	cs := columnsFor(schema)
	// UNION (not UNION ALL) drops rows already seen, which is what stops a
	// causation cycle from recursing forever.
	sql := `
WITH RECURSIVE
ancestors (id, causation_id) AS (
    SELECT id, causation_id FROM ` + table + ` WHERE id = $1
    UNION
    SELECT p.id, p.causation_id FROM ` + table + ` p JOIN ancestors a ON p.id = a.causation_id
),
descendants (id) AS (
    SELECT id FROM ` + table + ` WHERE id = $1
    UNION
    SELECT c.id FROM ` + table + ` c JOIN descendants d ON c.causation_id = d.id
)
SELECT ` + cs.prefixed("e") + ` FROM ` + table + ` e
 WHERE e.id IN (SELECT id FROM ancestors UNION SELECT id FROM descendants)
 ORDER BY e.created_at, e.id`
	evs, err := queryEvents(ctx, db, schema, sql, id)
	if err != nil {
		return nil, fmt.Errorf("causality chain of %s in %s: %w", id, schema, err)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("causality chain of %s in %s: %w", id, schema, ErrNotFound)
	}
	return evs, nil
}

// UpsertMissing inserts the events whose id is not in the table yet and
// returns how many it inserted, in one statement. A worker uses it for events
// that a producer published with XADD only (DESIGN §3). Events are validated
// as for InsertEvents.
func UpsertMissing(ctx context.Context, db DB, schema string, evs []*event.Event) (int64, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return 0, fmt.Errorf("upsert missing events: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	if err := checkEvents(schema, evs); err != nil {
		return 0, fmt.Errorf("upsert missing events into %s: %w", schema, err)
	}
	payload, err := recordsJSON(schema, evs)
	if err != nil {
		return 0, fmt.Errorf("upsert missing events into %s: %w", schema, err)
	}
	cs := columnsFor(schema)
	// jsonb_populate_recordset types every field by the table's own row type,
	// so one jsonb parameter carries the whole batch, enums and all.
	sql := "INSERT INTO " + table + " (" + cs.list + ") SELECT " + cs.list +
		" FROM jsonb_populate_recordset(NULL::" + table + ", $1::jsonb) ON CONFLICT (id) DO NOTHING"
	tag, err := db.Exec(ctx, sql, payload)
	if err != nil {
		return 0, fmt.Errorf("upsert %d missing events into %s: %w", len(evs), schema, err)
	}
	return tag.RowsAffected(), nil
}

// recordsJSON encodes evs as a JSON array of objects keyed by column name.
func recordsJSON(schema string, evs []*event.Event) ([]byte, error) {
	cs := columnsFor(schema)
	now := event.Now()
	recs := make([]map[string]any, len(evs))
	for i, e := range evs {
		vals := cs.values(e, now)
		rec := make(map[string]any, len(vals))
		for j, v := range vals {
			if id, ok := v.([16]byte); ok {
				v = uuid.UUID(id) // COPY's binary form; JSON wants the text form
			}
			rec[cs.names[j]] = v
		}
		recs[i] = rec
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	return b, nil
}

// CopyEventsSQL returns the statement that reads an AppendEventsCopy stream
// into `<schema>.events`.
func CopyEventsSQL(schema string) (string, error) {
	table, err := eventsTable(schema)
	if err != nil {
		return "", fmt.Errorf("copy events: %w", err)
	}
	return "COPY " + table + " (" + columnsFor(schema).list + ") FROM STDIN BINARY", nil
}

// AppendEventsCopy appends evs to dst as one complete stream in
// PostgreSQL's binary COPY format, the rows InsertEvents writes (same
// columns, NULLs and defaults), encoded directly instead of value by value
// through pgx's type map. The events must already be valid and belong to
// schema (the publisher validated them before queueing); metadata that cannot be encoded is
// an error wrapping event.ErrInvalid. On error dst is returned unchanged.
func AppendEventsCopy(dst []byte, schema string, evs []*event.Event) ([]byte, error) {
	if err := event.ValidateSchema(schema); err != nil {
		return dst, fmt.Errorf("encode events: %w", err)
	}
	cs := columnsFor(schema)
	now := event.Now()
	w := copyWriter{buf: append(dst, copyHeader...)}
	for _, e := range evs {
		if e == nil {
			return dst, fmt.Errorf("encode events: %w: nil event", event.ErrInvalid)
		}
		w.row(cs, e, now)
	}
	if w.err != nil {
		return dst, fmt.Errorf("encode events for %s: %w", schema, w.err)
	}
	return append(w.buf, copyTrailer...), nil
}

// CopyValidatedEvents is InsertEvents for events the caller has already
// validated (event.Validate, e.Schema == schema), on one connection with
// the rows encoded by AppendEventsCopy: one binary COPY, in its own
// transaction unless conn is in one. buf is scratch space for the stream;
// the grown buffer is returned for reuse.
func CopyValidatedEvents(ctx context.Context, conn *pgconn.PgConn, schema string, evs []*event.Event, buf []byte) (int64, []byte, error) {
	sql, err := CopyEventsSQL(schema)
	if err != nil {
		return 0, buf, err
	}
	if len(evs) == 0 {
		return 0, buf, nil
	}
	data, err := AppendEventsCopy(buf[:0], schema, evs)
	if err != nil {
		return 0, buf, err
	}
	tag, err := conn.CopyFrom(ctx, bytes.NewReader(data), sql)
	if err != nil {
		return 0, data, fmt.Errorf("copy %d events into %s: %w", len(evs), schema, err)
	}
	return tag.RowsAffected(), data, nil
}
