package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/neo-events/neo-events/event"
)

// OutboxBatch is one publisher batch that was committed to Postgres and not
// yet confirmed on a stream.
type OutboxBatch struct {
	BatchID   uuid.UUID
	Schema    string
	EventIDs  []uuid.UUID
	CreatedAt time.Time
}

// InsertOutbox records a batch in neo_events.outbox. The publisher calls it
// in the transaction of the batch's COPY, so the two commit together.
func InsertOutbox(ctx context.Context, db DB, batchID uuid.UUID, schema string, ids []uuid.UUID) error {
	if err := event.ValidateSchema(schema); err != nil {
		return fmt.Errorf("insert outbox batch: %w", err)
	}
	if batchID == uuid.Nil || len(ids) == 0 {
		return fmt.Errorf("insert outbox batch: %w", invalidArg("need a batch id and at least one event id"))
	}
	_, err := db.Exec(ctx,
		"INSERT INTO neo_events.outbox (batch_id, schema_name, event_ids) VALUES ($1, $2, $3)",
		[16]byte(batchID), schema, uuidBytes(ids))
	if err != nil {
		return fmt.Errorf("insert outbox batch %s: %w", batchID, err)
	}
	return nil
}

// DeleteOutbox removes batches once their entries are on a stream. Unknown
// ids are ignored, so a relay and a publisher may both delete.
func DeleteOutbox(ctx context.Context, db DB, batchIDs []uuid.UUID) error {
	if len(batchIDs) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, "DELETE FROM neo_events.outbox WHERE batch_id = ANY($1::uuid[])", uuidBytes(batchIDs)); err != nil {
		return fmt.Errorf("delete %d outbox batches: %w", len(batchIDs), err)
	}
	return nil
}

// PendingOutbox returns up to limit batches older than olderThan, oldest
// first. A row whose schema name fails event.ValidateSchema (written by
// something other than the publisher) is left out, so it can never reach SQL.
func PendingOutbox(ctx context.Context, db DB, olderThan time.Duration, limit int) ([]OutboxBatch, error) {
	if limit <= 0 || olderThan < 0 {
		return nil, fmt.Errorf("pending outbox: %w", invalidArg("limit %d and age %s must be positive", limit, olderThan))
	}
	rows, err := db.Query(ctx, `
SELECT batch_id, schema_name, event_ids, created_at
  FROM neo_events.outbox
 WHERE created_at < now() - make_interval(secs => $1)
 ORDER BY created_at, batch_id
 LIMIT $2`, olderThan.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	batches, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxBatch, error) {
		var b OutboxBatch
		err := r.Scan(&b.BatchID, &b.Schema, &b.EventIDs, &b.CreatedAt)
		b.CreatedAt = event.Normalize(b.CreatedAt)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	out := batches[:0]
	for _, b := range batches {
		if event.ValidateSchema(b.Schema) == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// OutboxWriter commits publisher batches in one round trip each. Commit
// sends one simple-protocol message holding the deletion of outbox rows
// already streamed, the batch's outbox row and a binary COPY of its rows,
// followed by the COPY data. PostgreSQL runs the statements of such a
// message as one implicit transaction, so the rows and their outbox row
// commit together or not at all, exactly as in an explicit transaction,
// without the BEGIN, COMMIT and statement round trips. The writer reuses
// its buffers: use one per goroutine.
type OutboxWriter struct {
	sql  []byte
	data []byte
	rd   bytes.Reader
}

// Commit writes evs into `<schema>.events`, records them as outbox batch
// batchID and deletes the outbox rows of the batches in streamed, in one
// transaction. The events must be valid and belong to schema (see
// CopyValidatedEvents). conn must be idle and outside a transaction. It
// returns the number of rows copied. On error nothing was committed, except
// when the connection broke after the message was sent: then the outcome is
// unknown, and if it did commit the outbox row lets the relay deliver it.
func (w *OutboxWriter) Commit(ctx context.Context, conn *pgconn.PgConn, schema string, batchID uuid.UUID, evs []*event.Event, streamed []uuid.UUID) (int64, error) {
	copySQL, err := CopyEventsSQL(schema)
	if err != nil {
		return 0, fmt.Errorf("commit batch: %w", err)
	}
	if batchID == uuid.Nil || len(evs) == 0 {
		return 0, fmt.Errorf("commit batch: %w", invalidArg("need a batch id and at least one event"))
	}
	if s := conn.TxStatus(); s != 'I' {
		return 0, fmt.Errorf("commit batch: %w", invalidArg("connection is not idle outside a transaction (status %q)", s))
	}
	data, err := AppendEventsCopy(w.data[:0], schema, evs)
	if err != nil {
		return 0, fmt.Errorf("commit batch %s: %w", batchID, err)
	}
	w.data = data
	sql := w.sql[:0]
	if len(streamed) > 0 {
		sql = append(sql, "DELETE FROM neo_events.outbox WHERE batch_id = ANY("...)
		sql = appendUUIDArray(sql, streamed, func(id uuid.UUID) uuid.UUID { return id })
		sql = append(sql, ");\n"...)
	}
	// Every literal is built from UUIDs and a validated schema name, so
	// nothing here needs (or could break) quoting.
	sql = append(sql, "INSERT INTO neo_events.outbox (batch_id, schema_name, event_ids) VALUES ('"...)
	sql = event.AppendID(sql, batchID)
	sql = append(sql, "', '"...)
	sql = append(sql, schema...)
	sql = append(sql, "', "...)
	sql = appendUUIDArray(sql, evs, func(e *event.Event) uuid.UUID { return e.ID })
	sql = append(sql, ");\n"...)
	sql = append(sql, copySQL...)
	w.sql = sql
	w.rd.Reset(w.data)
	tag, err := conn.CopyFrom(ctx, &w.rd, string(sql))
	if err != nil {
		return 0, fmt.Errorf("commit batch %s of %d events into %s: %w", batchID, len(evs), schema, err)
	}
	return tag.RowsAffected(), nil
}

// appendUUIDArray appends a uuid[] literal of the ids of xs.
func appendUUIDArray[T any](dst []byte, xs []T, id func(T) uuid.UUID) []byte {
	dst = append(dst, "'{"...)
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendID(dst, id(x))
	}
	return append(dst, "}'::uuid[]"...)
}
